"""Exporting the instrument classifier: a package the edge loads, proved against PyTorch."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from classifier_checkpoints import save_random_classifier_checkpoint

from orstream.cli import main
from orstream.edge.models.instrument_classifier import InstrumentClassifier
from orstream.edge.models.shipped import SHIPPED_SEGMENTER
from orstream.errors import OrstreamError
from orstream.export.onnx.models.classifier_export import export_classifier_package, phantom_crops
from orstream.labels import INSTRUMENT_CODES
from orstream.package.loading import load_package
from orstream.training.registry import create_model


def test_export_writes_a_package_the_edge_names_crops_with(tmp_path: Path) -> None:
    checkpoint = save_random_classifier_checkpoint(tmp_path / "c.ckpt")
    result = export_classifier_package(
        checkpoint, tmp_path / "pkg", parity_frames=4, max_batch=4, progress=lambda _: None
    )
    card = load_package(tmp_path / "pkg").card
    assert card.task == "instrument_classification" and card.max_batch == 4
    assert [label.code for label in card.labels["instruments"]] == list(INSTRUMENT_CODES)
    assert [p.batch for p in result.parity] == [1, 4]
    assert all(p.max_abs_diff["instrument_logits"] <= 1e-4 for p in result.parity)
    assert card.training.data["train_seeds"] == [5, 6]
    assert card.hashes.reference is not None  # a golden reference every backend must match

    classifier = InstrumentClassifier.load(result.package)
    crops = phantom_crops(5)
    probabilities = classifier.probabilities(list(crops))  # 5 crops: calls of 4 and 1 rows
    assert probabilities.shape == (5, len(INSTRUMENT_CODES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # What PyTorch gives for the same crops, normalised as the card says.
    model = create_model("instrument_classifier", width=4)
    saved = torch.load(checkpoint, weights_only=False)["state_dict"]
    model.load_state_dict({k[len("model.") :]: v for k, v in saved.items()})
    tensor = torch.from_numpy(crops).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        expected = model.eval()((tensor - 0.5) / 0.5).softmax(1).numpy()
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)


def test_the_export_command_knows_a_classifier_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checkpoint = save_random_classifier_checkpoint(tmp_path / "c.ckpt")
    out = tmp_path / "pkg"
    args = ["export", "onnx", "--checkpoint", str(checkpoint), "--out", str(out)]
    assert main([*args, "--parity-frames", "2"]) == 0
    printed = capsys.readouterr().out
    assert "19 classes" in printed and "batch 8" in printed
    assert main(args) == 2  # the package exists: refused without --overwrite
    assert "already exists" in capsys.readouterr().err


def test_a_segmenter_package_is_not_a_classifier() -> None:
    with pytest.raises(OrstreamError, match="not an instrument classifier"):
        InstrumentClassifier.load(load_package(SHIPPED_SEGMENTER))
