"""Workflow checkpoints laid out as `orstream train workflow` writes them, with random weights,
and a package as orstream exported them before graphs took a dynamic batch."""

from __future__ import annotations

import warnings
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


def save_batch_1_package(checkpoint: Path, out: Path) -> Path:
    """A package of ``checkpoint`` whose graph was traced at batch 1 with static shapes and whose
    card says batch 1, with its golden reference: what `orstream export batch` converts."""
    from orstream.export.onnx.golden_reference import write_reference
    from orstream.export.onnx.models.workflow_export import (
        OPSET,
        StreamingStepGraph,
        build_card,
        graph_names,
        load_checkpoint,
    )
    from orstream.package.card import MODEL_FILE
    from orstream.package.loading import ModelPackage, sha256_file, write_card

    loaded = load_checkpoint(checkpoint, progress=lambda _: None)
    model = loaded.streaming()
    out.mkdir()
    height, width = model.input_size
    inputs, outputs = graph_names(model)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            StreamingStepGraph(model).eval(),
            (torch.zeros(1, 3, height, width), *model.initial_state(1)),
            str(out / MODEL_FILE),
            input_names=inputs,
            output_names=outputs,
            opset_version=OPSET,
            dynamo=False,
        )
    card = build_card(loaded, sha256_file(out / MODEL_FILE), "torchscript", OPSET)
    card = card.model_copy(
        update={"export": card.export.model_copy(update={"batch": 1, "max_batch": 1})}
    )
    write_card(out, card)
    return write_reference(ModelPackage(root=out, card=card)).root
