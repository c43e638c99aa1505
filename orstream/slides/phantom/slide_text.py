"""What a phantom slide's mask says in words: labels, a caption and SlideBench-style questions.

Everything here is computed from the region mask alone, so the labels, captions and answers
agree with the mask (and so with the pixels) by construction.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from orstream.slides.phantom.tissue_classes import TISSUE_CLASS_NAMES, TissueClass

QUESTION_COLUMNS = (
    "ID", "Slide", "Tumor", "Broad Category", "Narrow Category", "Question",
    "A", "B", "C", "D", "Answer",
)  # fmt: skip
"""The SlideBench (SlideChat) VQA CSV columns; Answer is the letter of the right option."""

FRACTION_BINS = ("none", "under 20%", "20% to 40%", "over 40%")
SUBTYPE_WORDS = {
    "none": "no tumour",
    "glandular": "gland-forming (glandular) tumour",
    "solid": "solid sheets of tumour cells",
}


@dataclass(frozen=True)
class SlideFacts:
    """A slide's labels, measured on its region mask."""

    slide: str
    subtype: str
    tumour_fraction: float
    """Tumour cells' share of the tissue (every non-background mask pixel)."""
    class_fractions: dict[TissueClass, float]
    """Each tissue class's share of the tissue."""

    @property
    def tumour(self) -> bool:
        return self.tumour_fraction > 0

    @property
    def necrosis(self) -> bool:
        return self.class_fractions[TissueClass.NECROSIS] > 0

    @property
    def main_tissue(self) -> TissueClass:
        return max(self.class_fractions, key=lambda c: self.class_fractions[c])


def slide_facts(slide: str, subtype: str, mask: np.ndarray) -> SlideFacts:
    """The labels of the slide whose region mask is ``mask``."""
    counts = np.bincount(mask.ravel(), minlength=len(TissueClass)).astype(np.float64)
    tissue = max(counts[1:].sum(), 1.0)
    fractions: dict[TissueClass, float] = {
        c: float(counts[c] / tissue) for c in TissueClass if c != TissueClass.BACKGROUND
    }
    return SlideFacts(slide, subtype, fractions[TissueClass.TUMOUR], fractions)


def fraction_bin(fraction: float) -> str:
    """The :data:`FRACTION_BINS` option a tumour fraction falls in."""
    if fraction == 0:
        return FRACTION_BINS[0]
    return FRACTION_BINS[1 + (fraction >= 0.2) + (fraction >= 0.4)]


_CAPTIONS = (
    "H&E section with {subtype}; tumour makes up about {percent}% of the tissue{necrosis}.",
    "The slide shows {subtype} in a background of {main}{necrosis}; "
    "roughly {percent}% of the tissue is tumour.",
    "Whole-slide image: {subtype}. Estimated tumour fraction {percent}%{necrosis}.",
    "Tissue fragments dominated by {main}, with {subtype} (about {percent}% of the tissue)"
    "{necrosis}.",
)


_NORMAL_CAPTIONS = (
    "Benign tissue: {main} without tumour{necrosis}.",
    "H&E section of {main}-rich tissue; no tumour is seen{necrosis}.",
    "No malignancy identified; the tissue is mostly {main}{necrosis}.",
)


def caption(facts: SlideFacts, rng: np.random.Generator) -> str:
    """A caption in one of several wordings."""
    necrosis = ""
    if facts.necrosis:
        necrosis = rng.choice([", with areas of necrosis", " and foci of necrosis"])
    elif facts.tumour:
        necrosis = rng.choice([", without necrosis", "; no necrosis is seen"])
    wordings = _CAPTIONS if facts.tumour else _NORMAL_CAPTIONS
    return str(rng.choice(wordings)).format(
        subtype=SUBTYPE_WORDS[facts.subtype],
        percent=round(100 * facts.tumour_fraction),
        main=TISSUE_CLASS_NAMES[facts.main_tissue],
        necrosis=necrosis,
    )


def questions(facts: SlideFacts, rng: np.random.Generator) -> list[dict[str, str]]:
    """SlideBench-style multiple-choice rows (without ID), options shuffled."""
    tissue_names = [TISSUE_CLASS_NAMES[c] for c in facts.class_fractions]
    asked = [
        ("Diagnosis", "Disease Detection", "Is tumour present in this slide?",
         ["yes", "no", "only necrosis", "cannot be determined"],
         "yes" if facts.tumour else "no"),
        ("Diagnosis", "Classification", "Which growth pattern best describes this slide?",
         [*SUBTYPE_WORDS.values(), "papillary fronds"], SUBTYPE_WORDS[facts.subtype]),
        ("Microscopy", "Tumor Characteristics", "About what share of the tissue is tumour?",
         list(FRACTION_BINS), fraction_bin(facts.tumour_fraction)),
        ("Microscopy", "Tissue Architecture", "Is necrosis present?",
         ["yes", "no", "only at the tissue edge", "cannot be determined"],
         "yes" if facts.necrosis else "no"),
        ("Microscopy", "Tissue Architecture", "Which tissue covers most of the tissue area?",
         tissue_names, TISSUE_CLASS_NAMES[facts.main_tissue]),
    ]  # fmt: skip
    rows = []
    for broad, narrow, question, options, answer in asked:
        order = [options[i] for i in rng.permutation(len(options))]
        letter = "ABCD"[order.index(answer)]
        rows.append(
            {"Slide": facts.slide, "Tumor": facts.subtype, "Broad Category": broad,
             "Narrow Category": narrow, "Question": question,
             **dict(zip("ABCD", order, strict=True)), "Answer": letter}
        )  # fmt: skip
    return rows
