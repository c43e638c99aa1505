"""The question check every backend and the edge's Ask share, and what a request must hold."""

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.vlm.answering.answer_backend import AnswerRequest, check_question


def test_a_question_is_text_of_1_to_500_printable_characters_and_line_breaks() -> None:
    assert check_question("  Is tumour present? ") == "Is tumour present?"
    choice = "Which pattern?\nA. glandular\nB. solid\tC. none"
    assert check_question(choice) == choice
    for bad, words in (
        ("", "empty"),
        (" \n ", "empty"),
        ("x" * 501, "at most 500"),
        ("a\x1bb", "control characters"),
        ("a\x00", "control characters"),
        (7, "must be text"),
    ):
        with pytest.raises(OrstreamError, match=words):
            check_question(bad)


def test_a_request_is_about_a_clip_or_a_slide_exactly() -> None:
    clip = np.zeros((2, 8, 8, 3), np.uint8)
    assert AnswerRequest("why?", frames=clip).source == "surgical"
    for kwargs, words in (
        ({}, "exactly one"),
        ({"frames": np.zeros((2, 8, 8), np.uint8)}, "RGB uint8"),
        ({"frames": np.zeros((0, 8, 8, 3), np.uint8)}, "no frames"),
        ({"frames": clip, "max_new_tokens": 0}, "at least 1"),
        ({"frames": clip, "deadline_s": 0.0}, "positive"),
    ):
        with pytest.raises(OrstreamError, match=words):
            AnswerRequest("why?", **kwargs)
