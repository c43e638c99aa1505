"""A live phantom camera: frames rendered at the real frame rate, with their ground truth.

:class:`PhantomSource` plays one phantom case as a live endoscope would deliver it. Paced (the
default), frame ``i`` is released no earlier than ``i / fps`` seconds after the first, on the
monotonic clock; when rendering falls more than a frame behind, the frames whose time has
passed are skipped, as a live camera's would be, and counted in ``dropped``. Unpaced, frames come
as fast as they render. Either way ``pts_ns`` follows the frame index, so it is the case's own
clock, and the ground truth of every frame handed out can be looked up by its index.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass

from orstream.streams.frame import Frame
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer, slot_codes
from orstream.streams.phantom.writer import PhantomSpec

TRUTH_HISTORY = 512
"""How many recent frames' ground truth a source keeps for lookup."""


@dataclass(frozen=True)
class FrameTruth:
    """What a phantom frame shows.

    Attributes:
        index: frame index (as in :class:`~orstream.streams.frame.Frame`).
        time_s: time in the case (seconds).
        step: PitVis step code (-1 out of patient).
        instruments: codes of the visible instruments, in order of entry (at most two).
    """

    index: int
    time_s: float
    step: int
    instruments: tuple[int, ...]

    @property
    def slots(self) -> tuple[int, int]:
        """The PitVis ``(int_instrument1, int_instrument2)`` codes of this frame."""
        return slot_codes(self.step, self.instruments)


class PhantomSource:
    """Frames of a phantom case, live.

    Args:
        seed: dataset seed (the same as ``orstream phantom make --seed``).
        video: case number; with the same seed, video N here looks like video_NN.mp4.
        seconds: length of the case.
        difficulty: ``easy``, ``normal`` or ``hard``.
        width: frame width.
        height: frame height.
        fps: frame rate.
        paced: release frames at the real frame rate (True) or as fast as they render.
        loop: start the case again at its end (the first frame of each new pass is marked
            as a discontinuity); otherwise the source ends with the case.
        stream_id: the ``stream_id`` of every frame.

    Attributes:
        uri: the ``phantom://`` URI that opens this case again.
        live: always True: frames come at the case's own pace (or are dropped).
    """

    live = True

    def __init__(
        self,
        seed: int = 0,
        video: int = 1,
        seconds: int = 600,
        difficulty: str = "normal",
        width: int = 1280,
        height: int = 720,
        fps: float = 24.0,
        paced: bool = True,
        loop: bool = False,
        stream_id: str = "phantom",
    ) -> None:
        PhantomSpec(1, seconds, seed, difficulty, width, height, fps, video).check()
        self.renderer = CaseRenderer(
            seed, video, seconds, get_difficulty(difficulty), width, height, fps
        )
        # Draw one frame now, so JIT loading and first-touch costs do not delay the first frame.
        self.renderer.render(0)
        self.fps = fps
        self.paced = paced
        self.loop = loop
        self.stream_id = stream_id
        self.uri = (
            f"phantom://?seed={seed}&video={video}&seconds={seconds}&difficulty={difficulty}"
            f"&width={width}&height={height}&fps={fps:g}" + ("&loop=1" if loop else "")
        )
        self._closed = threading.Event()
        self.dropped = 0
        self.truth: FrameTruth | None = None
        self._history: OrderedDict[int, FrameTruth] = OrderedDict()

    @property
    def frame_count(self) -> int:
        """Frames in one pass of the case."""
        return self.renderer.frame_count

    def pts_ns(self, index: int) -> int:
        """Presentation time of frame ``index`` on the source's clock."""
        return round(index * 1_000_000_000 / self.fps)

    def step_at(self, time_s: float) -> int:
        """PitVis step code at a time in the case (seconds)."""
        return self.renderer.plan.step_at(time_s % self.renderer.plan.seconds)

    def truth_of(self, index: int) -> FrameTruth | None:
        """Ground truth of a recently delivered frame (None once it has aged out)."""
        return self._history.get(index)

    def frames(self, limit: int | None = None) -> Iterator[Frame]:
        """Deliver frames (at most ``limit`` of them, counting skipped ones as used)."""
        total = self.frame_count
        end = limit if limit is not None else (None if self.loop else total)
        start_ns = time.monotonic_ns()
        index = 0
        last_pass = 0
        while end is None or index < end:
            if self._closed.is_set() or (not self.loop and index >= total):
                return
            if self.paced:
                due = start_ns + self.pts_ns(index)
                now = time.monotonic_ns()
                if now < due:
                    time.sleep((due - now) / 1e9)
                else:
                    behind = (now - start_ns) * self.fps / 1e9
                    if behind - index >= 1.0:
                        skip = int(behind) - index
                        self.dropped += skip
                        index += skip
                        continue
            local = index % total
            this_pass = index // total
            shown = self.renderer.render(local)
            capture_ns = time.monotonic_ns()
            truth = FrameTruth(index, local / self.fps, shown.step, shown.instruments)
            self._remember(truth)
            yield Frame(
                image=shown.image,
                pts_ns=self.pts_ns(index),
                capture_ns=capture_ns,
                index=index,
                stream_id=self.stream_id,
                discontinuity=this_pass != last_pass,
            )
            last_pass = this_pass
            index += 1

    def __iter__(self) -> Iterator[Frame]:
        return self.frames()

    def close(self) -> None:
        """Stop: a running ``frames()`` returns before its next frame."""
        self._closed.set()

    def _remember(self, truth: FrameTruth) -> None:
        self.truth = truth
        self._history[truth.index] = truth
        while len(self._history) > TRUTH_HISTORY:
            self._history.popitem(last=False)
