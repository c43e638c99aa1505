"""Instrument classifier checkpoints laid out as `orstream train classifier` writes them, with
random weights, and a package exported from one (built once per test session)."""

from __future__ import annotations

from pathlib import Path

import torch

from orstream.training.registry import create_model

_packages: dict[Path, Path] = {}


def save_random_classifier_checkpoint(path: Path, width: int = 4) -> Path:
    """A tiny random classifier checkpoint, as Lightning writes it."""
    torch.manual_seed(0)
    model = create_model("instrument_classifier", width=width)
    torch.save(
        {
            "epoch": 1,
            "global_step": 10,
            "pytorch-lightning_version": "2.6.0",
            "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
            "hyper_parameters": {
                "model_name": "instrument_classifier",
                "model_kwargs": {"width": width},
            },
            "orstream": {"data": {"train_seeds": [5, 6], "val_seeds": [8]}, "metrics": {}},
        },
        path,
    )
    return path


def random_classifier_package(base: Path) -> Path:
    """A package exported from a random tiny classifier under ``base``, made once per session."""
    from orstream.export.onnx.models.classifier_export import export_classifier_package

    if base not in _packages:
        root = base / "random_classifier"
        root.mkdir()
        checkpoint = save_random_classifier_checkpoint(root / "classifier.ckpt")
        result = export_classifier_package(
            checkpoint, root / "package", parity_frames=2, progress=lambda _: None
        )
        _packages[base] = result.package.root
    return _packages[base]
