"""Export a trained slide encoder and its patch encoder to one slide package.

The slide encoder's checkpoint (``orstream train slide``) records the patch encoder checkpoint
its features came from and the tiling (µm per pixel, tile side, least tissue share); both
models go into one package, since a slide encoder is only right on the features of the patch
encoder it was trained on:

- ``model.onnx``, the patch encoder: ``tiles`` [B, 3, T, T] (RGB, ImageNet mean/std, as
  training normalised them) -> ``features`` [B, F];
- ``slide_encoder.onnx``: ``features`` [B, N, F] (every tile of a slide) -> ``subtype_logits``
  [B, S], ``fraction`` [B], ``tile_logits`` [B, N], ``attention`` [B, N]; N is symbolic, so one
  graph takes a slide of any size.

ONNX Runtime must reproduce PyTorch within 1e-4 on phantom slide tiles (in calls of one row and
of ``max_batch`` rows) and on slides of several tile counts before the package is written; the
golden reference is written last.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from torch import Tensor, nn

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH
from orstream.export.onnx.card_parts import export_info, image_input, package_line
from orstream.export.onnx.models.workflow_export import (
    EXPORT_BATCH,
    OPSET,
    TOLERANCE,
    Exporter,
    LoadedCheckpoint,
    Progress,
    check_max_batch,
    export_graph,
    finish_package,
    load_model_checkpoint,
    onnx_opset,
    onnx_signature,
    prepare_output,
    progress_to_stderr,
    read_onnx,
    training_record,
)
from orstream.export.onnx.phantom_tiles import phantom_tiles
from orstream.package.card import (
    MODEL_FILE,
    PATCH_FEATURES,
    SLIDE,
    SLIDE_ENCODER_FILE,
    SLIDE_OUTPUTS,
    TILE_AXIS_NAME,
    TILE_AXIS_TENSORS,
    Clip,
    Graph,
    Hashes,
    InputSpec,
    Label,
    ModelCard,
    OutputSpec,
    ParityResult,
    SlideEncoderSpec,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file
from orstream.package.preprocess import ImagePreprocessor
from orstream.package.signatures import check_graph_signature
from orstream.slides.phantom.tissue_classes import SUBTYPES

SLIDE_MODELS = frozenset({"slide_mil_encoder"})
PATCH_MODELS = frozenset({"slide_patch_encoder"})
TILE_INPUT = "tiles"
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PARITY_SLIDE_TILES = (1, 7, 64)
"""Tile counts of the slides the slide encoder's parity runs on (one graph serves them all)."""
CARD_TILES = 8
"""N in the card's slide shapes: the golden reference's slide of 8 tiles."""


@dataclass(frozen=True)
class SlideExportResult:
    """The written package and the parity checks it passed."""

    package: ModelPackage
    exporter: str
    patch_parity: tuple[ParityResult, ...]
    slide_parity: tuple[ParityResult, ...]

    def summary(self) -> list[str]:
        """What ``orstream export onnx`` prints: the package, the model and its parity."""
        lines: list[str] = []
        card = self.package.card
        slide = card.slide
        assert slide is not None  # a slide package always has one
        classes = ", ".join(label.name for label in card.labels[slide.labels])
        lines.append(package_line(self.package))
        lines.append(
            f"model     {card.name} {card.version}  patch "
            f"encoder: tile {list(card.inputs[0].shape)} "
            f"at {slide.mpp:g} µm/px -> features {list(card.outputs[0].shape)}  opset "
            f"{card.export.opset} ({self.exporter})"
        )
        lines.append(
            f"slide     features [1, N, {slide.inputs[0].shape[2]}] -> {classes}, fraction, heatmap"
        )
        lines.append("parity    ONNX Runtime vs PyTorch, max abs diff:")
        for graph, results in (("patch", self.patch_parity), ("slide", self.slide_parity)):
            for parity in results:
                worst = max(parity.max_abs_diff.values())
                lines.append(
                    f"  {graph}  {parity.source:<16} {parity.frames:>3} items  batch "
                    f"{parity.batch:<3} {worst:.2e} (tolerance {parity.tolerance:g})"
                )
        return lines


@dataclass(frozen=True)
class Tiling:
    """How the models were trained to see a slide (the slide checkpoint's record)."""

    mpp: float
    tile: int
    min_tissue: float


class PatchGraph(nn.Module):
    """The exported patch encoder: tiles to features (the training heads stay behind)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, tiles: Tensor) -> Tensor:
        features: Tensor = self.model(tiles)[0]
        return features


class SlideGraph(nn.Module):
    """The exported slide encoder: one slide's tile features per row, every tile valid."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, features: Tensor) -> tuple[Tensor, ...]:
        valid = torch.ones_like(features[..., 0], dtype=torch.bool)
        out = self.model(features, valid)
        return out["subtype"], out["fraction"], out["tile_logits"], out["attention"]


def patch_checkpoint_of(slide: LoadedCheckpoint) -> Path:
    """The patch encoder checkpoint the slide encoder's features came from, as recorded.

    Raises:
        OrstreamError: the checkpoint records none, or the file is gone.
    """
    data = slide.record.get("data")
    recorded = data.get("patch_checkpoint") if isinstance(data, Mapping) else None
    if not isinstance(recorded, str):
        raise OrstreamError(f"{slide.path}: records no patch_checkpoint to export with it")
    path = Path(recorded)
    if not path.is_file():
        raise OrstreamError(
            f"{slide.path}: its patch encoder checkpoint {path} is not there (run the export "
            "from the folder it was trained in)"
        )
    return path


def tiling_of(slide: LoadedCheckpoint, patch: LoadedCheckpoint) -> Tiling:
    """The tiling the slide checkpoint's data recorded (the patch model's tile side by default)."""
    data = slide.record.get("data")
    data = data if isinstance(data, Mapping) else {}
    try:
        return Tiling(
            mpp=float(data.get("mpp", 1.0)),
            tile=int(data.get("tile", patch.model_kwargs.get("tile", 112))),
            min_tissue=float(data.get("min_tissue", 0.5)),
        )
    except (TypeError, ValueError) as error:
        raise OrstreamError(f"{slide.path}: its recorded tiling is unreadable ({error})") from None


def build_card(
    slide: LoadedCheckpoint,
    patch: LoadedCheckpoint,
    tiling: Tiling,
    hashes: tuple[str, str],
    exporter: str,
    opset: int,
    max_batch: int,
) -> ModelCard:
    """The card of the slide package (``hashes``: model.onnx's and slide_encoder.onnx's)."""
    width = int(slide.model_kwargs.get("feature_dim", 512))
    subtypes = tuple(Label(index=i, code=i, name=name) for i, name in enumerate(SUBTYPES))
    record = training_record(slide.record)
    patch_metrics = training_record(patch.record).metrics
    metrics = {**record.metrics, **{f"patch_{k}": v for k, v in patch_metrics.items()}}
    data = {**record.data, "patch_checkpoint_sha256": patch.sha256}
    per_tile = (1, CARD_TILES)
    return ModelCard(
        name=slide.model_name,
        task=SLIDE,
        version=slide.sha256[:12],
        inputs=(image_input(TILE_INPUT, tiling.tile, tiling.tile, IMAGENET_MEAN, IMAGENET_STD),),
        outputs=(
            OutputSpec(
                name=PATCH_FEATURES,
                shape=(1, width),
                dtype="float32",
                meaning="the tile's features, what the slide encoder reads",
                activation="none",
            ),
        ),
        labels={"subtypes": subtypes},
        clip=Clip(length=1, stride=1, fps=1.0),
        hashes=Hashes(checkpoint=slide.sha256, model_onnx=hashes[0]),
        training=record.model_copy(update={"data": data, "metrics": metrics}),
        export=export_info(exporter, opset, max_batch),
        slide=SlideEncoderSpec(
            sha256=hashes[1],
            inputs=(InputSpec(name=PATCH_FEATURES, shape=(1, CARD_TILES, width), dtype="float32"),),
            outputs=(
                OutputSpec(
                    name=SLIDE_OUTPUTS[0],
                    shape=(1, len(subtypes)),
                    dtype="float32",
                    meaning="slide class logits (class 0: no tumour)",
                    activation="softmax",
                    labels="subtypes",
                ),
                OutputSpec(
                    name="fraction",
                    shape=(1,),
                    dtype="float32",
                    meaning="tumour share of the tissue: the mean tumour probability of the tiles",
                    activation="none",
                ),
                OutputSpec(
                    name="tile_logits",
                    shape=per_tile,
                    dtype="float32",
                    meaning="tumour logit of each tile (the heatmap)",
                    activation="sigmoid",
                ),
                OutputSpec(
                    name="attention",
                    shape=per_tile,
                    dtype="float32",
                    meaning="attention of each tile in the slide's pooled embedding (sums to 1)",
                    activation="none",
                ),
            ),
            mpp=tiling.mpp,
            tile=tiling.tile,
            min_tissue=tiling.min_tissue,
        ),
    )


def check_patch_parity(
    graph: PatchGraph, backend: OnnxRuntimeBackend, card: ModelCard, tiles: np.ndarray, rows: int
) -> tuple[ParityResult, np.ndarray]:
    """ONNX Runtime against PyTorch on ``tiles`` in calls of ``rows`` rows; also PyTorch's
    features of every tile.

    Raises:
        OrstreamError: a feature differs by more than the tolerance.
    """
    preprocess = ImagePreprocessor.from_card(card)
    worst = 0.0
    features = []
    for start in range(0, len(tiles), rows):
        tensor = preprocess.batch(list(tiles[start : start + rows]))
        actual = backend.infer({TILE_INPUT: tensor})[PATCH_FEATURES]
        with torch.no_grad():
            expected = graph(torch.from_numpy(tensor)).numpy()
        worst = max(worst, float(np.abs(actual - expected).max()))
        features.append(expected)
    if worst > TOLERANCE:
        raise OrstreamError(
            f"parity failed on phantom tiles at batch {rows}: {PATCH_FEATURES} differs from "
            f"PyTorch by {worst:.3g} > {TOLERANCE:g}"
        )
    result = ParityResult(
        source="phantom",
        frames=len(tiles),
        batch=rows,
        max_abs_diff={PATCH_FEATURES: worst},
        tolerance=TOLERANCE,
    )
    return result, np.concatenate(features)


def check_slide_parity(
    graph: SlideGraph, backend: OnnxRuntimeBackend, features: np.ndarray, tiles: int, rows: int
) -> ParityResult:
    """ONNX Runtime against PyTorch on ``rows`` slides of ``tiles`` tiles each, their features
    drawn from ``features`` (each row from another starting tile).

    Raises:
        OrstreamError: an output differs by more than the tolerance.
    """
    picks = [(np.arange(tiles) + row * 5) % len(features) for row in range(rows)]
    batch = np.stack([features[p] for p in picks]).astype(np.float32)
    actual = backend.infer({PATCH_FEATURES: batch})
    with torch.no_grad():
        expected = graph(torch.from_numpy(batch))
    worst = {
        name: float(np.abs(actual[name] - value.numpy()).max())
        for name, value in zip(SLIDE_OUTPUTS, expected, strict=True)
    }
    name = max(worst, key=worst.__getitem__)
    if worst[name] > TOLERANCE:
        raise OrstreamError(
            f"parity failed on {rows} slide(s) of {tiles} tiles: {name} differs from PyTorch by "
            f"{worst[name]:.3g} > {TOLERANCE:g}"
        )
    return ParityResult(
        source=f"phantom-{tiles}-tiles",
        frames=rows,
        batch=rows,
        max_abs_diff=worst,
        tolerance=TOLERANCE,
    )


def export_slide_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 16,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> SlideExportResult:
    """Export the slide encoder at ``checkpoint_path`` and its recorded patch encoder to the
    package folder ``out`` (module docstring), built in a staging folder and moved there only
    when every check passed.

    Raises:
        OrstreamError: bad checkpoints, existing ``out`` without ``overwrite``, ``max_batch``
            below 2, an export or checker failure, or parity above tolerance.
    """
    check_max_batch(max_batch)
    out = Path(out)
    staging = prepare_output(out, overwrite)
    try:
        progress(f"loading {checkpoint_path}")
        slide = load_model_checkpoint(checkpoint_path, progress)
        patch_path = patch_checkpoint_of(slide)
        progress(f"loading its patch encoder {patch_path}")
        patch = load_model_checkpoint(patch_path, progress)
        if patch.model_name not in PATCH_MODELS:
            raise OrstreamError(f"{patch_path}: model {patch.model_name!r} is no patch encoder")
        tiling = tiling_of(slide, patch)
        patch_graph, slide_graph = PatchGraph(patch.model).eval(), SlideGraph(slide.model).eval()
        width = int(slide.model_kwargs.get("feature_dim", 512))
        patch_file, slide_file = staging / MODEL_FILE, staging / SLIDE_ENCODER_FILE
        example = (torch.zeros(EXPORT_BATCH, 3, tiling.tile, tiling.tile),)
        names = ([TILE_INPUT], [PATCH_FEATURES])
        used = export_graph(patch_graph, example, patch_file, names, exporter, OPSET, progress)
        same: Exporter = "dynamo" if used == "dynamo" else "torchscript"
        tile_axis = {name: {1: TILE_AXIS_NAME} for name in TILE_AXIS_TENSORS}
        export_graph(
            slide_graph,
            (torch.randn(EXPORT_BATCH, 5, width),),
            slide_file,
            ([PATCH_FEATURES], list(SLIDE_OUTPUTS)),
            same,
            OPSET,
            progress,
            more_axes=tile_axis,
        )
        proto = read_onnx(patch_file)
        hashes = (sha256_file(patch_file), sha256_file(slide_file))
        card = build_card(slide, patch, tiling, hashes, used, onnx_opset(proto), max_batch)
        checks: tuple[tuple[Graph, Path, onnx.ModelProto], ...] = (
            ("model", patch_file, proto),
            ("slide", slide_file, read_onnx(slide_file)),
        )
        for graph, path, graph_proto in checks:
            inputs, outputs = onnx_signature(graph_proto)
            check_graph_signature(card, inputs, outputs, path, graph)
        package = ModelPackage(root=staging, card=card)
        patch_backend = OnnxRuntimeBackend()
        patch_backend.load(package)
        slide_backend = OnnxRuntimeBackend(graph="slide")
        slide_backend.load(package)
        tiles = phantom_tiles(max(parity_frames, max_batch), tiling.mpp, tiling.tile)
        progress(f"parity on {len(tiles)} phantom tiles in calls of 1 and {max_batch} rows")
        patch_parity = []
        for rows in (1, max_batch):
            result, features = check_patch_parity(patch_graph, patch_backend, card, tiles, rows)
            patch_parity.append(result)
        progress(f"parity of the slide encoder on slides of {list(PARITY_SLIDE_TILES)} tiles")
        slide_parity = tuple(
            check_slide_parity(slide_graph, slide_backend, features, count, rows)
            for count in PARITY_SLIDE_TILES
            for rows in (1, 2)
        )
        assert card.slide is not None  # build_card wrote it
        card = card.model_copy(
            update={
                "export": card.export.model_copy(update={"parity": tuple(patch_parity)}),
                "slide": card.slide.model_copy(update={"parity": slide_parity}),
            }
        )
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return SlideExportResult(
        package=load_package(out),
        exporter=used,
        patch_parity=tuple(patch_parity),
        slide_parity=slide_parity,
    )
