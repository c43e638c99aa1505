"""A video-text package serving every stream of the runtime: zero-shot steps, text search and
prompts that change at run time.

Each stream's frames (at the card's clip rate) go through the shared
:class:`~orstream.edge.models.video_text_runner.VideoTextRunner`; every result carries the
zero-shot step in a field of its own (:class:`~orstream.results.ZeroShotStepResult`), never in
the recognizer's, and every clip embedding is kept in the stream's
:class:`~orstream.edge.models.clip_memory.ClipMemory` for :meth:`VideoTextModel.search`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Sequence

import numpy as np

from orstream.edge.models.clip_memory import ClipMemory, KeptClip
from orstream.edge.models.video_text_runner import VideoTextRunner
from orstream.edge.models.workflow_runner import StreamFrame
from orstream.errors import OrstreamError, quoted
from orstream.results import FrameResult, ZeroShotStepResult
from orstream.streams.frame import Frame
from orstream.video_search import PromptChange, SearchAnswer, SearchRequest

DEFAULT_KEEP_S = 3600.0
"""Seconds of each stream's clips kept for search: an hour of surgery, ~1.5 MB a stream."""


class TextRefused(OrstreamError):
    """A search text or prompt the model cannot take (empty, too long, an unknown step)."""


class UnknownStream(OrstreamError):
    """A search names a stream the model has not seen (or none, with several streams)."""


class VideoTextModel:
    """The video-text model, one loaded runner for every stream, at one rate.

    Args:
        runner: the loaded runner.
        rate_hz: frames per second to embed per stream; default the card's ``clip.fps``, the
            rate training sampled clips at.
        keep_s: seconds of each stream's clip embeddings kept for search.
    """

    def __init__(
        self, runner: VideoTextRunner, rate_hz: float | None = None, keep_s: float = DEFAULT_KEEP_S
    ) -> None:
        self.runner = runner
        self.package = runner.package
        card = self.package.card
        self.backend = runner.clip_backend
        self.rate_hz = rate_hz or card.clip.fps
        self.keep_s = keep_s
        self.label = f"{card.name}@{card.version}"
        self.clip_ns = int(card.clip.length / self.rate_hz * 1e9)
        """How long a clip lasts at this rate: moments of a search are at least this apart."""
        self._memories: dict[str, ClipMemory] = {}
        self._windows: dict[str, deque[int]] = {}
        self._lock = threading.Lock()

    def infer(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """One frame of each of several streams -> one result each, in order."""
        predictions = self.runner.run(
            [StreamFrame(f.stream_id, np.asarray(f.image), f.discontinuity) for f in frames]
        )
        produced = time.monotonic_ns()
        texts = self.runner.prompts.texts
        results = []
        for frame, prediction in zip(frames, predictions, strict=True):
            start = self._window_start(frame)
            self._memory(frame.stream_id).add(
                KeptClip(frame.index, frame.pts_ns, start, prediction.embedding)
            )
            prompt = texts[self.runner.codes.index(prediction.step)]
            results.append(
                FrameResult(
                    stream_id=frame.stream_id,
                    index=frame.index,
                    pts_ns=frame.pts_ns,
                    capture_ns=frame.capture_ns,
                    produced_ns=produced,
                    models=(self.label,),
                    zeroshot_step=ZeroShotStepResult(
                        prediction.step, prediction.confidence, prompt
                    ),
                )
            )
        return results

    def search(self, request: SearchRequest) -> SearchAnswer:
        """The moments of a stream's kept clips that best match ``request.text``.

        Raises:
            UnknownStream: the stream has no clips (or none is named and there are several).
            TextRefused: the text does not fit the text encoder.
        """
        started = time.monotonic_ns()
        stream = self._stream_of(request.stream_id)
        try:
            query = self.runner.embed_texts([request.text])[0]
        except OrstreamError as error:
            raise TextRefused(str(error).replace("prompt 1", "the text")) from None
        memory = self._memories[stream]
        moments, searched = memory.search(query, request.seconds, request.limit, self.clip_ns)
        return SearchAnswer(
            stream_id=stream,
            moments=tuple(moments),
            searched=searched,
            model=self.label,
            latency_ms=(time.monotonic_ns() - started) / 1e6,
        )

    def prompts(self) -> dict[int, str]:
        """The zero-shot prompts in force: step code -> text, in the package's step order."""
        return self.runner.prompts.as_dict()

    def set_prompts(self, change: PromptChange) -> dict[int, str]:
        """Apply ``change`` (reset first if it asks) and answer the prompts now in force.

        Raises:
            TextRefused: a code the package has no prompt for, or a text the text encoder
                cannot take; nothing changes then.
        """
        with self._lock:  # one change at a time, each whole
            try:
                self.runner.set_prompts(change.prompts, reset=change.reset)
            except OrstreamError as error:
                raise TextRefused(str(error)) from None
            return self.prompts()

    def _stream_of(self, stream_id: str) -> str:
        known = sorted(self._memories)
        if stream_id:
            if stream_id not in self._memories:
                listed = ", ".join(known) or "none yet"
                raise UnknownStream(f"no clips of stream {quoted(stream_id)} (streams: {listed})")
            return stream_id
        if len(known) != 1:
            raise UnknownStream(
                f"name the stream to search: {', '.join(known)}"
                if known
                else "no clips yet: the video-text model has not seen a frame"
            )
        return known[0]

    def _memory(self, stream: str) -> ClipMemory:
        memory = self._memories.get(stream)
        if memory is None:
            memory = self._memories[stream] = ClipMemory(self.keep_s)
        return memory

    def _window_start(self, frame: Frame) -> int:
        """The pts of the first frame of the clip ``frame`` ends (the window restarts on a
        discontinuity, as the runner's state does)."""
        window = self._windows.get(frame.stream_id)
        if window is None or frame.discontinuity:
            window = self._windows[frame.stream_id] = deque(maxlen=self.package.card.clip.length)
        window.append(frame.pts_ns)
        return window[0]
