"""A video file opened for a job: its format, and its frames decoded in order (PyAV).

Every failure is one line naming the input as the client named it, never the server's path:
not a video, no video stream, or damaged part-way (FFmpeg's own reason).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError


class OpenedVideo:
    """The first video stream of a file.

    Args:
        path: the file on the server.
        name: the input's name, for messages.

    Raises:
        OrstreamError: the file is not a video or has no video stream.
    """

    def __init__(self, path: Path, name: str) -> None:
        import av

        self.path = path
        self.name = name
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise OrstreamError(f"{name}: has no video stream")
                stream = container.streams.video[0]
                rate = stream.average_rate or stream.guessed_rate
                context = stream.codec_context
                self.width: int = context.width
                self.height: int = context.height
                self.fps = float(rate) if rate else 0.0
                self.frame_count = int(stream.frames or 0)
                """As the container declares it (0: not declared)."""
                self.codec: str = context.name
                self.pixel_format: str = context.format.name if context.format else ""
        except (av.error.FFmpegError, UnicodeDecodeError) as error:
            raise OrstreamError(
                f"{name}: not a video file, or damaged or truncated ({_reason(error)})"
            ) from None

    def frames(self) -> Iterator[tuple[float, np.ndarray]]:
        """Each frame's time in seconds from the first, and its RGB image (H, W, 3) uint8.

        Raises:
            OrstreamError: decoding fails part-way.
        """
        import av

        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                time_base = float(stream.time_base) if stream.time_base else 0.0
                first: int | None = None
                for index, frame in enumerate(container.decode(stream)):
                    if frame.pts is not None and time_base:
                        first = frame.pts if first is None else first
                        time_s = (frame.pts - first) * time_base
                    else:
                        time_s = index / self.fps if self.fps else float(index)
                    yield time_s, frame.to_ndarray(format="rgb24")
        except av.error.FFmpegError as error:
            raise OrstreamError(f"{self.name}: damaged video ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    """FFmpeg's own short reason, without the file name it repeats."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).split(";")[0].strip()
