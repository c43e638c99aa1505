"""``orstream export onnx``: a trained checkpoint to a model package, with a parity report.

One command for every model: a workflow recognizer becomes ``model.onnx`` + ``card.json``; an
interactive segmenter (its checkpoint names a model of ``SEGMENTER_MODELS``) becomes an image
encoder, a prompt decoder and its class text prompts; the instrument classifier (model
``instrument_classifier``) becomes a crop classifier the live masks name instruments with; a
video-text model (``ophclip_small``) becomes a streaming clip encoder, a text encoder with its
vocabulary and the embeddings of its step prompts; a visual tokenizer (``meditok_small``)
becomes an encoder of images to tokens and a detokenizer of tokens to images; a slide encoder
(``slide_mil_encoder``) becomes a slide package with the patch encoder its checkpoint records;
a vision-language model (``gmai_vl_small``) becomes a ``vlm`` package: prefill and decode graphs
with the KV cache as inputs and outputs, its projectors, weights and tokenizer.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_PARITY_FRAMES = 16
EXPORTERS = (
    ("segmenter_export", "SEGMENTER_MODELS", "export_segmenter_package"),
    ("classifier_export", "CLASSIFIER_MODELS", "export_classifier_package"),
    ("videotext_export", "VIDEOTEXT_MODELS", "export_videotext_package"),
    ("tokenizer_export", "TOKENIZER_MODELS", "export_tokenizer_package"),
    ("slide_export", "SLIDE_MODELS", "export_slide_package"),
    ("vlm_export", "VLM_MODELS", "export_vlm_package"),
)
"""Each exporter of :mod:`orstream.export.onnx.models`: (module, the set of model names its
checkpoints carry, its export function). Every exporter takes ``(checkpoint, out, **options)``
and returns a result whose ``summary()`` is what the command prints."""
STREAMING_EXPORTER = ("workflow_export", "export_package")
"""The exporter of every other model: a streaming recognizer (it refuses what is not one)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH

    parser.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="Lightning checkpoint written by `orstream train workflow`, "
        "`orstream train segmenter`, `orstream train classifier`, `orstream train videotext` or "
        "`orstream train tokenizer`, `orstream train slide` or `orstream train vlm`",
    )
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="package folder to write (card.json + model.onnx; a segmenter adds decoder.onnx "
        "and text_prompts.npy, a video-text model text_encoder.onnx, vocab.txt and "
        "step_prompts.npy, a tokenizer detokenizer.onnx, a slide package slide_encoder.onnx, a "
        "vlm package decode.onnx, projector_*.onnx, weights.npz and tokenizer.json)",
    )
    parser.add_argument(
        "--parity-frames",
        type=int,
        default=DEFAULT_PARITY_FRAMES,
        metavar="N",
        help="frames per parity source, run one at a time with the state carried; a "
        "segmenter's decoder runs every kind of prompt on each frame "
        f"(default {DEFAULT_PARITY_FRAMES})",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing package at --out"
    )
    parser.add_argument(
        "--max-batch",
        type=int,
        default=DEFAULT_MAX_BATCH,
        metavar="N",
        help="the graphs take a dynamic batch; parity runs again in calls of N rows, and "
        f"backends take up to N by default (default {DEFAULT_MAX_BATCH})",
    )
    parser.add_argument(
        "--exporter",
        choices=("auto", "torchscript", "dynamo"),
        default="auto",
        help="torch.onnx exporter: auto tries torchscript, then dynamo",
    )


def run(args: argparse.Namespace) -> int:
    from orstream.export.onnx.models.segmenter_export import checkpoint_model_name

    options = {
        "parity_frames": args.parity_frames,
        "overwrite": args.overwrite,
        "exporter": args.exporter,
        "max_batch": args.max_batch,
    }
    export = exporter_for(checkpoint_model_name(args.checkpoint))
    print("\n".join(export(args.checkpoint, args.out, **options).summary()))
    return 0


def exporter_for(model_name: str | None) -> Callable[..., Any]:
    """The export function for checkpoints of ``model_name`` (modules imported here: each
    imports torch)."""
    for module_name, models, function in EXPORTERS:
        module = importlib.import_module(f"orstream.export.onnx.models.{module_name}")
        if model_name in getattr(module, models):
            export: Callable[..., Any] = getattr(module, function)
            return export
    module_name, function = STREAMING_EXPORTER
    streaming: Callable[..., Any] = getattr(
        importlib.import_module(f"orstream.export.onnx.models.{module_name}"), function
    )
    return streaming
