"""Tiny vision-language checkpoints and packages for tests: random weights, a tokenizer learnt
on a few sentences, the checkpoint record ``orstream train vlm`` writes (tokenizer, data)."""

from __future__ import annotations

from pathlib import Path

import torch

from orstream.export.onnx.models.vlm_export import export_vlm_package
from orstream.training.models.vlm import gmai_vl_small
from orstream.vlm.text_tokenizer import TextTokenizer
from tests.project_paths import PROJECT_ROOT

FRAME_PACKAGE = PROJECT_ROOT / "edge" / "packages" / "imis_segmenter"
INSTRUMENT_PACKAGE = PROJECT_ROOT / "edge" / "packages" / "instrument_classifier"
CORPUS = [
    "Question: Which surgical step is in progress at the end of this clip?\nAnswer: ",
    "Question: Is tumour present in this slide?\nAnswer: ",
    "<think>At the last second the view shows the suction.</think><answer>sellar opening</answer>",
    "<think>The tissue is mostly stroma.</think><answer>no</answer>",
    "How many instruments are visible? none, one, two, glandular, solid, upper left.",
]
TINY = {"width": 32, "layers": 2, "heads": 4, "kv_heads": 2, "mlp_hidden": 48}


def tiny_vlm_checkpoint(folder: Path, seed: int = 0, window_s: int = 3) -> Path:
    """A ``gmai_vl_small`` checkpoint of a 2-layer, 32-wide model with random weights."""
    tokenizer = TextTokenizer.train(CORPUS * 4, vocab_size=300)
    torch.manual_seed(seed)
    kwargs = {"vocab_size": 320, "feature_widths": {"surgical": 128, "slide": 512}, **TINY}
    model = gmai_vl_small(**kwargs)  # type: ignore[arg-type]
    checkpoint = {
        "hyper_parameters": {"model_name": "gmai_vl_small", "model_kwargs": kwargs},
        "state_dict": {f"model.{k}": v for k, v in model.state_dict().items()},
        "orstream": {
            "data": {
                "frame_package": str(FRAME_PACKAGE),
                "frame_grid": [1, 2],
                "instrument_package": str(INSTRUMENT_PACKAGE),
                "slide_regions": [2, 2],
                "window_s": window_s,
                "val_videos": [15, 16],
                "val_slides": ["slide_055"],
                "question_seed": 0,
                "stride_s": 4,
            },
            "metrics": {"val_accuracy": 0.25},
            "tokenizer": tokenizer.to_json(),
        },
    }
    path = folder / "vlm.ckpt"
    torch.save(checkpoint, path)
    return path


def tiny_vlm_package(folder: Path, seed: int = 0) -> Path:
    """The tiny checkpoint exported to ``folder / "vlm"``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "vlm"
    export_vlm_package(tiny_vlm_checkpoint(folder, seed), out, max_batch=3, progress=lambda _: None)
    return out
