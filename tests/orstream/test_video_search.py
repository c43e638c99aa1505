"""Search and prompt-change requests refuse what can be refused without the model."""

from __future__ import annotations

import math

import pytest

from orstream.video_search import (
    MAX_LIMIT,
    MAX_TEXT_CHARS,
    PromptChange,
    SearchAnswer,
    SearchMoment,
    SearchRequest,
)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"text": " \n"}, "the search text is empty"),
        ({"text": "x" * (MAX_TEXT_CHARS + 1)}, f"has {MAX_TEXT_CHARS + 1} characters"),
        ({"text": "x", "seconds": -1.0}, "seconds must be 0 or more"),
        ({"text": "x", "seconds": math.nan}, "seconds must be 0 or more"),
        ({"text": "x", "limit": 0}, f"limit must be 1..{MAX_LIMIT}"),
        ({"text": "x", "limit": MAX_LIMIT + 1}, f"limit must be 1..{MAX_LIMIT}"),
    ],
)
def test_bad_searches_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchRequest(**kwargs)  # type: ignore[arg-type]


def test_answers_come_best_first_with_valid_moments() -> None:
    good = SearchMoment(1, 10, 0, 0.5)
    with pytest.raises(ValueError, match="best first"):
        SearchAnswer("s", (good, SearchMoment(2, 20, 10, 0.75)), 2, "m@1", 1.0)
    with pytest.raises(ValueError, match=r"-1\.\.1"):
        SearchMoment(1, 10, 0, 1.5)
    with pytest.raises(ValueError, match="cannot start after its last frame"):
        SearchMoment(1, 10, 11, 0.5)


def test_prompt_changes_name_real_steps_with_real_text() -> None:
    assert PromptChange(reset=True).prompts == {}
    with pytest.raises(ValueError, match="no prompt to set"):
        PromptChange()
    with pytest.raises(ValueError, match="no PitVis step has code 15"):
        PromptChange({15: "x"})
    with pytest.raises(ValueError, match="the prompt of step 3 is empty"):
        PromptChange({3: ""})
    assert PromptChange({-1: "the scope is out"}).prompts == {-1: "the scope is out"}
