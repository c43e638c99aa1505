"""A network or device feed that comes back on its own: reconnects with backoff, never ends.

An operating room's camera or encoder drops out (a cable pulled, an encoder rebooted, the
network gone for a moment) and comes back; the case is not over. :class:`ReconnectingSource`
wraps a source that ends or fails when its feed is lost (an RTSP, RTP/UDP or V4L2
:class:`~orstream.streams.sources.gst_source.GstSource`) and opens it again, waiting
``initial_s x factor**n`` (capped at ``max_s``, with jitter so that many edges do not knock on
a recovered server at once) between tries, until it delivers or :meth:`close` is called. A feed
that stays connected but sends nothing for ``stall_s`` is torn down and reopened the same way.

Frames keep one timeline across reconnects: ``index`` counts on, and ``pts_ns`` goes on from
the last frame by the wall time the outage took, so a recording shows the gap where it was.
The first frame after a reconnect is flagged ``discontinuity``: temporal models start over.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.sources.source import Source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each try to reopen a lost feed.

    Attributes:
        initial_s: the wait before the first try.
        factor: each further wait is this many times the one before.
        max_s: no wait is longer.
        jitter: each wait is spread by up to this fraction either way.
        attempts: give up after this many failed tries in a row (None: never).
        stall_s: a connected feed that sends nothing this long is reopened.
    """

    initial_s: float = 1.0
    factor: float = 1.6
    max_s: float = 30.0
    jitter: float = 0.2
    attempts: int | None = None
    stall_s: float = 3.0

    def __post_init__(self) -> None:
        if self.initial_s <= 0 or self.factor < 1 or self.max_s < self.initial_s:
            raise OrstreamError(
                "reconnect backoff needs initial_s > 0, factor >= 1 and max_s >= initial_s"
            )
        if not 0 <= self.jitter < 1 or self.stall_s <= 0:
            raise OrstreamError("reconnect backoff needs 0 <= jitter < 1 and stall_s > 0")
        if self.attempts is not None and self.attempts < 1:
            raise OrstreamError("reconnect attempts must be at least 1 (or unlimited)")

    def wait_s(self, failures: int, rng: random.Random) -> float:
        """The wait before the try that follows ``failures`` failed ones (0: the first)."""
        base = min(self.max_s, self.initial_s * self.factor**failures)
        return base * (1 + self.jitter * rng.uniform(-1, 1))


DEFAULT_BACKOFF = Backoff()
"""1 s x1.6 up to 30 s, 20% jitter, never giving up; a silent feed is reopened after 3 s."""


class ReconnectingSource:
    """A live source reopened whenever its feed is lost (see the module docstring).

    Args:
        open: makes a fresh source for the feed (each call a new connection); its failures
            are :class:`~orstream.errors.OrstreamError`.
        uri: the feed (status and errors name it).
        stream_id: the ``stream_id`` of every frame.
        backoff: when to try again.
        seed: seeds the jitter (tests).

    Attributes:
        connected: a connection is delivering frames now.
        reconnects: connections made after a loss.
        last_error: why the feed was last lost (empty before any loss).
    """

    live = True

    def __init__(
        self,
        open: Callable[[], Source],
        uri: str,
        stream_id: str,
        backoff: Backoff = DEFAULT_BACKOFF,
        seed: int | None = None,
    ) -> None:
        self.open = open
        self.uri = uri
        self.stream_id = stream_id
        self.backoff = backoff
        self.connected = False
        self.reconnects = 0
        self.last_error = ""
        self._rng = random.Random(seed)
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._current: Source | None = None
        self._pts_offset = 0

    def close(self) -> None:
        """Stop: a running ``frames()`` returns soon after, also in the middle of a wait."""
        self._closed.set()
        with self._lock:
            current = self._current
        if current is not None:
            current.close()

    def frames(self) -> Iterator[Frame]:
        """Frames until :meth:`close`, across every loss of the feed.

        Raises:
            OrstreamError: ``backoff.attempts`` tries in a row failed.
        """
        index = 0
        last: Frame | None = None
        failures = 0
        while not self._closed.is_set():
            try:
                source = self.open()
            except OrstreamError as error:
                source, lost = None, str(error)
            if source is not None:
                with self._lock:
                    self._current = source
                if self._closed.is_set():
                    source.close()
                lost = "the feed ended"
                first = True
                try:
                    for frame in source.frames():
                        self.connected = True
                        failures = 0
                        if first and last is not None:
                            self.reconnects += 1
                            down_s = (frame.capture_ns - last.capture_ns) / 1e9
                            log.warning("%s: feed back after %.1f s without it", self.uri, down_s)
                        frame = self._on_timeline(frame, last, index, first and last is not None)
                        first = False
                        last = frame
                        index += 1
                        yield frame
                except OrstreamError as error:
                    lost = str(error)
                finally:
                    self.connected = False
                    with self._lock:
                        self._current = None
                    source.close()
            if self._closed.is_set():
                return
            self.last_error = lost
            if self.backoff.attempts is not None and failures >= self.backoff.attempts:
                raise OrstreamError(f"{self.uri}: gave up after {failures} tries ({lost})")
            wait_s = self.backoff.wait_s(failures, self._rng)
            log.warning("%s: feed lost (%s); trying again in %.1f s", self.uri, lost, wait_s)
            failures += 1
            self._closed.wait(wait_s)

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def _on_timeline(
        self, frame: Frame, last: Frame | None, index: int, reconnected: bool
    ) -> Frame:
        """``frame`` on the feed's one timeline (see the module docstring)."""
        if last is None:
            return replace(frame, index=index)
        if reconnected:
            self._pts_offset = last.pts_ns + (frame.capture_ns - last.capture_ns) - frame.pts_ns
        return replace(
            frame,
            index=index,
            pts_ns=frame.pts_ns + self._pts_offset,
            discontinuity=frame.discontinuity or reconnected,
        )
