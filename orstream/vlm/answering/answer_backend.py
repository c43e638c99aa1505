"""What answers a question about a clip or a slide: the one contract every VLM backend keeps.

A request carries the raw visual input (RGB frames of a surgical clip, or a slide file), not a
model's features: each backend turns it into what its model reads (the project's model through
its frame and slide encoders, a Hugging Face model through its own processor), so the server's
``vlm`` job kind and the edge's ``Ask`` hand every backend the same request.

An answer streams as text pieces while tokens are decoded; the stream ends at the model's end of
text, at ``max_new_tokens``, at the deadline, or as soon as ``cancelled()`` answers True, and
says which in its :class:`AnswerEnd`.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import numpy as np

from orstream.errors import OrstreamError

MAX_QUESTION_CHARS = 500
"""The longest question accepted (a longer one is refused, not cut)."""

EndReason = Literal["eos", "max_new_tokens", "deadline", "cancelled"]


def check_question(question: object) -> str:
    """The question without surrounding spaces, checked as every backend and the edge's ``Ask``
    accept it.

    Raises:
        OrstreamError: not text, empty, longer than ``MAX_QUESTION_CHARS`` or holding control
            characters (line breaks and tabs are allowed: a multiple-choice question lists its
            options on lines of their own).
    """
    if not isinstance(question, str):
        raise OrstreamError("a question must be text")
    text = question.strip()
    if not text:
        raise OrstreamError("the question is empty")
    if len(text) > MAX_QUESTION_CHARS:
        raise OrstreamError(
            f"the question is {len(text)} characters long; at most {MAX_QUESTION_CHARS}"
        )
    if not all(c.isprintable() or c in "\n\t" for c in text):
        raise OrstreamError("the question holds control characters")
    return text


@dataclass(frozen=True)
class AnswerRequest:
    """One question with what it is about.

    Attributes:
        question: the question text (1 to ``MAX_QUESTION_CHARS`` printable characters; line
            breaks allowed).
        frames: a surgical clip's RGB frames [T, H, W, 3] uint8, oldest first; or None.
        slide: a whole-slide image file; or None. Exactly one of ``frames`` and ``slide``.
        max_new_tokens: the most tokens the answer may take.
        deadline_s: seconds the answer may take from its start (None: no limit).
        reasoning: False asks for the answer alone: the answer starts with an empty
            ``<think></think>`` (streamed as its first piece), so the model writes no reasoning.
    """

    question: str
    frames: np.ndarray | None = None
    slide: Path | None = None
    max_new_tokens: int = 96
    deadline_s: float | None = None
    reasoning: bool = True

    def __post_init__(self) -> None:
        check_question(self.question)
        if (self.frames is None) == (self.slide is None):
            raise OrstreamError("a question is about a clip (frames) or a slide, exactly one")
        if self.frames is not None and (
            self.frames.ndim != 4 or self.frames.shape[-1] != 3 or self.frames.dtype != np.uint8
        ):
            raise OrstreamError(
                f"frames must be RGB uint8 [T, H, W, 3], not {self.frames.dtype} "
                f"{list(self.frames.shape)}"
            )
        if self.frames is not None and len(self.frames) == 0:
            raise OrstreamError("the clip holds no frames")
        if self.max_new_tokens < 1:
            raise OrstreamError(f"max_new_tokens must be at least 1, not {self.max_new_tokens}")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise OrstreamError(f"the deadline must be positive, not {self.deadline_s} s")

    @property
    def source(self) -> Literal["surgical", "slide"]:
        """Which kind of visual input the question is about."""
        return "surgical" if self.frames is not None else "slide"


@dataclass(frozen=True)
class AnswerEnd:
    """How an answer ended: why, and how many tokens it took."""

    reason: EndReason
    tokens: int


class AnswerBackend(Protocol):
    """A loaded vision-language model that answers requests."""

    name: str
    """The backend and model, for logs and job results (e.g. ``onnx:gmai_vl_small``)."""

    def stream(
        self, request: AnswerRequest, cancelled: Callable[[], bool] = lambda: False
    ) -> Generator[str, None, AnswerEnd]:
        """Text pieces of the answer as they are decoded; the generator returns (its
        ``StopIteration.value``) the :class:`AnswerEnd`."""
        ...
