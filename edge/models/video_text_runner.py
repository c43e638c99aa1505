"""Online video-text inference for any number of streams: clip embeddings and zero-shot steps.

A :class:`VideoTextRunner` drives a ``video_text`` package: its clip encoder (``model.onnx``)
through one backend, frame by frame at the card's clip rate, each stream's window state carried
between calls (fresh at the start and after a discontinuity) and the frames of several streams
stacked into one call when the backend takes a batch; its text encoder through another, to embed
prompts and search texts. No step label is ever trained on: the zero-shot step of a clip is the
step whose prompt embedding is nearest, as a softmax over the card's scaled cosine similarities,
smoothed online per stream as the recognizer's step is.

Prompts (one text per step) start as the package's and can be replaced at run time, or reset
to the package's (:meth:`VideoTextRunner.set_prompts`); a text that is empty or longer than
the text encoder takes is refused with one clear line and changes nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from orstream.edge.backends import CPU_BACKENDS, Backend, create_backend
from orstream.edge.models.workflow_runner import StreamFrame
from orstream.errors import OrstreamError
from orstream.package.card import TEXT_INPUTS, TEXT_OUTPUT
from orstream.package.loading import ModelPackage
from orstream.package.preprocess import image_spec, preprocessor_for
from orstream.step_smoothing import StepSmoother
from orstream.wordpiece import WordPieceTokenizer

MAX_TEXTS = 64
"""Texts embedded in one request at most: prompts are one per step, a search is one text."""


@dataclass(frozen=True)
class ClipPrediction:
    """What the runner concluded from one frame of one stream.

    Attributes:
        embedding: float32 [E], unit length: the clip the frame ends.
        step: the zero-shot step (PitVis code), smoothed online.
        confidence: its probability on this frame.
        probs: float64 [C] over the prompts, in label order.
    """

    embedding: np.ndarray
    step: int
    confidence: float
    probs: np.ndarray


@dataclass(frozen=True)
class Prompts:
    """The zero-shot prompts in force: one text per step code and its embedding row."""

    codes: tuple[int, ...]
    texts: tuple[str, ...]
    embeddings: np.ndarray

    def as_dict(self) -> dict[int, str]:
        return dict(zip(self.codes, self.texts, strict=True))


class _Stream:
    def __init__(self, runner: VideoTextRunner) -> None:
        self.card = runner.package.card
        self.tensors = self.card.initial_state()
        self.smoother = StepSmoother(len(runner.codes), min_dwell=runner.min_dwell)

    def reset(self) -> None:
        self.tensors = self.card.initial_state()
        self.smoother.reset()


class VideoTextRunner:
    """Runs a loaded video-text package on any number of streams.

    Args:
        package: the ``video_text`` package.
        clip_backend: a backend with its ``model`` graph loaded.
        text_backend: a backend with its ``text`` graph loaded.
        min_dwell: online step smoothing; default the card's.
        max_batch: frames per clip-encoder call at most (default: what the backend takes).

    Raises:
        OrstreamError: the package is not a video-text package.
    """

    def __init__(
        self,
        package: ModelPackage,
        clip_backend: Backend,
        text_backend: Backend,
        min_dwell: int | None = None,
        max_batch: int | None = None,
    ) -> None:
        self.package = package
        text = package.text_section()
        self.text = text
        self.clip_backend = clip_backend
        self.text_backend = text_backend
        self.preprocess = preprocessor_for(clip_backend, image_spec(package.card))
        self.clip_output = package.card.outputs[0].name
        self.codes = tuple(label.code for label in package.card.labels[text.labels])
        self.tokenizer = WordPieceTokenizer(package.vocab_path)
        self.min_dwell = min_dwell or package.card.step_smoothing.min_dwell
        self.max_batch = max(1, max_batch or clip_backend.max_batch)
        self._default = Prompts(self.codes, text.prompts, package.step_prompts())
        self._prompts = self._default
        self._lock = threading.Lock()
        self._streams: dict[str, _Stream] = {}
        self.calls = 0
        """Clip-encoder calls made so far (fewer than frames when streams were batched)."""

    @classmethod
    def load(
        cls,
        package: ModelPackage,
        device: str = "cpu",
        backends: Sequence[str] = CPU_BACKENDS,
        min_dwell: int | None = None,
    ) -> VideoTextRunner:
        """Both graphs of ``package``, each on the first backend of ``backends`` that runs it
        here and passes its golden check (:func:`~orstream.edge.backends.create_backend`).

        Raises:
            OrstreamError: the package is not a video-text package, or no backend can run a
                graph (every reason listed).
        """
        package.text_section()  # refuses a package of another kind first
        clip = create_backend(backends, package, device, graph="model")
        text = create_backend(backends, package, device, graph="text")
        return cls(package, clip, text, min_dwell=min_dwell)

    @property
    def prompts(self) -> Prompts:
        """The prompts in force."""
        return self._prompts

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length embeddings float32 [N, E] of ``texts`` in the clip space.

        Raises:
            OrstreamError: no text, too many, or one empty or longer than the text encoder
                takes (one line naming it).
        """
        if not texts:
            raise OrstreamError("no text to embed")
        if len(texts) > MAX_TEXTS:
            raise OrstreamError(f"{len(texts)} texts in one request; at most {MAX_TEXTS}")
        ids, mask = self.tokenizer.encode_fixed(texts, self.text.tokens)
        rows = []
        step = max(1, self.text_backend.max_batch)
        with self._lock:  # one text session, called from gRPC threads too
            for start in range(0, len(texts), step):
                rows_ids, rows_mask = ids[start : start + step], mask[start : start + step]
                feeds = dict(zip(TEXT_INPUTS, (rows_ids, rows_mask), strict=True))
                rows.append(self.text_backend.infer(feeds)[TEXT_OUTPUT])
        return np.concatenate(rows).astype(np.float32)

    def set_prompts(self, changes: Mapping[int, str], reset: bool = False) -> Prompts:
        """Replace the prompts of the steps ``changes`` names (code -> text); the others keep
        theirs, or the package's with ``reset``. All or nothing: the prompts in force change
        only once every text is embedded.

        Raises:
            OrstreamError: no change, a code that is not one of the package's steps, or a text
                :meth:`embed_texts` refuses; the prompts in force are unchanged then.
        """
        if not changes and not reset:
            raise OrstreamError("no prompt to set")
        unknown = sorted(set(changes) - set(self.codes))
        if unknown:
            raise OrstreamError(
                f"no step {unknown[0]} among the package's steps "
                f"({', '.join(str(c) for c in self.codes)})"
            )
        base = self._default if reset else self._prompts
        texts = list(base.texts)
        embeddings = base.embeddings.copy()
        if changes:
            codes = list(changes)
            embedded = self.embed_texts([changes[code] for code in codes])
            for code, row in zip(codes, embedded, strict=True):
                index = self.codes.index(code)
                texts[index] = changes[code]
                embeddings[index] = row
        self._prompts = Prompts(self.codes, tuple(texts), embeddings)
        return self._prompts

    def reset(self, stream: str = "") -> None:
        """Forget a stream's past (a seek, reconnect or source switch)."""
        self._stream(stream).reset()

    def forget(self, stream: str) -> None:
        """Drop a stream's state altogether (the stream is gone)."""
        self._streams.pop(stream, None)

    def run(self, frames: Sequence[StreamFrame]) -> list[ClipPrediction]:
        """One frame of each of several streams, in as few clip-encoder calls as it can.

        Raises:
            OrstreamError: two frames of one stream, or what the backend raises.
        """
        streams = [frame.stream for frame in frames]
        if len(set(streams)) != len(streams):
            raise OrstreamError(f"one frame per stream per call, got streams {streams}")
        predictions: list[ClipPrediction] = []
        for start in range(0, len(frames), self.max_batch):
            predictions += self._run_batch(frames[start : start + self.max_batch])
        return predictions

    def _run_batch(self, frames: Sequence[StreamFrame]) -> list[ClipPrediction]:
        states = [self._stream(frame.stream) for frame in frames]
        for frame, state in zip(frames, states, strict=True):
            if frame.discontinuity:
                state.reset()
        inputs = {self.preprocess.spec.name: self.preprocess.batch([f.image for f in frames])}
        for name in states[0].tensors:
            inputs[name] = np.concatenate([state.tensors[name] for state in states])
        outputs = self.clip_backend.infer(inputs)
        self.calls += 1
        prompts = self._prompts
        card = self.package.card
        predictions = []
        for row, state in enumerate(states):
            state.tensors = card.next_state({k: v[row : row + 1] for k, v in outputs.items()})
            embedding = outputs[self.clip_output][row].astype(np.float32)
            logits = self.text.logit_scale * (prompts.embeddings @ embedding).astype(np.float64)
            probs = np.exp(logits - logits.max())
            probs /= probs.sum()
            index = state.smoother.update(probs)
            predictions.append(
                ClipPrediction(embedding, self.codes[index], float(probs[index]), probs)
            )
        return predictions

    def _stream(self, stream: str) -> _Stream:
        state = self._streams.get(stream)
        if state is None:
            state = self._streams[stream] = _Stream(self)
        return state
