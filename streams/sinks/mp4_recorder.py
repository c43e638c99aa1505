"""Recording frames to an H.264 MP4 with GStreamer, every written frame kept."""

from __future__ import annotations

from pathlib import Path

from orstream.errors import OrstreamError
from orstream.streams.gst_init import require_elements
from orstream.streams.sinks.appsrc import AppSrcSink

QUEUE_FRAMES = 32
"""Frames queued for the encoder before ``write()`` waits for it (bounds memory)."""

QUALITY = 20
"""x264 constant-quality level (lower is better; 18-23 is visually good)."""

FRAGMENT_MS = 1000
"""The MP4 is written in fragments this long, each straight to the file (no write buffer): a
file cut short (a crash, a full disk, power lost) still plays up to its last complete
fragment, and its size on disk is what was recorded (segments rotate by it)."""


class Mp4Recorder(AppSrcSink):
    """Encodes RGB frames to an H.264 MP4 (x264, zero-latency tuning).

        Every frame written is in the file: when the encoder falls behind by more than
        ``QUEUE_FRAMES``, ``write()`` waits for it rather than dropping. Frames keep their source
        timing (pts from ``frame.pts_ns``). The file is complete and playable after :meth:`close`,
    and, written in one-second fragments, up to its last fragment if it is never closed.

        Args:
            path: the MP4 to write (its folder must exist; an existing file is replaced).
            width: frame width (even).
            height: frame height (even).
            fps: nominal frame rate (keyframe interval and frame duration).

        Raises:
            OrstreamError: an odd size, a missing folder, an unwritable file, missing plugins.
    """

    def __init__(self, path: Path | str, width: int, height: int, fps: float) -> None:
        self.path = Path(path)
        if width % 2 or height % 2 or width < 2 or height < 2:
            raise OrstreamError(
                f"{self.path}: H.264 needs an even frame size, got {width}x{height}"
            )
        if not self.path.parent.is_dir():
            raise OrstreamError(f"{self.path}: folder {self.path.parent} does not exist")
        require_elements("MP4 recording", "x264enc", "h264parse", "mp4mux", "filesink")
        keyframe_interval = max(1, round(2 * fps))
        tail = (
            "videoconvert ! video/x-raw,format=I420 ! "
            f"x264enc tune=zerolatency speed-preset=veryfast pass=qual quantizer={QUALITY} "
            f"key-int-max={keyframe_interval} ! h264parse ! "
            f"mp4mux fragment-duration={FRAGMENT_MS} ! "
            "filesink name=file buffer-mode=unbuffered"
        )
        super().__init__(
            name=f"mp4:{self.path}",
            tail=tail,
            settings={"file": {"location": str(self.path)}},
            width=width,
            height=height,
            fps=fps,
            keep_every_frame=True,
            queue_frames=QUEUE_FRAMES,
        )
