"""Scores a generated answer against a question's ground truth: well formed, and correct.

These are the verifiable rewards GMAI-VL-R1's reinforcement learning uses (format and accuracy)
and what evaluation counts, so both read answers the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from orstream.vlm.questions.question_items import QuestionItem

_UNTAGGED = r"((?:(?!</?(?:think|answer)>).)*)"
"""Text holding no reasoning or answer tag: a part may not hide another part's tags (a reward
for the format must not be won by nesting one answer inside another)."""
_FORMAT = re.compile(rf"\s*<think>{_UNTAGGED}</think>\s*<answer>{_UNTAGGED}</answer>\s*", re.DOTALL)
_SET_SEPARATORS = re.compile(r"\s*(?:,\s*and\s+|,|\band\b)\s*")


@dataclass(frozen=True)
class AnswerScore:
    """format_ok: the text is exactly ``<think>...</think><answer>...</answer>`` (spaces around
    allowed); correct: the answer part equals the ground truth (False when the format is not
    ok, since no answer can then be read)."""

    format_ok: bool
    correct: bool


def answer_part(text: str) -> str | None:
    """The text between ``<answer>`` and ``</answer>``, or None when ``text`` is not well
    formed."""
    matched = _FORMAT.fullmatch(text)
    return matched.group(2) if matched else None


def score_answer(item: QuestionItem, text: str) -> AnswerScore:
    """Whether ``text`` is well formed and answers ``item`` correctly."""
    answer = answer_part(text)
    if answer is None:
        return AnswerScore(False, False)
    return AnswerScore(True, answers_match(item, answer))


def answers_match(item: QuestionItem, answer: str) -> bool:
    """Whether ``answer`` (the answer part alone) equals the item's answer, as its
    ``answer_kind`` compares."""
    given = normalise(answer)
    truth = normalise(item.answer)
    if item.answer_kind == "set":
        return _names(given) == _names(truth)
    if item.answer_kind == "number":
        return given.isdigit() and int(given) == int(truth)
    if item.answer_kind == "choice":
        letter = given.split(".")[0].strip()
        if len(letter) == 1:
            return letter == truth
        index = "abcd".index(truth)
        return given == normalise(item.options[index])
    return given == truth


def normalise(text: str) -> str:
    """Lower case, single spaces, no final full stop."""
    return " ".join(text.lower().split()).rstrip(".").strip()


def _names(text: str) -> frozenset[str]:
    return frozenset(part.strip() for part in _SET_SEPARATORS.split(text) if part.strip())
