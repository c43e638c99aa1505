"""Prompts on recent frames: the runtime's memory of frames and image embeddings per stream.

The image encoder is the expensive half of the segmenter, so it runs at most once per frame:
the embeddings of the last ``keep_embeddings`` frames of each stream stay cached, whether the
live segmentation or a client prompt computed them, and a prompt on one of those frames runs
only the prompt decoder. Raw frames are kept too (the last ``keep_frames`` per stream, as
references, not copies), so a client can prompt on a frame the encoder has not seen yet.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence

import numpy as np

from orstream.edge.models.segmenter_model import ImageEmbedding, MaskPrediction, SegmenterModel
from orstream.errors import quoted
from orstream.results import SegmentMask
from orstream.segmentation.mask_rle import encode_mask
from orstream.segmentation.mask_scores import mask_box
from orstream.segmentation.prompt_tensors import PromptError
from orstream.segmentation.prompts import Prompt, PromptAnswer
from orstream.streams.frame import Frame


class FrameNotFound(LookupError):
    """The stream is unknown, or the frame is no longer (or was never) kept."""


class PromptCancelled(Exception):
    """Whoever asked for the prompt is gone (cancelled, or past its deadline): work stopped."""


def segment_mask(prediction: MaskPrediction, code: int, name: str) -> SegmentMask:
    """The result form of one predicted mask."""
    return SegmentMask(
        code=code,
        name=name,
        score=float(prediction.score),
        mask=encode_mask(prediction.mask),
        box=mask_box(prediction.mask),
    )


class _StreamMemory:
    """Recent frames and embeddings of one stream, oldest first."""

    def __init__(self, keep_frames: int, keep_embeddings: int) -> None:
        self.frames: deque[Frame] = deque(maxlen=keep_frames)
        self.embeddings: OrderedDict[int, tuple[Frame, ImageEmbedding]] = OrderedDict()
        self.keep_embeddings = keep_embeddings

    def store(self, frame: Frame, embedding: ImageEmbedding) -> None:
        self.embeddings[frame.index] = (frame, embedding)
        self.embeddings.move_to_end(frame.index)
        while len(self.embeddings) > self.keep_embeddings:
            self.embeddings.popitem(last=False)

    def find(self, index: int | None) -> tuple[Frame, ImageEmbedding | None] | None:
        """The frame ``index`` (the newest when None) and its embedding if kept."""
        if index is None:
            # The newest frame already embedded answers at decoder cost; it is at most one
            # live segmentation interval old. Without any, the newest frame.
            if self.embeddings:
                return next(reversed(self.embeddings.values()))
            return (self.frames[-1], None) if self.frames else None
        if index in self.embeddings:
            return self.embeddings[index]
        for frame in reversed(self.frames):
            if frame.index == index:
                return frame, None
        return None


class FramePrompter:
    """Answers prompts on the recent frames of every stream with one segmenter.

    Thread-safe: the source thread calls :meth:`remember`, the live segmentation and gRPC
    threads call :meth:`embedding` and :meth:`prompt`.

    Args:
        model: the loaded segmenter.
        keep_frames: raw frames kept per stream (about a second of video by default).
        keep_embeddings: image embeddings kept per stream.
    """

    def __init__(
        self, model: SegmenterModel, keep_frames: int = 30, keep_embeddings: int = 16
    ) -> None:
        if keep_frames < 1 or keep_embeddings < 1:
            raise ValueError("keep_frames and keep_embeddings must be at least 1")
        self.model = model
        self.keep_frames = keep_frames
        self.keep_embeddings = keep_embeddings
        self._lock = threading.Lock()
        self._streams: dict[str, _StreamMemory] = {}
        self.encoder_runs = 0

    def remember(self, frame: Frame) -> None:
        """Keep a reference to a frame of its stream (drops the stream's oldest)."""
        with self._lock:
            self._memory(frame.stream_id).frames.append(frame)

    def embedding(self, frame: Frame) -> tuple[ImageEmbedding, bool]:
        """The frame's image embedding, and whether it was already kept (else it is computed
        now and kept)."""
        return self.embeddings([frame])[0]

    def embeddings(self, frames: Sequence[Frame]) -> list[tuple[ImageEmbedding, bool]]:
        """Each frame's image embedding and whether it was already kept; the others are encoded
        together (a batch, when the encoder takes one) and kept."""
        with self._lock:
            found = [self._memory(f.stream_id).embeddings.get(f.index) for f in frames]
        missing = [frame for frame, kept in zip(frames, found, strict=True) if kept is None]
        encoded = iter(self.model.embed_batch([np.asarray(f.image) for f in missing]))
        answers = []
        with self._lock:
            for frame, kept in zip(frames, found, strict=True):
                if kept is not None:
                    answers.append((kept[1], True))
                    continue
                embedding = next(encoded)
                self.encoder_runs += 1
                self._memory(frame.stream_id).store(frame, embedding)
                answers.append((embedding, False))
        return answers

    def prompt(
        self,
        stream_id: str,
        index: int | None,
        region: Prompt | None = None,
        classes: Sequence[str] = (),
        wanted: Callable[[], bool] = lambda: True,
    ) -> PromptAnswer:
        """Masks for clicks and/or a box (``region``) and for each class name, on one frame.

        Args:
            stream_id: the stream ("" when there is exactly one).
            index: the frame's index, or None for the latest (the newest embedded frame when
                there is one, else the newest frame).
            region: clicks and/or a box, in full-resolution frame pixels.
            classes: class names of the segmenter, one mask each; at most as many as it has
                classes, each once.
            wanted: False once the caller is gone; checked before the encoder and before each
                mask, so abandoned work stops.

        Raises:
            FrameNotFound: unknown stream, or a frame no longer kept.
            PromptError: no prompt at all, or a bad one (the message says which).
            PromptCancelled: ``wanted`` turned False.
        """
        start = time.perf_counter()
        if region is None and not classes:
            raise PromptError("give points, a box or a class name to segment")
        if len(classes) > len(self.model.classes) or len(set(classes)) < len(classes):
            raise PromptError(
                f"give each class name at most once, at most {len(self.model.classes)} "
                f"({len(classes)} given)"
            )
        prompts = [] if region is None else [(region, 0, "")]
        for name in classes:
            code = self.model.classes.get(name)
            if code is None:
                known = ", ".join(sorted(self.model.classes))
                raise PromptError(f"unknown class name {quoted(name)} (known: {known})")
            prompts.append((Prompt(text=name), code, name))
        frame, embedding = self._find(stream_id, index)
        cached = embedding is not None
        if embedding is None:
            if not wanted():
                raise PromptCancelled("the caller is gone")
            embedding, cached = self.embedding(frame)
        masks = []
        for prompt, code, name in prompts:
            if not wanted():
                raise PromptCancelled("the caller is gone")
            masks.append(segment_mask(self.model.segment(embedding, prompt), code, name))
        return PromptAnswer(
            stream_id=frame.stream_id,
            index=frame.index,
            pts_ns=frame.pts_ns,
            masks=tuple(masks),
            model=self.model.label,
            latency_ms=(time.perf_counter() - start) * 1e3,
            embedding_cached=cached,
        )

    def _find(self, stream_id: str, index: int | None) -> tuple[Frame, ImageEmbedding | None]:
        with self._lock:
            if not stream_id:
                if len(self._streams) != 1:
                    known = ", ".join(sorted(self._streams)) or "none yet"
                    raise FrameNotFound(f"name the stream to prompt on (streams: {known})")
                stream_id = next(iter(self._streams))
            memory = self._streams.get(stream_id)
            if memory is None:
                known = ", ".join(sorted(self._streams)) or "none yet"
                raise FrameNotFound(f"unknown stream {quoted(stream_id)} (streams: {known})")
            found = memory.find(index)
            oldest = memory.frames[0].index if memory.frames else None
        if found is None:
            if index is None:
                raise FrameNotFound(f"stream {quoted(stream_id)} has no frame yet")
            kept = f"frames {oldest} and later" if oldest is not None else "no frames"
            raise FrameNotFound(
                f"frame {index} of stream {quoted(stream_id)} is not kept (the runtime keeps "
                f"{kept}, and the embeddings of the last {self.keep_embeddings} segmented frames)"
            )
        return found

    def _memory(self, stream_id: str) -> _StreamMemory:
        memory = self._streams.get(stream_id)
        if memory is None:
            memory = self._streams[stream_id] = _StreamMemory(
                self.keep_frames, self.keep_embeddings
            )
        return memory
