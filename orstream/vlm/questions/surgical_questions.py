"""Questions about windows of phantom cases, from their per-second annotations.

A window is the ``window_s`` seconds before a moment of a case, as the edge would send the
recent clip of a live stream with a question; windows end every ``stride_s`` seconds. Each asks
what a window shows and the annotations know exactly:

- ``out_of_patient``: is the endoscope out of the patient at the last second (yes / no);
- ``step_now``: which step is in progress at the last second;
- ``step_next``: which step this case goes on to after the current one;
- ``instruments_visible``: which instruments are in view at the last second (a set, or none);
- ``instrument_count``: how many instruments are in view at the last second;
- ``which_first``: which of two instruments (or two steps) shows first in the window;
- ``step_duration``: how many seconds the current step has lasted, when it began inside the
  window (so the clip shows its start).

Only ``out_of_patient`` is asked of a window that ends out of the patient. Wording varies with
the seed, the facts never do; the same seed gives the same items.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENTS, OUT_OF_PATIENT, step_name
from orstream.pitvis.csv_files import Annotations, read_annotations
from orstream.pitvis.layout import annotations_path, video_stem
from orstream.vlm.questions.question_items import AnswerKind, QuestionItem

WINDOW_S = 8
"""Seconds in a window: long enough to see a step begin, short enough for a live question."""
STRIDE_S = 4

SURGICAL_KINDS = (
    "out_of_patient", "step_now", "step_next", "instruments_visible", "instrument_count",
    "which_first", "step_duration",
)  # fmt: skip

_STEP_QUESTIONS = (
    "Which surgical step is in progress at the end of this clip?",
    "What step of the operation is being performed now?",
    "Name the current surgical step.",
)
_NEXT_QUESTIONS = (
    "Which step comes next in this operation?",
    "After the current step, what will the surgeon do next?",
)
_VISIBLE_QUESTIONS = (
    "Which instruments are visible at the end of this clip?",
    "What instruments can be seen now?",
)
_COUNT_QUESTIONS = (
    "How many instruments are visible at the end of this clip?",
    "How many instruments are in view now?",
)
_OUT_QUESTIONS = (
    "Is the endoscope out of the patient at the end of this clip?",
    "Is the camera outside the patient now?",
)
_DURATION_QUESTIONS = (
    "For how many seconds has the current step lasted?",
    "How long has the current step been going on, in seconds?",
)


def step_words(code: int) -> str:
    """``nasal corridor creation``, ``out of patient``."""
    return step_name(code).replace("_", " ")


def instrument_words(code: int) -> str:
    """``bipolar forceps``: the PitVis instrument name in words."""
    return INSTRUMENTS[code].replace("_", " ")


def list_words(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} and {names[-1]}"


def case_questions(
    annotations: Annotations,
    seed: int,
    window_s: int = WINDOW_S,
    stride_s: int = STRIDE_S,
) -> list[QuestionItem]:
    """Every question of every window of one case (module docstring)."""
    if window_s < 2 or stride_s < 1:
        raise OrstreamError(f"windows of {window_s} s every {stride_s} s: need 2 s and 1 s")
    rng = np.random.default_rng([seed, annotations.video])
    case = video_stem(annotations.video)
    seconds = annotations.time.astype(int)
    items: list[QuestionItem] = []
    for first in range(0, len(seconds) - window_s + 1, stride_s):
        window = _Window(annotations, first, first + window_s, case)
        items.extend(window.questions(rng))
    return items


def dataset_questions(
    root: Path,
    videos: Iterable[int],
    seed: int,
    window_s: int = WINDOW_S,
    stride_s: int = STRIDE_S,
) -> list[QuestionItem]:
    """The questions of ``videos`` of the phantom (PitVis layout) at ``root``.

    Raises:
        OrstreamError: an annotations file is missing or malformed.
    """
    items: list[QuestionItem] = []
    for video in videos:
        annotations = read_annotations(annotations_path(root, video))
        items.extend(case_questions(annotations, seed, window_s, stride_s))
    return items


class _Window:
    """Rows ``first`` to ``stop - 1`` of a case's annotations, and the questions they answer."""

    def __init__(self, annotations: Annotations, first: int, stop: int, case: str) -> None:
        self.all_steps = annotations.step
        self.first, self.stop = first, stop
        self.steps = annotations.step[first:stop]
        self.slots = annotations.instruments[first:stop]
        self.case = case
        self.start_s = int(annotations.time[first])
        self.end_s = int(annotations.time[stop - 1]) + 1
        self.last_step = int(self.steps[-1])
        self.last_instruments = sorted({int(c) for c in self.slots[-1] if c > 0})

    def questions(self, rng: np.random.Generator) -> list[QuestionItem]:
        out = [self._out_of_patient(rng)]
        if self.last_step == OUT_OF_PATIENT:
            return out
        makers = (
            self._step_now, self._step_next, self._instruments_visible, self._instrument_count,
            self._which_first, self._step_duration,
        )  # fmt: skip
        for make in makers:
            item = make(rng)
            if item is not None:
                out.append(item)
        return out

    def _item(
        self,
        kind: str,
        question: str,
        reasoning: str,
        answer: str,
        answer_kind: AnswerKind = "text",
    ) -> QuestionItem:
        return QuestionItem(
            id=f"{self.case}/{kind}/{self.end_s:05d}",
            source="surgical",
            case=self.case,
            start_s=self.start_s,
            end_s=self.end_s,
            kind=kind,
            question=question,
            reasoning=reasoning,
            answer=answer,
            answer_kind=answer_kind,
        )

    def _in_view(self) -> str:
        """What the last second shows, in one sentence."""
        names = [f"the {instrument_words(c)}" for c in self.last_instruments]
        if not names:
            return "At the last second no instrument is in view."
        return f"At the last second the view shows {list_words(names)}."

    def _out_of_patient(self, rng: np.random.Generator) -> QuestionItem:
        question = _pick(rng, _OUT_QUESTIONS)
        if self.last_step == OUT_OF_PATIENT:
            reasoning = (
                "At the last second the view shows the operating room, not the nasal cavity, "
                "so the endoscope is out of the patient."
            )
            return self._item("out_of_patient", question, reasoning, "yes")
        reasoning = (
            f"At the last second the view is inside the nasal cavity during "
            f"{step_words(self.last_step)}, so the endoscope is in the patient."
        )
        return self._item("out_of_patient", question, reasoning, "no")

    def _step_now(self, rng: np.random.Generator) -> QuestionItem:
        name = step_words(self.last_step)
        reasoning = f"{self._in_view()} The scene and tools are those of {name}."
        return self._item("step_now", _pick(rng, _STEP_QUESTIONS), reasoning, name)

    def _step_next(self, rng: np.random.Generator) -> QuestionItem | None:
        later = self.all_steps[self.stop :]
        following = [int(c) for c in later if c != self.last_step and c != OUT_OF_PATIENT]
        if not following:
            return None
        current, coming = step_words(self.last_step), step_words(following[0])
        reasoning = (
            f"{self._in_view()} The current step is {current}. In this operation {current} is "
            f"followed by {coming}."
        )
        return self._item("step_next", _pick(rng, _NEXT_QUESTIONS), reasoning, coming)

    def _instruments_visible(self, rng: np.random.Generator) -> QuestionItem:
        names = [instrument_words(c) for c in self.last_instruments]
        answer = list_words(names) if names else "none"
        return self._item(
            "instruments_visible", _pick(rng, _VISIBLE_QUESTIONS), self._in_view(), answer, "set"
        )

    def _instrument_count(self, rng: np.random.Generator) -> QuestionItem:
        count = len(self.last_instruments)
        reasoning = f"{self._in_view()} That is {count} instrument{'s' * (count != 1)}."
        return self._item(
            "instrument_count", _pick(rng, _COUNT_QUESTIONS), reasoning, str(count), "number"
        )

    def _which_first(self, rng: np.random.Generator) -> QuestionItem | None:
        """Two instruments, or else two steps, that show first at different seconds."""
        firsts: dict[str, int] = {}
        for offset, slots in enumerate(self.slots):
            for code in slots:
                if code > 0:
                    firsts.setdefault(f"the {instrument_words(int(code))}", offset)
        if len(set(firsts.values())) < 2:
            firsts = {}
            for offset, code in enumerate(self.steps):
                firsts.setdefault(step_words(int(code)), offset)
            if len(firsts) < 2:
                return None
        names = sorted(firsts)
        while True:
            a, b = (names[i] for i in rng.choice(len(names), 2, replace=False))
            if firsts[a] != firsts[b]:
                break
        earlier = a if firsts[a] < firsts[b] else b
        question = f"Which shows first in this clip: {a} or {b}?"
        reasoning = (
            f"{_capital(a)} first shows at second {firsts[a] + 1} of the clip, {b} at second "
            f"{firsts[b] + 1}, so {earlier} shows first."
        )
        return self._item("which_first", question, reasoning, earlier.removeprefix("the "))

    def _step_duration(self, rng: np.random.Generator) -> QuestionItem | None:
        changes = np.flatnonzero(self.steps != self.last_step)
        began = int(changes[-1]) + 1 if changes.size else 0
        if began == 0:
            # The step began before the window (or at its first second): the clip cannot
            # show how long it has lasted.
            return None
        lasted = len(self.steps) - began
        name = step_words(self.last_step)
        reasoning = (
            f"The clip shows {step_words(int(self.steps[began - 1]))} until second {began}, then "
            f"{name} from second {began + 1} to the end, second {len(self.steps)}: {lasted} "
            f"second{'s' * (lasted != 1)}."
        )
        return self._item(
            "step_duration", _pick(rng, _DURATION_QUESTIONS), reasoning, str(lasted), "number"
        )


def _pick(rng: np.random.Generator, wordings: tuple[str, ...]) -> str:
    return wordings[int(rng.integers(len(wordings)))]


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
