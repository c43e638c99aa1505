"""The card's text section: what a video-text package must say about its text side."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orstream.errors import OrstreamError
from orstream.package.card import ModelCard


def _card(package: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((package / "card.json").read_text())
    return data


def test_the_exported_card_is_valid_and_names_its_graphs(random_videotext_package: Path) -> None:
    card = ModelCard.model_validate(_card(random_videotext_package))
    assert card.graphs == ("model", "text")
    inputs, outputs = card.graph_tensors("text")
    assert inputs == {"input_ids": ((1, 64), "int64"), "attention_mask": ((1, 64), "int64")}
    assert outputs == {"text_embedding": ((1, 32), "float32")}
    with pytest.raises(OrstreamError, match="has no prompt decoder"):
        card.graph_tensors("decoder")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("text"), "a video_text card needs a text section"),
        (lambda c: c.update(task="workflow_recognition"), "a text section belongs to a video_text"),
        (lambda c: c["text"]["prompts"].pop(), "14 prompts for 15 labels"),
        (lambda c: c["text"]["outputs"][0].update(shape=[1, 16]), "16 wide; no output"),
        (lambda c: c["text"]["inputs"][1].update(shape=[1, 32]), "must both be \\[1, L\\]"),
        (lambda c: c["text"]["inputs"][0].update(dtype="float32"), "must be int64"),
        (lambda c: c["text"].update(logit_scale=0), "greater than 0"),
    ],
)
def test_a_text_section_that_does_not_fit_is_refused(
    random_videotext_package: Path, change: Any, message: str
) -> None:
    data = _card(random_videotext_package)
    change(data)
    with pytest.raises(ValidationError, match=message):
        ModelCard.model_validate(data)
