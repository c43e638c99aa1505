"""A prompt request carries clicks and a box in its region, and an answer a real frame."""

import numpy as np
import pytest

from orstream.segmentation.prompts import Prompt, PromptAnswer, PromptRequest


def test_requests_for_clicks_a_box_or_classes() -> None:
    clicks = Prompt(points=((1.0, 2.0), (3.0, 4.0)), point_labels=(1, 0))
    assert PromptRequest("cam0", 5, clicks).region == clicks
    assert PromptRequest(region=Prompt(box=(0, 0, 4, 4))).index is None
    assert PromptRequest(classes=("sella",)).region is None


@pytest.mark.parametrize(
    ("region", "message"),
    [
        (Prompt(), "needs clicks or a box"),
        (Prompt(text="sella"), "needs clicks or a box"),
        (Prompt(box=(0, 0, 4, 4), text="sella"), "clicks and a box only"),
        (
            Prompt(box=(0, 0, 4, 4), mask_logits=np.zeros((1, 1, 4, 4), np.float32)),
            "clicks and a box only",
        ),
        (Prompt(points=((1.0, 2.0),), point_labels=()), r"one label 0 or 1 each, got \(\)"),
        (Prompt(points=((1.0, 2.0),), point_labels=(2,)), r"got \(2,\) for 1 click"),
    ],
)
def test_a_region_a_request_cannot_carry_is_refused(region: Prompt, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PromptRequest("cam0", None, region)


def test_an_answer_belongs_to_a_frame_and_took_time() -> None:
    answer = PromptAnswer("cam0", 0, 0, (), "m@1", 0.0, True)
    assert answer.masks == ()
    with pytest.raises(ValueError, match="frame index is 0 or more, got -1"):
        PromptAnswer("cam0", -1, 0, (), "m@1", 1.0, True)
    for latency in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="latency_ms must be 0 or more"):
            PromptAnswer("cam0", 3, 0, (), "m@1", latency, False)
