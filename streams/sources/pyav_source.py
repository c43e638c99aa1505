"""Frames of a video file decoded with PyAV, as fast as they decode or at the file's own pace."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from orstream.errors import OrstreamError
from orstream.streams.frame import Frame
from orstream.streams.sources.video_file import VideoInfo, probe_video


class PyAVSource:
    """Decodes a file's first video stream into RGB :class:`Frame` objects.

    The file is checked with :func:`probe_video` first, so a missing, non-video or truncated
    file fails with one clear line before any frame is produced.

    Args:
        path: the video file.
        realtime: release frame ``i`` no earlier than its pts after the first frame (the pace
            a live feed of this file would have); otherwise as fast as frames decode.
        stream_id: the ``stream_id`` of every frame.

    Attributes:
        uri: the file's path.
        live: always False: a file waits for its consumer.
    """

    live = False

    def __init__(self, path: Path | str, realtime: bool = False, stream_id: str = "file") -> None:
        self.path = Path(path)
        self.info: VideoInfo = probe_video(self.path)
        self.realtime = realtime
        self.stream_id = stream_id
        self.uri = str(self.path)
        self._closed = threading.Event()

    def frames(self, wanted: set[int] | None = None) -> Iterator[Frame]:
        """Every frame in order, or only the indices in ``wanted`` (others are decoded, not
        converted, which keeps the stream's decoder state intact)."""
        import av

        start_ns = 0
        first_pts_ns: int | None = None
        try:
            with av.open(str(self.path)) as container:
                stream = container.streams.video[0]
                stream.thread_type = "AUTO"
                time_base = stream.time_base
                for index, decoded in enumerate(container.decode(stream)):
                    if self._closed.is_set():
                        return
                    if wanted is not None and index not in wanted:
                        continue
                    pts_ns = (
                        int(decoded.pts * time_base * 1_000_000_000)
                        if decoded.pts is not None and time_base is not None
                        else round(index * 1e9 / self.info.fps)
                    )
                    if first_pts_ns is None:
                        # The pace counts from the first frame's release, not from opening.
                        first_pts_ns, start_ns = pts_ns, time.monotonic_ns()
                    if self.realtime:
                        due_ns = start_ns + (pts_ns - first_pts_ns)
                        delay_ns = due_ns - time.monotonic_ns()
                        if delay_ns > 0:
                            time.sleep(delay_ns / 1e9)
                    capture_ns = time.monotonic_ns()
                    yield Frame(
                        image=decoded.to_ndarray(format="rgb24"),
                        pts_ns=pts_ns - first_pts_ns,
                        capture_ns=capture_ns,
                        index=index,
                        stream_id=self.stream_id,
                    )
        except av.error.FFmpegError as error:
            raise OrstreamError(f"{self.path}: decoding failed ({error})") from None

    def close(self) -> None:
        """Stop: a running ``frames()`` returns before its next frame."""
        self._closed.set()
