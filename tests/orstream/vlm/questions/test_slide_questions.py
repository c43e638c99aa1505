"""Questions about phantom slides from their masks, labels and SlideBench rows."""

from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.vlm.questions.answer_scoring import AnswerScore, score_answer
from orstream.vlm.questions.question_items import format_answer
from orstream.vlm.questions.slide_questions import SLIDE_KINDS, quarter_tumour, slide_questions


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slides")
    write_slide_dataset(root, 3, seed=11, size=1024)
    return root


def test_questions_agree_with_the_labels(slides: Path) -> None:
    import csv

    labels = {r["slide"]: r for r in csv.DictReader((slides / "labels.csv").open())}
    items = slide_questions(slides)
    assert {item.kind for item in items} == set(SLIDE_KINDS)
    for item in items:
        label = labels[item.case]
        assert item.source == "slide" and item.start_s is None
        if item.kind == "tumour_present":
            assert item.answer == ("yes" if label["tumor"] == "1" else "no")
        if item.kind == "subtype":
            assert item.answer == label["subtype"]
        if item.kind == "region":
            assert label["tumor"] == "1"
        assert score_answer(item, item.target) == AnswerScore(True, True)
    choices = [item for item in items if item.kind == "multiple_choice"]
    assert len(choices) == 3 * 5
    first = choices[0]
    assert first.prompt.splitlines()[1].startswith("A. ")
    right = first.options["ABCD".index(first.answer)]
    assert score_answer(first, format_answer("x", right)).correct
    assert score_answer(first, format_answer("x", f"{first.answer}. {right}")).correct


def test_only_the_slides_asked_for(slides: Path) -> None:
    items = slide_questions(slides, ["slide_002"])
    assert {item.case for item in items} == {"slide_002"}
    with pytest.raises(OrstreamError, match="slide_009"):
        slide_questions(slides, ["slide_009"])


def test_the_quarter_with_the_most_tumour() -> None:
    mask = np.full((8, 8), TissueClass.STROMA, np.uint8)
    mask[5:, 1:3] = TissueClass.TUMOUR
    shares = quarter_tumour(mask)
    assert int(np.argmax(shares)) == 2  # lower left
    assert shares[0] == shares[1] == shares[3] == 0
