"""What every orstream video source offers: frames with timestamps, and a way to stop."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol, runtime_checkable

from orstream.streams.frame import Frame


@runtime_checkable
class Source(Protocol):
    """A video source (file, camera, network stream, phantom).

    Attributes:
        stream_id: the ``stream_id`` of every frame it delivers.
        uri: where its frames come from.
        live: True when frames come at the source's own pace (cameras, network streams,
            the phantom) and are dropped rather than queued when nobody keeps up.
    """

    stream_id: str
    uri: str
    live: bool

    def frames(self) -> Iterator[Frame]:
        """Deliver frames until the stream ends (then return) or :meth:`close` is called.

        Raises:
            OrstreamError: with one clear line when the source cannot be opened or played.
        """
        ...

    def close(self) -> None:
        """Stop the source; thread-safe, and a running ``frames()`` returns soon after."""
        ...
