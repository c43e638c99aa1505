"""The card's tokenizer section: what a tokenizer package must say about its detokenizer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.errors import OrstreamError
from orstream.package.card import ModelCard
from orstream.package.loading import load_package


def _card(package: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((package / "card.json").read_text())
    return data


def test_the_exported_card_is_valid_and_names_its_graphs(random_tokenizer_package: Path) -> None:
    card = ModelCard.model_validate(_card(random_tokenizer_package))
    assert card.graphs == ("model", "detokenizer")
    inputs, outputs = card.graph_tensors("detokenizer")
    assert inputs == {"indices": ((1, 4, 16, 16), "int64")}
    assert outputs == {"image": ((1, 3, 32, 32), "float32")}
    with pytest.raises(OrstreamError, match="has no text encoder"):
        card.graph_tensors("text")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("tokenizer"), "a tokenizer card needs a tokenizer section"),
        (lambda c: c.update(task="recognizer"), "a tokenizer section belongs to a tokenizer"),
        (lambda c: c["tokenizer"].update(groups=8), "must be int64 \\[1, 8, 16, 16\\]"),
        (lambda c: c["tokenizer"].update(grid=[16, 8]), "must be int64 \\[1, 4, 16, 8\\]"),
        (lambda c: c["tokenizer"]["inputs"][0].update(dtype="int32"), "must be int64"),
        (lambda c: c["tokenizer"].update(codes=1), "greater than or equal to 2"),
        (lambda c: c["tokenizer"]["inputs"][0].update(name="tokens"), "inputs must be"),
        (lambda c: c["tokenizer"]["outputs"][0].update(shape=[1, 3, 16, 16]), "makes \\[16, 16\\]"),
        (lambda c: c["tokenizer"]["outputs"][0].update(shape=[1, 1, 32, 32]), "float32 \\[1, 3"),
        (lambda c: c["outputs"][0].update(name="codes"), "must give exactly the detokenizer's"),
        (lambda c: c["tokenizer"]["index_parity"][0].update(equal=1.5), "less than or equal to 1"),
    ],
)
def test_a_tokenizer_section_that_does_not_fit_is_refused(
    random_tokenizer_package: Path, change: Any, message: str
) -> None:
    data = _card(random_tokenizer_package)
    change(data)
    with pytest.raises(ValidationError, match=message):
        ModelCard.model_validate(data)


@pytest.mark.parametrize("damage", ["append", "remove"])
def test_a_changed_or_missing_detokenizer_is_refused(
    random_tokenizer_package: Path, tmp_path: Path, damage: str
) -> None:
    package = shutil.copytree(random_tokenizer_package, tmp_path / "package")
    detokenizer = package / "detokenizer.onnx"
    if damage == "append":
        with detokenizer.open("ab") as stream:
            stream.write(b"\0")
        message = "detokenizer.onnx does not match card.json"
    else:
        detokenizer.unlink()
        message = "has no detokenizer.onnx"
    with pytest.raises(OrstreamError, match=message):
        load_package(package)


def test_only_a_tokenizer_package_has_a_detokenizer(random_tokenizer_package: Path) -> None:
    workflow = load_package(SHIPPED_PACKAGE)
    with pytest.raises(OrstreamError, match="has no detokenizer"):
        workflow.graph_path("detokenizer")
    with pytest.raises(OrstreamError, match="package, not tokenizer"):
        workflow.tokenizer_section()
    package = load_package(random_tokenizer_package)
    assert package.graph_path("detokenizer") == random_tokenizer_package / "detokenizer.onnx"
