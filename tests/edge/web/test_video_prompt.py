"""What the page may ask the segmenter: a click (``x``, ``y``) or a drag (``box``) in frame
pixels, never both, nothing else; an edge without a segmenter says so (409)."""

from __future__ import annotations

import pytest

from orstream.edge.web.video_prompt import PromptRefused, VideoPrompter, region_from_body
from orstream.segmentation.prompts import Prompt


def test_a_click_is_a_positive_click_prompt() -> None:
    assert region_from_body({"stream": "or1", "x": 12, "y": 7.5}) == Prompt(
        points=((12.0, 7.5),), point_labels=(1,)
    )


def test_a_drag_is_a_box_prompt() -> None:
    assert region_from_body({"stream": "or1", "box": [10, 20, 30.5, 40]}) == Prompt(
        box=(10.0, 20.0, 30.5, 40.0)
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"x": 1},
        {"x": True, "y": 2},
        {"x": "1", "y": 2},
        {"x": 1, "y": 2, "box": [0, 0, 4, 4]},
        {"box": [0, 0, 4]},
        {"box": [4, 0, 0, 4]},
        {"box": [0, 4, 4, 4]},
        {"box": [0, 0, "4", 4]},
        {"box": {"x0": 0}},
    ],
)
def test_anything_else_is_refused_with_the_forms_it_takes(body: dict) -> None:
    with pytest.raises(PromptRefused) as refused:
        region_from_body(body)
    assert refused.value.status == 400 and '"box": [X0, Y0, X1, Y1]' in str(refused.value)


def test_an_edge_without_a_segmenter_refuses_with_409() -> None:
    with pytest.raises(PromptRefused) as refused:
        VideoPrompter(None, 1).segment("or1", Prompt(box=(0, 0, 4, 4)))
    assert refused.value.status == 409
