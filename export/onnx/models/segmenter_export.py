"""Export an interactive segmenter checkpoint to a model package.

The package holds the model split the way SAM is deployed:

- ``model.onnx``, the image encoder: ``image`` [B, 3, H, W] -> ``image_embeddings``
  [B, E, H/16, W/16], run once per frame;
- ``decoder.onnx``, the prompt decoder: the inputs of
  :data:`orstream.package.card.DECODER_INPUTS`, every prompt with a fixed shape and every
  switch a 0/1 float ([B, N, 2] points with :data:`POINT_SLOTS` slots, labels -1 on unused
  slots) -> ``masks`` [B, 3, H/4, W/4] logits and ``iou`` [B, 3], run once per prompt;
- ``text_prompts.npy``, float32 [C, 384]: the frozen MiniLM embedding of
  ``prompt_text(class)`` for each class the checkpoint was trained on, so the edge prompts by
  class name without a text encoder;
- ``card.json``, with ``labels["segmentation"]`` (segmentation codes by class name) and a
  ``decoder`` section.

Both graphs take a dynamic batch B (axis 0 of every tensor; the card's shapes are those of B = 1):
frames of several streams, or several prompts, in one call. They are traced at
:data:`~orstream.export.onnx.models.workflow_export.EXPORT_BATCH` rows, checked with
``onnx.checker`` and against the card, then ONNX Runtime must reproduce PyTorch within the
tolerance: the encoder on random and phantom frames, the decoder on each frame's PyTorch embedding
with every kind of prompt (clicks, box, text, clicks with the previous mask, all at once), one at a
time and again in calls of ``max_batch`` rows. The worst differences are recorded in the card, and
the golden reference of both graphs (:mod:`orstream.export.onnx.golden_reference`) is written last.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH
from orstream.export.onnx.card_parts import export_info, image_input, package_line
from orstream.export.onnx.models.workflow_export import (
    EXPORT_BATCH,
    OPSET,
    Exporter,
    Progress,
    check_max_batch,
    export_graph,
    finish_package,
    load_model_checkpoint,
    onnx_opset,
    onnx_signature,
    prepare_output,
    progress_to_stderr,
    read_checkpoint,
    read_onnx,
    training_record,
)
from orstream.export.onnx.parity import phantom_frames, random_frames
from orstream.labels import SEGMENTATION_CLASSES
from orstream.package.card import (
    DECODER_FILE,
    DECODER_INPUTS,
    DECODER_OUTPUTS,
    IMAGE_EMBEDDINGS,
    INTERACTIVE_SEGMENTATION,
    MODEL_FILE,
    TEXT_PROMPTS_FILE,
    Clip,
    Hashes,
    InputSpec,
    Label,
    ModelCard,
    OutputSpec,
    ParityResult,
    PromptDecoderSpec,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file
from orstream.package.preprocess import ImagePreprocessor
from orstream.package.signatures import check_graph_signature
from orstream.training.models.segmenter import PAD_LABEL, InteractiveSegmenter
from orstream.training.models.text_encoder import PROMPT_TEMPLATE, TextEncoder, prompt_text

SEGMENTER_MODELS = frozenset({"imis_segmenter"})
"""Registry names of models this module exports (``orstream export onnx`` dispatches on them)."""
POINT_SLOTS = 8
"""Clicks one decoder call takes: more than a user places on one target before giving up."""
TOLERANCE = 1e-3
"""Max abs difference allowed between ONNX Runtime and PyTorch, for embeddings, mask logits and
IoU alike: masks are thresholded at logit 0, so a difference this small moves no boundary."""
LIVE_RATE_HZ = 5.0
"""Default rate (frames per second) of live segmentation: the card's ``clip.fps``."""
IMAGE_INPUT = "image"
CLASS_LABELS = "segmentation"


@dataclass(frozen=True)
class LoadedSegmenter:
    """A segmenter checkpoint's model rebuilt from the registry, in eval mode."""

    path: Path
    sha256: str
    model_name: str
    model_kwargs: dict[str, Any]
    classes: tuple[str, ...]
    """Class names the model was trained on, in the order of the text prompts."""
    model: InteractiveSegmenter
    record: dict[str, Any]
    """``checkpoint["orstream"]``: training data and metrics ({} when absent)."""


@dataclass(frozen=True)
class SegmenterExportResult:
    """The written package and the parity checks both graphs passed."""

    package: ModelPackage
    exporter: str
    encoder_parity: tuple[ParityResult, ...]
    decoder_parity: tuple[ParityResult, ...]

    def summary(self) -> list[str]:
        """What ``orstream export onnx`` prints: the package, the model and its parity."""
        lines: list[str] = []
        card = self.package.card
        decoder = card.decoder
        assert decoder is not None  # a segmenter package always has one
        classes = ", ".join(label.name for label in card.labels[decoder.labels])
        lines.append(package_line(self.package))
        lines.append(
            f"model     {card.name} {card.version}  input {list(card.inputs[0].shape)}  "
            f"embedding {list(card.outputs[0].shape)}  opset {card.export.opset} ({self.exporter})"
        )
        lines.append(
            f"decoder   {decoder.point_slots} point slots, box, mask {list(decoder.mask_size)}, "
            f"text; {len(card.labels[decoder.labels])} classes: {classes}"
        )
        lines.append(
            "parity    ONNX Runtime vs PyTorch, max abs diff per output "
            f"(tolerance {self.encoder_parity[0].tolerance:g}):"
        )
        for graph, results in (("encoder", self.encoder_parity), ("decoder", self.decoder_parity)):
            for parity in results:
                diffs = "  ".join(
                    f"{name} {value:.2e}" for name, value in parity.max_abs_diff.items()
                )
                lines.append(
                    f"  {graph}  {parity.source:<8} {parity.frames:>3} frames  batch "
                    f"{parity.batch:<3} {diffs}"
                )
        return lines


def checkpoint_model_name(path: Path) -> str | None:
    """The registry name ``hyper_parameters["model_name"]`` of a checkpoint, None if it has none.

    Raises:
        OrstreamError: the file is missing or not a PyTorch checkpoint.
    """
    hyper = read_checkpoint(Path(path), lambda _: None).get("hyper_parameters")
    name = hyper.get("model_name") if isinstance(hyper, Mapping) else None
    return name if isinstance(name, str) else None


def class_codes(classes: Sequence[str]) -> tuple[int, ...]:
    """Segmentation codes of class names (``orstream.labels.SEGMENTATION_CLASSES``).

    Raises:
        OrstreamError: a name that is no segmentation class, listing the known ones.
    """
    codes = {name: code for code, name in SEGMENTATION_CLASSES.items()}
    unknown = [name for name in classes if name not in codes]
    if unknown:
        raise OrstreamError(f"unknown segmentation class(es) {unknown}; known: {', '.join(codes)}")
    return tuple(codes[name] for name in classes)


def load_segmenter_checkpoint(
    path: Path, progress: Progress = progress_to_stderr
) -> LoadedSegmenter:
    """Rebuild the interactive segmenter a Lightning checkpoint of ``orstream train segmenter``
    holds (``hyper_parameters``: model_name, model_kwargs, classes; ``state_dict``: model.*).

    Raises:
        OrstreamError: the file is missing or not a segmenter checkpoint, lacks its classes or
            names unknown ones, or its weights do not fit the model.
    """
    loaded = load_model_checkpoint(Path(path), progress)
    path = loaded.path
    if loaded.model_name not in SEGMENTER_MODELS:
        raise OrstreamError(
            f"{path} is not an interactive segmenter checkpoint (its model is "
            f"{loaded.model_name!r}, not one of {sorted(SEGMENTER_MODELS)})"
        )
    classes = loaded.hyper_parameters.get("classes")
    if (
        not isinstance(classes, Sequence)
        or isinstance(classes, str)
        or not classes
        or not all(isinstance(name, str) for name in classes)
    ):
        raise OrstreamError(
            f"{path}: hyper_parameters['classes'] must list the class names trained on"
        )
    if len(set(classes)) != len(classes):
        raise OrstreamError(f"{path}: hyper_parameters['classes'] names a class twice")
    try:
        class_codes(classes)
    except OrstreamError as error:
        raise OrstreamError(f"{path}: {error}") from None
    model = loaded.model
    assert isinstance(model, InteractiveSegmenter)  # what SEGMENTER_MODELS build
    return LoadedSegmenter(
        path=path,
        sha256=loaded.sha256,
        model_name=loaded.model_name,
        model_kwargs=loaded.model_kwargs,
        classes=tuple(classes),
        model=model,
        record=loaded.record,
    )


class EncoderGraph(nn.Module):
    """The exported image encoder: ``model.encode_image(image)``."""

    def __init__(self, model: InteractiveSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.encode_image(image)


class DecoderGraph(nn.Module):
    """The exported prompt decoder: ``model.decode`` with every input of
    :data:`DECODER_INPUTS` given positionally."""

    def __init__(self, model: InteractiveSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.decode(*inputs)


def encode_class_prompts(classes: Sequence[str]) -> np.ndarray:
    """float32 [C, 384]: the MiniLM embedding of ``prompt_text(name)`` for each class."""
    encoder = TextEncoder.load()
    return encoder.encode([prompt_text(name) for name in classes]).float().numpy()


def decoder_example(model: InteractiveSegmenter, embeddings: Tensor) -> tuple[Tensor, ...]:
    """Decoder inputs (in :data:`DECODER_INPUTS` order) with every prompt switched on."""
    height, width = model.input_size
    points = torch.zeros(1, POINT_SLOTS, 2)
    points[0, :2] = torch.tensor([[width / 3, height / 2], [2 * width / 3, height / 2]])
    labels = torch.full((1, POINT_SLOTS), float(PAD_LABEL))
    labels[0, :2] = torch.tensor([1.0, 0.0])
    on = torch.ones(1)
    return (
        embeddings,
        points,
        labels,
        torch.tensor([[width / 4, height / 4, 3 * width / 4, 3 * height / 4]]),
        torch.zeros(1, 1, *model.mask_size),
        torch.zeros(1, model.text_dim),
        on,
        on,
        on,
    )


def build_card(
    checkpoint: LoadedSegmenter,
    hashes: Mapping[str, str],
    exporter: str,
    opset: int,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> ModelCard:
    """The card of the package exported from ``checkpoint`` (a dynamic batch, checked at
    ``max_batch`` rows).

    Args:
        hashes: sha256 of the package's files by file name.
    """
    model = checkpoint.model
    height, width = model.input_size
    with torch.no_grad():
        embedding_shape = tuple(model.encode_image(torch.zeros(1, 3, height, width)).shape)
    example = decoder_example(model, torch.zeros(embedding_shape))
    with torch.no_grad():
        masks, iou = model.decode(*example)
    return ModelCard(
        name=checkpoint.model_name,
        task=INTERACTIVE_SEGMENTATION,
        version=checkpoint.sha256[:12],
        inputs=(image_input(IMAGE_INPUT, height, width, model.mean, model.std),),
        outputs=(
            OutputSpec(
                name=IMAGE_EMBEDDINGS,
                shape=embedding_shape,
                dtype="float32",
                meaning="image embedding at 1/16 of the input size, for the prompt decoder",
                activation="none",
            ),
        ),
        labels={
            CLASS_LABELS: tuple(
                Label(index=index, code=code, name=name)
                for index, (code, name) in enumerate(
                    zip(class_codes(checkpoint.classes), checkpoint.classes, strict=True)
                )
            )
        },
        clip=Clip(length=1, stride=1, fps=LIVE_RATE_HZ),
        hashes=Hashes(checkpoint=checkpoint.sha256, model_onnx=hashes[MODEL_FILE]),
        training=training_record(checkpoint.record),
        export=export_info(exporter, opset, max_batch),
        decoder=PromptDecoderSpec(
            file=DECODER_FILE,
            sha256=hashes[DECODER_FILE],
            inputs=tuple(
                InputSpec(name=name, shape=tuple(value.shape), dtype="float32")
                for name, value in zip(DECODER_INPUTS, example, strict=True)
            ),
            outputs=(
                OutputSpec(
                    name=DECODER_OUTPUTS[0],
                    shape=tuple(masks.shape),
                    dtype="float32",
                    meaning=f"logits of {masks.shape[1]} candidate masks at 1/4 of the input "
                    "size (upscale, then threshold at 0)",
                    activation="sigmoid",
                ),
                OutputSpec(
                    name=DECODER_OUTPUTS[1],
                    shape=tuple(iou.shape),
                    dtype="float32",
                    meaning="predicted IoU of each candidate mask (the best one is shown)",
                    activation="none",
                ),
            ),
            text_file=TEXT_PROMPTS_FILE,
            text_sha256=hashes[TEXT_PROMPTS_FILE],
            labels=CLASS_LABELS,
            prompt_template=PROMPT_TEMPLATE,
        ),
    )


def parity_sources(model: InteractiveSegmenter, count: int) -> list[tuple[str, np.ndarray]]:
    """(source, RGB uint8 frames [count, H, W, 3]) pairs: noise at the input size, and phantom
    frames, which pass through the card's resize."""
    height, width = model.input_size
    return [("random", random_frames(count, height, width)), ("phantom", phantom_frames(count))]


def _prompt_sets(
    model: InteractiveSegmenter, text_prompts: np.ndarray, rng: np.random.Generator
) -> list[dict[str, Tensor]]:
    """Prompts for one frame's decoder parity: clicks, box, text, clicks with a mask prompt (the
    clicks' own best mask is filled in later), and everything at once."""
    height, width = model.input_size
    clicks = 3
    points = torch.zeros(1, POINT_SLOTS, 2)
    points[0, :clicks] = torch.from_numpy(
        rng.uniform(0, (width - 1, height - 1), (clicks, 2)).astype(np.float32)
    )
    labels = torch.full((1, POINT_SLOTS), float(PAD_LABEL))
    labels[0, :clicks] = torch.tensor([1.0, 0.0, 1.0])
    x0, x1 = sorted(rng.uniform(0, width, 2))
    y0, y1 = sorted(rng.uniform(0, height, 2))
    box = torch.tensor([[x0, y0, x1, y1]], dtype=torch.float32)
    text = torch.from_numpy(text_prompts[rng.integers(len(text_prompts))][None].copy())
    click = {"points": points, "point_labels": labels}
    return [
        click,
        {"boxes": box, "has_box": torch.ones(1)},
        {"text_embedding": text, "has_text": torch.ones(1)},
        {**click, "has_mask": torch.ones(1)},
        {
            **click,
            "boxes": box,
            "has_box": torch.ones(1),
            "text_embedding": text,
            "has_text": torch.ones(1),
            "has_mask": torch.ones(1),
        },
    ]


def _decoder_feeds(
    model: InteractiveSegmenter, embeddings: Tensor, prompts: Mapping[str, Tensor]
) -> dict[str, Tensor]:
    """Every decoder input: the prompts given, zeros with flag 0 (or pad labels) otherwise."""
    off = torch.zeros(1)
    feeds = {
        IMAGE_EMBEDDINGS: embeddings,
        "points": torch.zeros(1, POINT_SLOTS, 2),
        "point_labels": torch.full((1, POINT_SLOTS), float(PAD_LABEL)),
        "boxes": torch.zeros(1, 4),
        "mask_prompt": torch.zeros(1, 1, *model.mask_size),
        "text_embedding": torch.zeros(1, model.text_dim),
        "has_box": off,
        "has_mask": off,
        "has_text": off,
    }
    feeds.update(prompts)
    return feeds


def check_segmenter_parity(
    model: InteractiveSegmenter,
    encoder: OnnxRuntimeBackend,
    decoder: OnnxRuntimeBackend,
    card: ModelCard,
    text_prompts: np.ndarray,
    frames: np.ndarray,
    source: str,
    tolerance: float,
    batch: int = 1,
) -> tuple[ParityResult, ParityResult]:
    """Both graphs against PyTorch on ``frames``: (encoder result, decoder result).

    Each frame goes through the card's pre-processing and the encoder, and its PyTorch
    embedding through the decoder with each prompt set of :func:`_prompt_sets` (so the
    decoder's difference is its own); the mask prompt is the previous clicks' best PyTorch
    mask. Both sides run these inputs in calls of ``batch`` rows, the last call filled up with
    the first inputs again.
    """
    preprocess = ImagePreprocessor.from_card(card)
    rng = np.random.default_rng(0)
    images: list[np.ndarray] = []
    feeds: list[dict[str, Tensor]] = []
    with torch.inference_mode():
        for frame in frames:
            images.append(preprocess(frame))
            embeddings = model.encode_image(torch.from_numpy(images[-1]))
            previous = torch.zeros(1, 1, *model.mask_size)
            for prompts in _prompt_sets(model, text_prompts, rng):
                if "has_mask" in prompts:
                    prompts = {**prompts, "mask_prompt": previous}
                feeds.append(_decoder_feeds(model, embeddings, prompts))
                masks, iou = model.decode(*(feeds[-1][name] for name in DECODER_INPUTS))
                previous = masks[:, int(iou[0].argmax()) : int(iou[0].argmax()) + 1]
        worst_embedding = 0.0
        for rows in _calls(len(images), batch):
            image = np.concatenate([images[row] for row in rows])
            graph = encoder.infer({IMAGE_INPUT: image})[IMAGE_EMBEDDINGS]
            expected = model.encode_image(torch.from_numpy(image))
            worst_embedding = max(worst_embedding, _max_diff(graph, expected))
        worst = dict.fromkeys(DECODER_OUTPUTS, 0.0)
        for rows in _calls(len(feeds), batch):
            feed = {name: torch.cat([feeds[row][name] for row in rows]) for name in DECODER_INPUTS}
            decoded = model.decode(*(feed[name] for name in DECODER_INPUTS))
            actual = decoder.infer({name: value.numpy() for name, value in feed.items()})
            for name, reference in zip(DECODER_OUTPUTS, decoded, strict=True):
                worst[name] = max(worst[name], _max_diff(actual[name], reference))
    count = len(frames)
    return (
        ParityResult(
            source=source,
            frames=count,
            batch=batch,
            max_abs_diff={IMAGE_EMBEDDINGS: worst_embedding},
            tolerance=tolerance,
        ),
        ParityResult(
            source=source, frames=count, batch=batch, max_abs_diff=worst, tolerance=tolerance
        ),
    )


def _calls(count: int, batch: int) -> list[list[int]]:
    """Indices of ``count`` inputs in calls of ``batch`` rows; the last call wraps around."""
    return [[(start + row) % count for row in range(batch)] for start in range(0, count, batch)]


def _max_diff(actual: np.ndarray, expected: Tensor) -> float:
    return float(np.abs(actual.astype(np.float64) - expected.double().numpy()).max())


def _refuse_over_tolerance(result: ParityResult, graph: str) -> None:
    worst = max(result.max_abs_diff, key=result.max_abs_diff.__getitem__)
    if result.max_abs_diff[worst] > result.tolerance:
        raise OrstreamError(
            f"{graph} parity failed on {result.source} frames at batch {result.batch}: {worst} "
            f"differs from PyTorch by {result.max_abs_diff[worst]:.3g} > {result.tolerance:g}"
        )


def export_segmenter_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 4,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    opset: int = OPSET,
    tolerance: float = TOLERANCE,
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> SegmenterExportResult:
    """Export the segmenter ``checkpoint_path`` to the package folder ``out`` (module docstring).

    The package is built in a staging folder beside ``out`` and moved there only when every
    check passed; with ``overwrite`` an existing package at ``out`` is replaced then.

    Raises:
        OrstreamError: bad checkpoint, existing ``out`` without ``overwrite``, ``max_batch``
            below 2, an export or checker failure, a graph that differs from the card, or
            parity above ``tolerance``.
    """
    if parity_frames < 1:
        raise OrstreamError(f"--parity-frames must be at least 1, not {parity_frames}")
    check_max_batch(max_batch)
    out = Path(out)
    staging = prepare_output(out, overwrite)
    try:
        progress(f"loading {checkpoint_path}")
        checkpoint = load_segmenter_checkpoint(checkpoint_path, progress)
        model = checkpoint.model
        progress(
            f"model {checkpoint.model_name} {checkpoint.model_kwargs}, "
            f"{len(checkpoint.classes)} classes; exporting the encoder (opset {opset})"
        )
        height, width = model.input_size
        used = export_graph(
            EncoderGraph(model),
            (torch.zeros(EXPORT_BATCH, 3, height, width),),
            staging / MODEL_FILE,
            ([IMAGE_INPUT], [IMAGE_EMBEDDINGS]),
            exporter,
            opset,
            progress,
        )
        with torch.no_grad():
            embeddings = model.encode_image(torch.zeros(1, 3, height, width))
        progress(f"exporting the prompt decoder ({POINT_SLOTS} point slots)")
        example = decoder_example(model, embeddings)
        export_graph(
            DecoderGraph(model),
            (tuple(value.repeat(EXPORT_BATCH, *[1] * (value.dim() - 1)) for value in example),),
            staging / DECODER_FILE,
            (DECODER_INPUTS, DECODER_OUTPUTS),
            # both graphs come from the same exporter, so the card's one exporter is true
            "dynamo" if used == "dynamo" else "torchscript",
            opset,
            progress,
        )
        progress("embedding the class prompts with MiniLM")
        text_prompts = encode_class_prompts(checkpoint.classes)
        np.save(staging / TEXT_PROMPTS_FILE, text_prompts)
        progress("running onnx.checker (full_check) on both graphs")
        encoder_proto = read_onnx(staging / MODEL_FILE)
        decoder_proto = read_onnx(staging / DECODER_FILE)
        hashes = {
            name: sha256_file(staging / name)
            for name in (MODEL_FILE, DECODER_FILE, TEXT_PROMPTS_FILE)
        }
        card = build_card(checkpoint, hashes, used, onnx_opset(encoder_proto), max_batch)
        inputs, outputs = onnx_signature(encoder_proto)
        check_graph_signature(card, inputs, outputs, staging / MODEL_FILE)
        inputs, outputs = onnx_signature(decoder_proto)
        check_graph_signature(card, inputs, outputs, staging / DECODER_FILE, "decoder")
        package = ModelPackage(root=staging, card=card)
        encoder = OnnxRuntimeBackend()
        encoder.load(package)
        decoder = OnnxRuntimeBackend(graph="decoder")
        decoder.load(package)
        encoder_parity, decoder_parity = [], []
        for source, frames in parity_sources(model, parity_frames):
            for rows in (1, max_batch):
                progress(
                    f"parity on {len(frames)} {source} frames, 5 prompt sets each, in calls of "
                    f"{rows} row(s)"
                )
                on_encoder, on_decoder = check_segmenter_parity(
                    model, encoder, decoder, card, text_prompts, frames, source, tolerance, rows
                )
                _refuse_over_tolerance(on_encoder, "encoder")
                _refuse_over_tolerance(on_decoder, "decoder")
                encoder_parity.append(on_encoder)
                decoder_parity.append(on_decoder)
        assert card.decoder is not None  # build_card writes it
        card = card.model_copy(
            update={
                "export": card.export.model_copy(update={"parity": tuple(encoder_parity)}),
                "decoder": card.decoder.model_copy(update={"parity": tuple(decoder_parity)}),
            }
        )
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return SegmenterExportResult(
        package=load_package(out),
        exporter=used,
        encoder_parity=tuple(encoder_parity),
        decoder_parity=tuple(decoder_parity),
    )
