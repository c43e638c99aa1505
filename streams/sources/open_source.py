"""Opening a video source from a URI: files, RTSP, RTP/UDP, V4L2, test patterns, the phantom."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from orstream.errors import OrstreamError
from orstream.streams.sources.reconnecting import (
    DEFAULT_BACKOFF,
    Backoff,
    ReconnectingSource,
)
from orstream.streams.sources.source import Source

SCHEMES = ("file", "rtsp", "udp", "v4l2", "videotestsrc", "phantom")
"""URI schemes :func:`open_source` understands (a plain path is a file)."""

FEEDS = ("rtsp", "udp", "v4l2")
"""Schemes of feeds that can be lost and come back: they reconnect (a file ends at its end)."""

PHANTOM_PARAMS: dict[str, type] = {
    "seed": int,
    "video": int,
    "seconds": int,
    "difficulty": str,
    "width": int,
    "height": int,
    "fps": float,
    "loop": bool,
}


def open_source(
    uri: str,
    stream_id: str = "cam0",
    realtime: bool = False,
    reconnect: Backoff | None = DEFAULT_BACKOFF,
) -> Source:
    """The source a URI names.

    Args:
        uri: a plain path or ``file:///...``, ``rtsp://host:port/path`` (TCP),
            ``udp://HOST:PORT`` (RTP H.264), ``v4l2:///dev/videoN``,
            ``videotestsrc://[?pattern=ball&width=..&height=..&fps=..&frames=..]``, or
            ``phantom://?seed=S&video=N&seconds=T&width=W&height=H&fps=F`` (also
            ``difficulty`` and ``loop=1``; the phantom is always live and paced).
        stream_id: the ``stream_id`` of every frame.
        realtime: play a file at its own pace instead of as fast as it decodes.
        reconnect: how a feed (RTSP, UDP, V4L2) that is lost is opened again
            (:class:`~orstream.streams.sources.reconnecting.ReconnectingSource`); None: a lost
            feed ends the stream.

    Raises:
        OrstreamError: unknown scheme, bad parameters, missing file or device.
    """
    scheme = urlsplit(uri).scheme.lower()
    if scheme == "phantom":
        from orstream.streams.phantom.source import PhantomSource

        params = uri_params(uri, PHANTOM_PARAMS)
        return PhantomSource(**params, paced=True, stream_id=stream_id)
    if scheme not in ("", *SCHEMES):
        raise OrstreamError(
            f"{uri}: unknown URI scheme '{scheme}' (supported: {', '.join(SCHEMES)}, "
            "or a plain file path)"
        )
    from orstream.streams.sources.gst_source import GstSource

    source = GstSource(uri, stream_id=stream_id, realtime=realtime)  # checks the URI now
    if reconnect is None or scheme not in FEEDS:
        return source
    backoff = reconnect

    def connect() -> Source:
        return GstSource(uri, stream_id=stream_id, stall_timeout_s=backoff.stall_s)

    return ReconnectingSource(connect, uri, stream_id, backoff)


def uri_params(uri: str, allowed: dict[str, type]) -> dict[str, Any]:
    """A URI's query parameters, converted to the types ``allowed`` names.

    Raises:
        OrstreamError: an unknown or repeated parameter, or a value of the wrong type.
    """
    params: dict[str, Any] = {}  # each value of its ``allowed`` type
    for key, text in parse_qsl(urlsplit(uri).query, keep_blank_values=True):
        if key not in allowed:
            raise OrstreamError(f"{uri}: unknown parameter '{key}' (allowed: {', '.join(allowed)})")
        if key in params:
            raise OrstreamError(f"{uri}: parameter '{key}' given twice")
        params[key] = _convert(uri, key, text, allowed[key])
    return params


def _convert(uri: str, key: str, text: str, kind: type) -> object:
    if kind is bool:
        if text.lower() in ("1", "true", "yes"):
            return True
        if text.lower() in ("0", "false", "no"):
            return False
    else:
        try:
            return kind(text)
        except ValueError:
            pass
    raise OrstreamError(f"{uri}: parameter '{key}' must be {kind.__name__}, got '{text}'")
