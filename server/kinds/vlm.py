"""Job kind ``vlm``: a question about a surgical clip or a slide, answered by a vision-language
model, its text streamed as partial results while it is decoded.

The model is the server's (``orstream server run --vlm MODEL``): a vision-language package of
``orstream export onnx`` on ONNX Runtime or torch, or a local Hugging Face VLM folder on the
``transformers`` runtime (:mod:`orstream.vlm.answering.transformers_backend`). It is opened on the
first job and shared by the kind's jobs, which the package's engine decodes in one batch when they
run at once (``--concurrency vlm=N`` lets N run together).

Input: one file, uploaded or by server path: a video clip (the edge's ``Ask`` hands its clip;
any container FFmpeg reads) or a whole-slide image (any format OpenSlide opens), told apart by
the ``about`` parameter or else by the file's suffix.
Parameters: ``question`` (required: 1 to 500 printable characters), ``max_new_tokens`` (1 to
the server's limit; default the server's), ``deadline_s`` (seconds the answer may take),
``reasoning`` (``false`` asks for the answer alone), ``about`` (``clip`` or ``slide``).
Each partial result is ``{"text": PIECE}``; the result holds the whole ``text``, the
``reasoning`` and ``answer`` read from it (null when the model did not write that part), how
the answer ended (``end``: eos, max_new_tokens, deadline), its ``tokens`` and the ``model``.
A cancelled job stops decoding at the next token.
"""

from __future__ import annotations

import importlib.util
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.jobs import JobSubmission
from orstream.server.kinds.job_kind import JobContext
from orstream.server.kinds.opened_video import OpenedVideo
from orstream.vlm.answering.answer_backend import AnswerBackend, AnswerRequest, check_question

RUNTIMES = ("onnx", "torch", "transformers")
RUNTIME_LIBRARIES = {
    "torch": (("torch",), "pip install torch"),
    "transformers": (("torch", "transformers"), "pip install 'orstream[vlm-hf]'"),
}
"""What each runtime imports beyond the server extra, and how to install it."""
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".ts"})
MAX_CLIP_FRAMES = 64
"""Frames of a clip kept for the model, evenly over the clip (the models sample fewer)."""
_PART = re.compile(r"<(think|answer)>(.*?)(?:</\1>|$)", re.DOTALL)
_FLAGS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_PARAMS = {"question", "max_new_tokens", "deadline_s", "reasoning", "about"}


@dataclass(frozen=True)
class VlmSettings:
    """The server's vision-language model (``orstream server run --vlm ...``).

    Attributes:
        model: a vision-language package, or a Hugging Face folder (``transformers``).
        runtime: ``onnx``, ``torch`` or ``transformers``.
        device: torch's and transformers' device.
        max_batch: answers decoded together (the package engines).
        default_new_tokens: an answer's longest when a job names none.
        max_new_tokens: the most a job may ask for.
        default_deadline_s: the longest an answer may take when a job names no deadline.
        frame_package, instrument_package, slide_package: a package's vision encoders where
            the server keeps them (None: the paths its card records; the graphs must be the
            recorded ones either way).
    """

    model: Path
    runtime: str = "onnx"
    device: str = "cpu"
    max_batch: int = 8
    default_new_tokens: int = 160
    max_new_tokens: int = 1024
    default_deadline_s: float = 300.0
    frame_package: Path | None = None
    instrument_package: Path | None = None
    slide_package: Path | None = None

    def __post_init__(self) -> None:
        if self.runtime not in RUNTIMES:
            raise OrstreamError(f"--vlm-runtime {self.runtime!r}: one of {', '.join(RUNTIMES)}")
        needed, install = RUNTIME_LIBRARIES.get(self.runtime, ((), ""))
        missing = [name for name in needed if importlib.util.find_spec(name) is None]
        if missing:
            raise OrstreamError(
                f"--vlm-runtime {self.runtime} needs {' and '.join(missing)}, which this "
                f"environment lacks: {install}"
            )
        if not self.model.is_dir():
            raise OrstreamError(f"--vlm {self.model}: no such folder")
        encoders = {
            "--vlm-frame-package": self.frame_package,
            "--vlm-instrument-package": self.instrument_package,
            "--vlm-slide-package": self.slide_package,
        }
        for flag, path in encoders.items():
            if path is not None and self.runtime == "transformers":
                raise OrstreamError(f"{flag} is for packages; a transformers model has its own")
            if path is not None and not path.is_dir():
                raise OrstreamError(f"{flag} {path}: no such folder")
        if not 1 <= self.default_new_tokens <= self.max_new_tokens:
            raise OrstreamError("the default answer length must be 1 to the longest allowed")
        if self.max_batch < 1 or self.default_deadline_s <= 0:
            raise OrstreamError("max_batch must be at least 1 and the deadline positive")


class VlmKind:
    """The ``vlm`` job kind (see the module's docstring); without settings it refuses every
    job, saying how to give the server a model."""

    name = "vlm"
    description = "a question about a clip or a slide, answered by the server's VLM as it decodes"

    def __init__(self, settings: VlmSettings | None = None) -> None:
        self.settings = settings
        self._backend: AnswerBackend | None = None
        self._opening = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        # Pickled to Ray Serve replicas: each opens its own model.
        return {"settings": self.settings}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.settings = state["settings"]
        self._backend = None
        self._opening = threading.Lock()

    def check(self, submission: JobSubmission) -> None:
        """A model, one input and good parameters.

        Raises:
            OrstreamError: otherwise.
        """
        if self.settings is None:
            raise OrstreamError(
                "this server has no vision-language model: start it with --vlm PACKAGE "
                "(a package of orstream export onnx, or a Hugging Face folder with "
                "--vlm-runtime transformers)"
            )
        if len(submission.inputs) != 1:
            raise OrstreamError(f"vlm takes one clip or slide, not {len(submission.inputs)} inputs")
        _options(submission.params, self.settings)
        _about(submission.params, submission.inputs[0].name)

    def run(self, context: JobContext) -> Mapping[str, Any]:
        """Answer the job's question, each decoded piece a partial result."""
        assert self.settings is not None  # check refused the job otherwise
        question, max_new_tokens, deadline_s, reasoning = _options(context.params, self.settings)
        ((name, path),) = context.inputs.items()
        started = time.monotonic()
        about = _about(context.params, name)
        context.progress(0.0, f"reading the {about}")
        if about == "clip":
            request = AnswerRequest(
                question,
                frames=_clip_frames(path, name),
                max_new_tokens=max_new_tokens,
                deadline_s=deadline_s,
                reasoning=reasoning,
            )
        else:
            request = AnswerRequest(
                question,
                slide=path,
                max_new_tokens=max_new_tokens,
                deadline_s=deadline_s,
                reasoning=reasoning,
            )
        backend = self._open()
        context.progress(0.0, f"answering with {backend.name}")
        stopped = threading.Event()
        context.when_stopped(stopped.set)
        pieces: list[str] = []
        stream = backend.stream(request, stopped.is_set)
        try:
            while True:
                piece = next(stream)
                pieces.append(piece)
                context.partial({"text": piece})
        except StopIteration as done:
            end = done.value
        text = "".join(pieces)
        if end.reason == "cancelled":
            context.progress(1.0)  # raises JobStopped: the job was cancelled or the server stops
        parts = {kind: body.strip() for kind, body in _PART.findall(text)}
        return {
            "question": question,
            "text": text,
            "reasoning": parts.get("think"),
            "answer": parts.get("answer"),
            "end": end.reason,
            "tokens": end.tokens,
            "model": backend.name,
            "seconds": round(time.monotonic() - started, 3),
        }

    def _open(self) -> AnswerBackend:
        """The model, opened by the first job that needs it."""
        assert self.settings is not None
        with self._opening:
            if self._backend is None:
                settings = self.settings
                if settings.runtime == "transformers":
                    from orstream.vlm.answering.transformers_backend import TransformersBackend

                    self._backend = TransformersBackend(settings.model, settings.device)
                else:
                    from orstream.vlm.answering.answer_engine import AnswerEngine

                    language = None  # ONNX Runtime: needs no torch on the server
                    if settings.runtime == "torch":
                        from orstream.vlm.answering.torch_language import TorchLanguage

                        language = TorchLanguage(settings.model, settings.device, 1)
                    self._backend = AnswerEngine.open(
                        settings.model,
                        language,
                        frame_package=settings.frame_package,
                        slide_package=settings.slide_package,
                        instrument_package=settings.instrument_package,
                        max_batch=settings.max_batch,
                    )
            return self._backend


def _options(params: Mapping[str, str], settings: VlmSettings) -> tuple[str, int, float, bool]:
    """(question, max_new_tokens, deadline_s, reasoning) of a job's parameters.

    Raises:
        OrstreamError: a missing question, an unknown parameter, or a value out of range.
    """
    unknown = set(params) - _PARAMS
    if unknown:
        raise OrstreamError(
            f"vlm has no parameter {', '.join(sorted(unknown))}; it takes "
            f"{', '.join(sorted(_PARAMS))}"
        )
    if "question" not in params:
        raise OrstreamError("vlm needs the question parameter")
    question = check_question(params["question"])
    tokens = _number(params, "max_new_tokens", settings.default_new_tokens)
    if int(tokens) != tokens or not 1 <= tokens <= settings.max_new_tokens:
        raise OrstreamError(
            f"max_new_tokens {params['max_new_tokens']}: a whole number from 1 to "
            f"{settings.max_new_tokens}"
        )
    deadline_s = _number(params, "deadline_s", settings.default_deadline_s)
    if not 0 < deadline_s <= 3600:
        raise OrstreamError(f"deadline_s {params['deadline_s']}: more than 0, at most 3600")
    flag = params.get("reasoning", "true").strip().lower()
    if flag not in _FLAGS:
        raise OrstreamError(f"reasoning {params['reasoning']!r}: true or false")
    return question, int(tokens), deadline_s, _FLAGS[flag]


def _number(params: Mapping[str, str], name: str, default: float) -> float:
    if name not in params:
        return float(default)
    try:
        value = float(params[name])
    except ValueError:
        raise OrstreamError(f"{name} {params[name]!r}: not a number") from None
    if not np.isfinite(value):
        raise OrstreamError(f"{name} {params[name]!r}: not a finite number")
    return value


def _about(params: Mapping[str, str], input_name: str) -> str:
    """``clip`` or ``slide``: the ``about`` parameter, else by the input's suffix."""
    about = params.get("about")
    if about is None:
        return "clip" if Path(input_name).suffix.lower() in VIDEO_SUFFIXES else "slide"
    if about not in ("clip", "slide"):
        raise OrstreamError(f"about {about!r}: clip or slide")
    return about


def _clip_frames(path: Path, name: str) -> np.ndarray:
    """Up to ``MAX_CLIP_FRAMES`` RGB frames spread evenly over the clip.

    Raises:
        OrstreamError: not a video, damaged, or without frames.
    """
    video = OpenedVideo(path, name)
    every = max(1, -(-video.frame_count // MAX_CLIP_FRAMES)) if video.frame_count else 1
    frames = [image for index, (_, image) in enumerate(video.frames()) if index % every == 0]
    if not frames:
        raise OrstreamError(f"{name}: the clip holds no frames")
    if len(frames) > MAX_CLIP_FRAMES:
        keep = np.linspace(0, len(frames) - 1, MAX_CLIP_FRAMES).round().astype(int)
        frames = [frames[i] for i in keep]
    return np.stack(frames)
