"""Video-text checkpoints laid out as `orstream train videotext` writes them, with random
weights, at a size that exports in seconds."""

from __future__ import annotations

from pathlib import Path

import torch

from orstream.training.registry import create_model

MODEL_KWARGS = {
    "backbone": "mobilenetv3_small_050",
    "input_size": [64, 96],
    "width": 32,
    "layers": 1,
    "heads": 2,
    "max_frames": 4,
}


def save_random_videotext_checkpoint(path: Path) -> Path:
    """A tiny random video-text checkpoint, as Lightning writes it."""
    torch.manual_seed(0)
    model = create_model("ophclip_small", **MODEL_KWARGS)
    torch.save(
        {
            "epoch": 1,
            "global_step": 10,
            "pytorch-lightning_version": "2.6.0",
            "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
            "hyper_parameters": {"model_name": "ophclip_small", "model_kwargs": MODEL_KWARGS},
            "orstream": {
                "data": {"train_videos": [1, 2], "val_videos": [3]},
                "metrics": {"val_t2v_r5": 0.5},
            },
        },
        path,
    )
    return path
