"""A question about a case or a slide, with the reasoning and the answer the ground truth gives.

Answers carry a reasoning chain before the final answer, as GMAI-VL's chain-of-thought QA and
GMAI-VL-R1 write them: ``<think>REASONING</think><answer>ANSWER</answer>``. Every item names
what it asks about (the case and the seconds of the window, or the slide), so the visual input
is found again from the item alone, and says how its answer is compared
(:mod:`orstream.vlm.questions.answer_scoring`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

Source = Literal["surgical", "slide"]
AnswerKind = Literal["text", "set", "number", "choice"]
"""How an answer is compared: ``text`` equal after normalising case, spaces and a final full
stop; ``set`` the same names in any order (``a, b and c``); ``number`` the same integer;
``choice`` the option letter, or the text of that option."""

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
ANSWER_OPEN, ANSWER_CLOSE = "<answer>", "</answer>"


@dataclass(frozen=True)
class QuestionItem:
    """One question with its ground-truth reasoning and answer.

    Attributes:
        id: unique within a question set: ``video_03/step_now/0041`` or ``slide_004/subtype``.
        source: ``surgical`` (a phantom case) or ``slide`` (a phantom slide).
        case: ``video_NN`` or ``slide_NNN``: what a held-out split holds back.
        start_s: first second of the window asked about (surgical; None for slides).
        end_s: the window ends just before this second (surgical; None for slides).
        kind: the question type (``step_now``, ``tumour_present``, ...).
        question: the question as asked.
        reasoning: the chain that leads from what is seen to the answer.
        answer: the answer in its canonical form.
        answer_kind: how a generated answer is compared with ``answer``.
        options: the options of a multiple-choice question, in letter order (A, B, ...).
    """

    id: str
    source: Source
    case: str
    start_s: int | None
    end_s: int | None
    kind: str
    question: str
    reasoning: str
    answer: str
    answer_kind: AnswerKind = "text"
    options: tuple[str, ...] = ()

    @property
    def prompt(self) -> str:
        """The question with its options, as the model is asked it."""
        if not self.options:
            return self.question
        lines = [f"{letter}. {text}" for letter, text in zip("ABCD", self.options, strict=False)]
        return "\n".join([self.question, *lines])

    @property
    def target(self) -> str:
        """The full answer the model learns to write: reasoning, then the answer."""
        return format_answer(self.reasoning, self.answer)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> QuestionItem:
        return cls(**{**data, "options": tuple(data.get("options", ()))})


def format_answer(reasoning: str, answer: str) -> str:
    """``<think>reasoning</think><answer>answer</answer>``."""
    return f"{THINK_OPEN}{reasoning}{THINK_CLOSE}{ANSWER_OPEN}{answer}{ANSWER_CLOSE}"


def split_by_case(
    items: Iterable[QuestionItem], held_out: Iterable[str]
) -> tuple[list[QuestionItem], list[QuestionItem]]:
    """(training items, held-out items): every question about a held-out case or slide is held
    out, so no window or region of it is ever trained on."""
    hidden = set(held_out)
    train: list[QuestionItem] = []
    test: list[QuestionItem] = []
    for item in items:
        (test if item.case in hidden else train).append(item)
    return train, test
