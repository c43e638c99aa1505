"""Slide checkpoints laid out as `orstream train patch` and `orstream train slide` write them,
with random weights, and a slide package exported from them (built once per test session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from orstream.training.registry import create_model

PATCH_KWARGS = {"backbone": "mobilenetv3_small_050", "feature_dim": 16, "tile": 32}
SLIDE_KWARGS = {"feature_dim": 16, "hidden": 8, "dropout": 0.1}
TILING = {"mpp": 4.0, "tile": 32, "min_tissue": 0.5}
"""Tiles of 32 px at 4 µm/px: 256 level-0 px of a 0.5 µm/px phantom, few and cheap to encode."""

_packages: dict[Path, Path] = {}


def _save(path: Path, name: str, kwargs: dict[str, Any], data: dict[str, Any]) -> Path:
    model = create_model(name, **kwargs)
    torch.save(
        {
            "epoch": 1,
            "global_step": 10,
            "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
            "hyper_parameters": {"model_name": name, "model_kwargs": kwargs},
            "orstream": {"data": data, "metrics": {"val_slide_accuracy": 0.5}},
        },
        path,
    )
    return path


def save_random_slide_checkpoints(folder: Path) -> Path:
    """A random patch encoder checkpoint and a slide encoder checkpoint recording it; returns
    the slide encoder's."""
    torch.manual_seed(0)
    patch = _save(folder / "patch.ckpt", "slide_patch_encoder", PATCH_KWARGS, dict(TILING))
    data = {**TILING, "patch_checkpoint": str(patch)}
    return _save(folder / "slide.ckpt", "slide_mil_encoder", SLIDE_KWARGS, data)


def random_slide_package(base: Path) -> Path:
    """A slide package exported from random tiny encoders under ``base``, made once per
    session."""
    from orstream.export.onnx.models.slide_export import export_slide_package

    if base not in _packages:
        root = base / "random_slide"
        root.mkdir()
        checkpoint = save_random_slide_checkpoints(root)
        result = export_slide_package(
            checkpoint, root / "package", parity_frames=4, max_batch=2, progress=lambda _: None
        )
        _packages[base] = result.package.root
    return _packages[base]
