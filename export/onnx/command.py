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
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from orstream.export.onnx.models.classifier_export import ClassifierExportResult
    from orstream.export.onnx.models.segmenter_export import SegmenterExportResult
    from orstream.export.onnx.models.slide_export import SlideExportResult
    from orstream.export.onnx.models.tokenizer_export import TokenizerExportResult
    from orstream.export.onnx.models.videotext_export import VideoTextExportResult
    from orstream.export.onnx.models.vlm_export import VLMExportResult
    from orstream.export.onnx.models.workflow_export import ExportResult

DEFAULT_PARITY_FRAMES = 16
CLASSIFIER_MODEL = "instrument_classifier"


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
    from orstream.export.onnx.models.segmenter_export import SEGMENTER_MODELS, checkpoint_model_name
    from orstream.export.onnx.models.slide_export import SLIDE_MODELS
    from orstream.export.onnx.models.tokenizer_export import TOKENIZER_MODELS
    from orstream.export.onnx.models.videotext_export import VIDEOTEXT_MODELS
    from orstream.export.onnx.models.vlm_export import VLM_MODELS

    options = {
        "parity_frames": args.parity_frames,
        "overwrite": args.overwrite,
        "exporter": args.exporter,
        "max_batch": args.max_batch,
    }
    name = checkpoint_model_name(args.checkpoint)
    if name in SEGMENTER_MODELS:
        from orstream.export.onnx.models.segmenter_export import export_segmenter_package

        _print_segmenter(export_segmenter_package(args.checkpoint, args.out, **options))
    elif name == CLASSIFIER_MODEL:
        from orstream.export.onnx.models.classifier_export import export_classifier_package

        _print_classifier(export_classifier_package(args.checkpoint, args.out, **options))
    elif name in VIDEOTEXT_MODELS:
        from orstream.export.onnx.models.videotext_export import export_videotext_package

        _print_videotext(export_videotext_package(args.checkpoint, args.out, **options))
    elif name in TOKENIZER_MODELS:
        from orstream.export.onnx.models.tokenizer_export import export_tokenizer_package

        _print_tokenizer(export_tokenizer_package(args.checkpoint, args.out, **options))
    elif name in SLIDE_MODELS:
        from orstream.export.onnx.models.slide_export import export_slide_package

        _print_slide(export_slide_package(args.checkpoint, args.out, **options))
    elif name in VLM_MODELS:
        from orstream.export.onnx.models.vlm_export import export_vlm_package

        _print_vlm(export_vlm_package(args.checkpoint, args.out, **options))
    else:
        from orstream.export.onnx.models.workflow_export import export_package

        _print_workflow(export_package(args.checkpoint, args.out, **options))
    return 0


def _print_workflow(result: ExportResult) -> None:
    card = result.package.card
    print(f"package   {result.package.root}  dynamic batch, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  input {list(card.inputs[0].shape)}  "
        f"{len(card.state)} state tensors  opset {card.export.opset} ({result.exporter})"
    )
    print(
        "parity    ONNX Runtime vs PyTorch, max abs diff per output "
        f"(tolerance {result.parity[0].tolerance:g}):"
    )
    state_outputs = {state.output for state in card.state}
    for parity in result.parity:
        heads = "  ".join(
            f"{name} {value:.2e}"
            for name, value in parity.max_abs_diff.items()
            if name not in state_outputs
        )
        state = max((parity.max_abs_diff[name] for name in state_outputs), default=0.0)
        print(
            f"  {parity.source:<8} {parity.frames:>3} frames  batch {parity.batch:<3} {heads}  "
            f"state {state:.2e}"
        )


def _print_classifier(result: ClassifierExportResult) -> None:
    card = result.package.card
    print(f"package   {result.package.root}  dynamic batch, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  input {list(card.inputs[0].shape)}  "
        f"{card.outputs[0].shape[-1]} classes  opset {card.export.opset} ({result.exporter})"
    )
    for parity in result.parity:
        diffs = "  ".join(f"{name} {value:.2e}" for name, value in parity.max_abs_diff.items())
        print(
            f"parity    ONNX Runtime vs PyTorch on {parity.frames} {parity.source} crops, batch "
            f"{parity.batch}: {diffs} (tolerance {parity.tolerance:g})"
        )


def _print_segmenter(result: SegmenterExportResult) -> None:
    card = result.package.card
    decoder = card.decoder
    assert decoder is not None  # a segmenter package always has one
    classes = ", ".join(label.name for label in card.labels[decoder.labels])
    print(f"package   {result.package.root}  dynamic batch, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  input {list(card.inputs[0].shape)}  "
        f"embedding {list(card.outputs[0].shape)}  opset {card.export.opset} ({result.exporter})"
    )
    print(
        f"decoder   {decoder.point_slots} point slots, box, mask {list(decoder.mask_size)}, "
        f"text; {len(card.labels[decoder.labels])} classes: {classes}"
    )
    print(
        "parity    ONNX Runtime vs PyTorch, max abs diff per output "
        f"(tolerance {result.encoder_parity[0].tolerance:g}):"
    )
    for graph, results in (("encoder", result.encoder_parity), ("decoder", result.decoder_parity)):
        for parity in results:
            diffs = "  ".join(f"{name} {value:.2e}" for name, value in parity.max_abs_diff.items())
            print(
                f"  {graph}  {parity.source:<8} {parity.frames:>3} frames  batch "
                f"{parity.batch:<3} {diffs}"
            )


def _print_videotext(result: VideoTextExportResult) -> None:
    card = result.package.card
    text = result.package.text_section()
    print(f"package   {result.package.root}  dynamic batch, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  clip encoder: frame {list(card.inputs[0].shape)} "
        f"at {card.clip.fps:g} fps, window {card.clip.length}, embedding "
        f"{list(card.outputs[0].shape)}  opset {card.export.opset} ({result.exporter})"
    )
    print(
        f"text      {text.tokens} tokens -> {list(text.outputs[0].shape)}; "
        f"{len(text.prompts)} step prompts, logit scale {text.logit_scale:.1f}"
    )
    print("parity    ONNX Runtime vs PyTorch, max abs diff:")
    for graph, results in (("clip", result.clip_parity), ("text", result.text_parity)):
        for parity in results:
            worst = max(parity.max_abs_diff.values())
            print(
                f"  {graph}  {parity.source:<8} {parity.frames:>3} items  batch "
                f"{parity.batch:<3} {worst:.2e} (tolerance {parity.tolerance:g})"
            )


def _print_tokenizer(result: TokenizerExportResult) -> None:
    card = result.package.card
    spec = result.package.tokenizer_section()
    print(f"package   {result.package.root}  dynamic batch, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  encoder: image {list(card.inputs[0].shape)} -> "
        f"indices {list(card.outputs[0].shape)}  opset {card.export.opset} ({result.exporter})"
    )
    print(
        f"tokens    {spec.groups} sub-codebooks x {spec.codes} codes, grid {list(spec.grid)}; "
        f"detokenizer -> image {list(spec.outputs[0].shape)} RGB 0..1"
    )
    print("parity    ONNX Runtime vs PyTorch:")
    for index in result.index_parity:
        print(
            f"  encoder      {index.source:<8} {index.frames:>3} frames  batch {index.batch:<3} "
            f"equal indices {index.equal:.4%} (at least {index.minimum:.1%})"
        )
    for parity in result.image_parity:
        worst = max(parity.max_abs_diff.values())
        print(
            f"  detokenizer  {parity.source:<8} {parity.frames:>3} grids   batch "
            f"{parity.batch:<3} max abs diff {worst:.2e} (tolerance {parity.tolerance:g})"
        )


def _print_slide(result: SlideExportResult) -> None:
    card = result.package.card
    slide = card.slide
    assert slide is not None  # a slide package always has one
    classes = ", ".join(label.name for label in card.labels[slide.labels])
    print(f"package   {result.package.root}  dynamic batch, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  patch encoder: tile {list(card.inputs[0].shape)} "
        f"at {slide.mpp:g} µm/px -> features {list(card.outputs[0].shape)}  opset "
        f"{card.export.opset} ({result.exporter})"
    )
    print(f"slide     features [1, N, {slide.inputs[0].shape[2]}] -> {classes}, fraction, heatmap")
    print("parity    ONNX Runtime vs PyTorch, max abs diff:")
    for graph, results in (("patch", result.patch_parity), ("slide", result.slide_parity)):
        for parity in results:
            worst = max(parity.max_abs_diff.values())
            print(
                f"  {graph}  {parity.source:<16} {parity.frames:>3} items  batch "
                f"{parity.batch:<3} {worst:.2e} (tolerance {parity.tolerance:g})"
            )


def _print_vlm(result: VLMExportResult) -> None:
    card = result.package.card
    vlm = card.vlm
    assert vlm is not None  # a vlm package always has one
    language = vlm.language
    encoders = vlm.encoders
    print(f"package   {result.package.root}  dynamic batch and length, max_batch {card.max_batch}")
    print(
        f"model     {card.name} {card.version}  {language.layers} layers x {language.width}, "
        f"{language.heads} heads over {language.kv_heads} kv heads, vocab {language.vocab_size}  "
        f"opset {card.export.opset} ({result.exporter})"
    )
    print(
        f"vision    {', '.join(vlm.projectors)}: frame package {encoders.frame_package} grid "
        f"{list(encoders.frame_grid)}"
        f"{' + instruments ' + encoders.instrument_package if encoders.instrument_package else ''}"
        f" x {encoders.window_s} frames; slide regions "
        f"{list(encoders.slide_regions)}"
    )
    print("parity    ONNX Runtime vs PyTorch, max abs diff:")
    for graph, results in (
        ("prefill", result.prefill_parity),
        ("decode", result.decode_parity),
        ("projector", result.projector_parity),
    ):
        for parity in results:
            worst = max(parity.max_abs_diff.values())
            print(
                f"  {graph:<9} {parity.source:<24} batch {parity.batch:<3} {worst:.2e} "
                f"(tolerance {parity.tolerance:g})"
            )
