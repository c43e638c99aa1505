"""Questions about phantom slides, from their region masks, labels and SlideBench questions.

For each slide of a slide phantom (``orstream slide phantom``):

- ``tumour_present``: is there tumour (yes / no);
- ``subtype``: the growth pattern (``glandular``, ``solid``, or ``none``);
- ``region``: which quarter of the slide holds the most tumour (upper left, upper right, lower
  left, lower right), asked of slides with tumour;
- ``tumour_fraction``: the tumour share of the tissue, in the phantom's buckets;
- ``multiple_choice``: each of the slide's SlideBench-style rows in ``questions.csv``, options
  A-D, answered by letter.

The facts come from the region mask (as the phantom's own labels and captions do), so every
answer agrees with the pixels.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError
from orstream.slides.phantom.slide_text import FRACTION_BINS, SlideFacts, fraction_bin, slide_facts
from orstream.slides.phantom.tissue_classes import TISSUE_CLASS_NAMES, TissueClass
from orstream.vlm.questions.question_items import QuestionItem

SLIDE_KINDS = ("tumour_present", "subtype", "region", "tumour_fraction", "multiple_choice")
QUARTERS = ("upper left", "upper right", "lower left", "lower right")

_PATTERN_REASONS = {
    "none": "No tumour cells are seen anywhere in the tissue, so there is no growth pattern.",
    "glandular": "The tumour cells ring open lumens and form glands.",
    "solid": "The tumour cells grow in solid sheets without lumens.",
}


def slide_questions(root: Path, slides: list[str] | None = None) -> list[QuestionItem]:
    """The questions of ``slides`` (default: every slide in ``labels.csv``) of the slide phantom
    at ``root``.

    Raises:
        OrstreamError: ``labels.csv``, ``questions.csv`` or a mask is missing, or a slide is not
            in ``labels.csv``.
    """
    import cv2

    labels = {row["slide"]: row for row in _rows(root / "labels.csv")}
    choices: dict[str, list[dict[str, str]]] = {}
    for row in _rows(root / "questions.csv"):
        choices.setdefault(row["Slide"], []).append(row)
    items: list[QuestionItem] = []
    for slide in slides if slides is not None else sorted(labels):
        if slide not in labels:
            raise OrstreamError(f"{root / 'labels.csv'}: no slide {slide!r}")
        path = root / "masks" / f"{slide}.png"
        mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if mask is None:
            raise OrstreamError(f"{path}: region mask missing or unreadable")
        facts = slide_facts(slide, labels[slide]["subtype"], mask)
        items.extend(_slide_items(facts, mask, choices.get(slide, [])))
    return items


def quarter_tumour(mask: np.ndarray) -> list[float]:
    """Tumour share of the tissue in each quarter of the slide, in :data:`QUARTERS` order."""
    height, width = mask.shape
    shares = []
    for top in (0, height // 2):
        for left in (0, width // 2):
            block = mask[top : top + height // 2, left : left + width // 2]
            tissue = max(int((block != TissueClass.BACKGROUND).sum()), 1)
            shares.append(int((block == TissueClass.TUMOUR).sum()) / tissue)
    return shares


def _slide_items(
    facts: SlideFacts, mask: np.ndarray, rows: list[dict[str, str]]
) -> list[QuestionItem]:
    slide = facts.slide
    percent = round(100 * facts.tumour_fraction)
    summary = _summary(facts)

    def item(
        kind: str,
        question: str,
        reasoning: str,
        answer: str,
        number: int | None = None,
        options: tuple[str, ...] = (),
    ) -> QuestionItem:
        return QuestionItem(
            id=f"{slide}/{kind}" if number is None else f"{slide}/{kind}/{number}",
            source="slide",
            case=slide,
            start_s=None,
            end_s=None,
            kind=kind,
            question=question,
            reasoning=reasoning,
            answer=answer,
            answer_kind="choice" if options else "text",
            options=options,
        )

    tumour = "yes" if facts.tumour else "no"
    items = [
        item("tumour_present", "Is tumour present in this slide?", summary, tumour),
        item(
            "subtype",
            "Which growth pattern does the tumour show: glandular, solid, or none?",
            _PATTERN_REASONS[facts.subtype],
            facts.subtype,
        ),
        item(
            "tumour_fraction",
            f"About what share of the tissue is tumour: {', '.join(FRACTION_BINS)}?",
            f"Tumour makes up about {percent}% of the tissue, which falls in "
            f"{fraction_bin(facts.tumour_fraction)}.",
            fraction_bin(facts.tumour_fraction),
        ),
    ]
    if facts.tumour:
        shares = quarter_tumour(mask)
        most = QUARTERS[int(np.argmax(shares))]
        spread = ", ".join(
            f"{round(100 * s)}% of the {q}" for q, s in zip(QUARTERS, shares, strict=True)
        )
        items.append(
            item(
                "region",
                "Which quarter of the slide holds the most tumour?",
                f"Tumour covers {spread} tissue, so the {most} holds the most.",
                most,
            )
        )
    for number, row in enumerate(rows):
        options = tuple(row[letter] for letter in "ABCD")
        letter = row["Answer"]
        reasoning = f"{summary} Of the options, {letter} ({row[letter]}) agrees."
        items.append(item("multiple_choice", row["Question"], reasoning, letter, number, options))
    return items


def _summary(facts: SlideFacts) -> str:
    """The slide's facts in two sentences, the evidence every slide answer reasons from."""
    main = TISSUE_CLASS_NAMES[facts.main_tissue]
    necrosis = "necrosis is present" if facts.necrosis else "there is no necrosis"
    if not facts.tumour:
        return f"The tissue is mostly {main} and holds no tumour cells; {necrosis}."
    percent = round(100 * facts.tumour_fraction)
    return (
        f"The tissue is mostly {main}; {facts.subtype} tumour makes up about {percent}% of it, "
        f"and {necrosis}."
    )


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise OrstreamError(f"{path}: missing (expected a slide phantom, orstream slide phantom)")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
