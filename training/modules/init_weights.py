"""Warm starts: a training run's model initialised from an earlier run's checkpoint.

The segmenter, the visual tokenizer and the vision-language model each start a later phase or
stage from an earlier one's weights (``model.init_weights=CKPT``); one reader keeps their
checks and their one-line errors the same.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from orstream.errors import OrstreamError

PREFIX = "model."
"""Where a Lightning module of orstream keeps its model's weights in a checkpoint."""


def load_init_weights(
    model: nn.Module, path: Path, left_new: Callable[[str], bool] | None = None
) -> None:
    """Copy the ``model.*`` weights of the checkpoint at ``path`` into ``model``; weights that
    ``left_new`` names and the checkpoint lacks keep their initial values (parts the earlier
    phase did not have).

    Raises:
        OrstreamError: the file is missing, not a checkpoint, or its weights do not fit.
    """
    if not path.is_file():
        raise OrstreamError(f"init_weights: checkpoint {path} not found")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        weights = {
            key[len(PREFIX) :]: value
            for key, value in checkpoint["state_dict"].items()
            if key.startswith(PREFIX)
        }
        if left_new is not None:
            for key, value in model.state_dict().items():
                if left_new(key) and key not in weights:
                    weights[key] = value
        model.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise OrstreamError(f"init_weights: {path} does not fit this model ({first})") from None
