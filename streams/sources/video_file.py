"""Reading facts about video files (PyAV), with clear errors for files that are not usable."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` found in a file's first video stream."""

    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float
    codec: str = ""
    pixel_format: str = ""


def probe_video(path: Path | str) -> VideoInfo:
    """Open a video file, check it is complete, and describe its first video stream.

    Every packet of the stream is read (not decoded), so a file cut short is caught even when
    its index (e.g. an MP4 ``moov`` at the front) still promises the full length.

    Raises:
        OrstreamError: the path is missing or a directory, the file is not a video, has no
            video stream, or is truncated.
    """
    import av

    path = Path(path)
    if not path.exists():
        raise OrstreamError(f"{path}: no such file")
    if path.is_dir():
        raise OrstreamError(f"{path}: is a directory, not a video file")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as error:
        raise OrstreamError(
            f"{path}: not a video file, or damaged or truncated ({_reason(error)})"
        ) from None
    with container:
        if not container.streams.video:
            raise OrstreamError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        time_base = stream.time_base or Fraction(1, 1)
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        declared_frames = int(stream.frames or 0)
        declared_s = float(stream.duration * time_base) if stream.duration else 0.0
        if not declared_s and container.duration:
            declared_s = container.duration / 1_000_000
        packets, end_s = _scan_packets(container, stream, path)
        codec = stream.codec_context.name
        pixel_format = stream.codec_context.format.name if stream.codec_context.format else ""
    if packets == 0:
        raise OrstreamError(f"{path}: video stream holds no frames (empty or truncated)")
    if declared_frames and packets < declared_frames:
        raise OrstreamError(f"{path}: truncated: {packets} of {declared_frames} frames present")
    frame_s = 1.0 / fps if fps else 0.0
    if declared_s and end_s + frame_s < declared_s - 0.5 * frame_s - 1e-3:
        raise OrstreamError(
            f"{path}: truncated: frames reach {end_s:.2f} s of a stated {declared_s:.2f} s"
        )
    duration = declared_s or end_s + frame_s
    return VideoInfo(width, height, fps, declared_frames or packets, duration, codec, pixel_format)


def _scan_packets(container: Any, stream: Any, path: Path) -> tuple[int, float]:
    """Count the stream's packets and find where the last one ends (seconds from the start)."""
    import av

    time_base = stream.time_base or Fraction(1, 1)
    start = stream.start_time or 0
    count = 0
    end = 0.0
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            count += 1
            if packet.pts is not None:
                end = max(end, float((packet.pts - start) * time_base))
    except av.error.FFmpegError as error:
        raise OrstreamError(f"{path}: damaged or truncated video ({_reason(error)})") from None
    return count, end


def _reason(error: Exception) -> str:
    """FFmpeg's own short reason, without the file name it repeats."""
    text = getattr(error, "strerror", None) or str(error)
    return str(text).split(";")[0].strip()


class H264Writer:
    """Writes RGB frames to an H.264 MP4 (libx264, yuv420p, index at the front).

    The encoder runs single-threaded with fixed settings, so the same frames always give the
    same bytes.
    """

    def __init__(
        self,
        path: Path | str,
        width: int,
        height: int,
        fps: float,
        crf: int = 18,
        preset: str = "veryfast",
    ) -> None:
        import av

        if width % 2 or height % 2:
            raise OrstreamError(f"{path}: H.264 yuv420p needs an even size, got {width}x{height}")
        self.path = Path(path)
        self.width = width
        self.height = height
        rate = Fraction(fps).limit_denominator(1001)
        try:
            self._container = av.open(str(self.path), mode="w", options={"movflags": "+faststart"})
        except (av.error.FFmpegError, OSError) as error:
            raise OrstreamError(f"cannot write {self.path}: {_reason(error)}") from None
        self._stream = self._container.add_stream("libx264", rate=rate)
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = "yuv420p"
        self._stream.time_base = 1 / rate
        self._stream.codec_context.options = {
            "crf": str(crf),
            "preset": preset,
            "threads": "1",
            "g": str(round(fps) * 2),
        }
        self._count = 0

    def write(self, image: np.ndarray) -> None:
        """Encode one (H, W, 3) uint8 RGB frame."""
        import av
        import cv2

        planes: np.ndarray = cv2.cvtColor(image, cv2.COLOR_RGB2YUV_I420)
        frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
        frame.pts = self._count
        self._count += 1
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        """Flush the encoder and finish the file."""
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> H264Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
