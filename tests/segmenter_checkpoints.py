"""Interactive segmenter checkpoints laid out as `orstream train segmenter` writes them, with
random weights, and a package exported from one (built once per test session)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from orstream.training.registry import create_model

# Tiny so an export takes seconds: a 2-block ViT on a 64x112 input (16:9 frames stay close to
# their aspect), a 4x7 embedding grid and 16x28 mask logits.
MODEL_KWARGS: dict[str, Any] = {
    "input_size": [64, 112],
    "embed_dim": 32,
    "num_heads": 2,
    "mlp_dim": 64,
    "backbone_args": {"depth": 2, "embed_dim": 48, "num_heads": 2},
}
CLASSES = ["bipolar_forceps", "suction", "surgical_drill", "sella"]

_packages: dict[Path, Path] = {}


def save_random_segmenter_checkpoint(
    path: Path,
    classes: list[str] | None = None,
    model_name: str = "imis_segmenter",
    **model_kwargs: Any,
) -> Path:
    """A checkpoint laid out as Lightning writes it for `orstream train segmenter`
    (``model_kwargs`` change the tiny model's settings)."""
    torch.manual_seed(0)
    kwargs = {**MODEL_KWARGS, **model_kwargs}
    model = create_model("imis_segmenter", **kwargs)
    checkpoint = {
        "epoch": 2,
        "global_step": 30,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
        "hyper_parameters": {
            "model_name": model_name,
            "model_kwargs": kwargs,
            "classes": list(CLASSES if classes is None else classes),
            "lr": 1e-4,
        },
    }
    torch.save(checkpoint, path)
    return path


def random_segmenter_package(base: Path) -> Path:
    """A package exported from a random tiny segmenter under ``base``, made once per session."""
    from orstream.export.onnx.models.segmenter_export import export_segmenter_package

    if base not in _packages:
        root = base / "random_segmenter"
        root.mkdir()
        checkpoint = save_random_segmenter_checkpoint(root / "segmenter.ckpt")
        result = export_segmenter_package(
            checkpoint, root / "package", parity_frames=2, progress=lambda _: None
        )
        _packages[base] = result.package.root
    return _packages[base]
