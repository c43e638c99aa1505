"""Workflow checkpoints laid out as `orstream train workflow` writes them, with random weights."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from orstream.training.registry import create_model

# Tiny so an export takes seconds: 32x32 input, 2 stages x 3 layers of 16 channels.
MODEL_KWARGS: dict[str, Any] = {"input_size": [32, 32], "channels": 16, "num_layers": 3}


def save_random_checkpoint(path: Path, model_name: str = "pitvis_workflow") -> Path:
    """A checkpoint laid out as Lightning writes it for `orstream train workflow`."""
    torch.manual_seed(0)
    model = create_model("pitvis_workflow", **MODEL_KWARGS)
    checkpoint = {
        "epoch": 3,
        "global_step": 40,
        "pytorch-lightning_version": "2.6.0",
        "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
        "hyper_parameters": {
            "model_name": model_name,
            "model_kwargs": dict(MODEL_KWARGS),
            "lr": 1e-3,
            "min_dwell": 2,
        },
        "orstream": {
            "data": {
                "root": "/data/phantom",
                "val_root": None,
                "train_videos": [1, 2],
                "val_videos": [3],
                "sample_fps": 1.0,
            },
            "metrics": {
                "val_step_score": torch.tensor(0.25),
                "val_step_f1": 0.2,
                "val_step_edit": 0.3,
                "val_instrument_f1": 0.1,
            },
        },
    }
    torch.save(checkpoint, path)
    return path
