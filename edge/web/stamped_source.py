"""A source whose frames carry a frame counter in their pixels (:mod:`frame_stamp`), with each
counter's capture time appended to a log: the two halves of a glass-to-glass measurement, the
other being the browser reading the counter off the screen (``orstream bench dashboard``).

The edge wraps its sources in it only when ``web.latency_stamps`` names the log, so an edge
that does not measure pays nothing. The counter is written as the frame enters orstream, before
the models and the overlay see it, so the measurement covers the whole path to the screen.

The log holds one JSON object a line: ``{"stream", "count", "counter", "capture_wall_ns"}``,
``count`` the frames the stream delivered before this one, ``counter`` what the pixels say
(``count`` modulo ``2**BITS``), ``capture_wall_ns`` the frame's ``capture_ns`` on the wall
clock (``time.time_ns()``), the clock the browser's ``performance.timeOrigin`` counts from.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from orstream.edge.web.frame_stamp import BITS, stamp_box, write_stamp
from orstream.streams.frame import Frame
from orstream.streams.sources.source import Source


class StampedSource:
    """Frames of ``source``, each stamped with its counter; capture times go to ``log_path``.

    Args:
        source: the stream's own source.
        log_path: the log, appended to (several streams may share one: each line names its
            stream, and a line is written whole).
    """

    def __init__(self, source: Source, log_path: Path) -> None:
        self._source = source
        self._log_path = log_path
        self.stream_id = source.stream_id
        self.uri = source.uri
        self.live = source.live

    def frames(self) -> Iterator[Frame]:
        with self._log_path.open("a", buffering=1) as log:
            for count, frame in enumerate(self._source.frames()):
                image = frame.image
                if isinstance(image, np.ndarray) and not image.flags.writeable:
                    image = image.copy()  # a decoder's buffer, not ours to write on
                height, width = image.shape[:2]
                write_stamp(image, count, stamp_box(height, width))
                wall_ns = frame.capture_ns + time.time_ns() - time.monotonic_ns()
                record = {
                    "stream": self.stream_id,
                    "count": count,
                    "counter": count % (1 << BITS),
                    "capture_wall_ns": wall_ns,
                }
                log.write(json.dumps(record) + "\n")
                yield frame if image is frame.image else replace(frame, image=image)

    def close(self) -> None:
        self._source.close()

    def __getattr__(self, name: str) -> Any:
        """What the source op asks a source besides frames (``last_error``, ``connected``,
        ``reconnects``, ``dropped``) is the wrapped source's."""
        return getattr(self._source, name)
