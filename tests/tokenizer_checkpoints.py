"""Tokenizer checkpoints laid out as `orstream train tokenizer` writes them, with random
weights, at a size that exports in seconds."""

from __future__ import annotations

from pathlib import Path

import torch

from orstream.training.models.tokenizer import VisualTokenizer
from orstream.training.registry import create_model

MODEL_KWARGS = {
    "input_size": [32, 32],
    "channels": [8],
    "encoder_blocks": [1],
    "decoder_blocks": [1],
    "groups": 4,
    "codes": 256,
    "code_dim": 4,
    "head_width": 16,
    "visual_dim": 8,
    "text_dim": 8,
}
"""A 32x32 input, a grid of 16x16 positions of 4 indices into 256 codes each: 8 bits per
pixel, enough for a 32x32 JPEG (its headers alone take ~600 bytes) to fit the same bits."""
CHECKPOINT_NAME = "tokenizer.ckpt"


def save_random_tokenizer_checkpoint(path: Path) -> Path:
    """A tiny random tokenizer checkpoint, as Lightning writes it."""
    torch.manual_seed(0)
    model = create_model("meditok_small", **MODEL_KWARGS)
    torch.save(
        {
            "epoch": 1,
            "global_step": 10,
            "pytorch-lightning_version": "2.6.0",
            "state_dict": {f"model.{key}": value for key, value in model.state_dict().items()},
            "hyper_parameters": {"model_name": "meditok_small", "model_kwargs": MODEL_KWARGS},
            "orstream": {
                "data": {"train_videos": [1], "val_videos": [2], "val_frames_per_clip": 1},
                "metrics": {"val_psnr": 10.0},
            },
        },
        path,
    )
    return path


def tokenizer_model(package: Path) -> VisualTokenizer:
    """The PyTorch model of a package the session fixture exported (its checkpoint beside it)."""
    model = create_model("meditok_small", **MODEL_KWARGS)
    saved = torch.load(package.parent / CHECKPOINT_NAME, weights_only=False)["state_dict"]
    model.load_state_dict({k[len("model.") :]: v for k, v in saved.items()})
    assert isinstance(model, VisualTokenizer)
    return model.eval()
