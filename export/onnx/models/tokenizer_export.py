"""Export a trained visual tokenizer checkpoint to a ``tokenizer`` package.

The package holds two graphs, both with a dynamic batch:

- ``model.onnx``, the encoder (:meth:`~orstream.training.models.tokenizer.VisualTokenizer.encode`):
  an RGB image ``image`` [B, 3, H, W], normalised as training normalised it (to -1..1), to its
  tokens ``indices`` int64 [B, G, h, w];
- ``detokenizer.onnx``
  (:meth:`~orstream.training.models.tokenizer.VisualTokenizer.decode`): ``indices`` back to
  ``image`` [B, 3, H, W], RGB in 0..1 (the model's -1..1 output clamped and rescaled, so a user
  multiplies by 255 and has pixels).

ONNX Runtime must reproduce PyTorch on both before the package is written, in calls of 1 and
``max_batch`` rows: the encoder's indices on phantom frames (through the card's resize and
normalisation) must be equal in at least :data:`MIN_EQUAL_INDICES` of all places (an index is an
argmax, see :class:`~orstream.package.card.IndexParity`); the detokenizer's image, from the
phantom frames' indices and from random indices (every code of every sub-codebook), within
:data:`TOLERANCE`. The golden reference is written last.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import cast

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
from orstream.export.onnx.parity import phantom_frames
from orstream.package.card import (
    DETOKENIZER_FILE,
    MODEL_FILE,
    RECONSTRUCTION,
    TOKEN_INDICES,
    TOKENIZER,
    Clip,
    Graph,
    Hashes,
    IndexParity,
    InputSpec,
    ModelCard,
    OutputSpec,
    ParityResult,
    TokenizerSpec,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file
from orstream.package.preprocess import ImagePreprocessor
from orstream.package.signatures import check_graph_signature
from orstream.training.models.tokenizer import VisualTokenizer

TOKENIZER_MODELS = frozenset({"meditok_small"})
"""Registry names ``orstream export onnx`` exports as tokenizer packages."""
IMAGE_INPUT = "image"
MIN_EQUAL_INDICES = 0.999
"""The share of encoder indices that must equal PyTorch's: at most 1 in 1000 may flip between
two codes whose similarities differ by float rounding alone."""
NORMALISATION = (0.5, 0.5, 0.5)
"""Mean and std on 0..1 pixels: training's ``pixel / 127.5 - 1``."""
NOMINAL_FPS = 1.0
"""The card's clip rate: tokens are made frame by frame on request (``orstream tokenize``
takes every frame or ``--fps``), not at a live rate; the card needs one."""


@dataclass(frozen=True)
class TokenizerExportResult:
    """The written package and the parity checks each graph passed."""

    package: ModelPackage
    exporter: str
    index_parity: tuple[IndexParity, ...]
    image_parity: tuple[ParityResult, ...]

    def summary(self) -> list[str]:
        """What ``orstream export onnx`` prints: the package, the model and its parity."""
        lines: list[str] = []
        card = self.package.card
        spec = self.package.tokenizer_section()
        lines.append(package_line(self.package))
        lines.append(
            f"model     {card.name} {card.version}  encoder: image {list(card.inputs[0].shape)} -> "
            f"indices {list(card.outputs[0].shape)}  opset {card.export.opset} ({self.exporter})"
        )
        lines.append(
            f"tokens    {spec.groups} sub-codebooks x {spec.codes} codes, grid {list(spec.grid)}; "
            f"detokenizer -> image {list(spec.outputs[0].shape)} RGB 0..1"
        )
        lines.append("parity    ONNX Runtime vs PyTorch:")
        for index in self.index_parity:
            lines.append(
                f"  encoder      {index.source:<8} "
                f"{index.frames:>3} frames  batch {index.batch:<3} "
                f"equal indices {index.equal:.4%} (at least {index.minimum:.1%})"
            )
        for parity in self.image_parity:
            worst = max(parity.max_abs_diff.values())
            lines.append(
                f"  detokenizer  {parity.source:<8} {parity.frames:>3} grids   batch "
                f"{parity.batch:<3} max abs diff {worst:.2e} (tolerance {parity.tolerance:g})"
            )
        return lines


class TokenEncoder(nn.Module):
    """The encoder graph: normalised images to indices."""

    def __init__(self, model: VisualTokenizer) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor) -> Tensor:
        return self.model.encode(image)


class TokenDecoder(nn.Module):
    """The detokenizer graph: indices to RGB in 0..1, computing what ``model.decode`` computes
    with operators every orstream backend runs (a flat gather for the code lookup, reshapes
    for the final pixel shuffle)."""

    def __init__(self, model: VisualTokenizer) -> None:
        super().__init__()
        quantizer = model.quantizer
        *body, shuffle = model.decoder
        if not isinstance(shuffle, nn.PixelShuffle):
            raise OrstreamError("the tokenizer's decoder does not end in a pixel shuffle")
        self.quantizer = quantizer
        self.body = nn.Sequential(*body)
        self.factor = shuffle.upscale_factor
        self.offsets: Tensor
        offsets = torch.arange(quantizer.groups) * quantizer.codes
        self.register_buffer("offsets", offsets.view(1, -1, 1, 1), persistent=False)

    def forward(self, indices: Tensor) -> Tensor:
        codes = self.quantizer.unit_codes().flatten(0, 1)  # [groups * codes, code_dim]
        chosen = codes[indices + self.offsets]  # [B, groups, h, w, code_dim]
        latent = chosen.permute(0, 1, 4, 2, 3).flatten(1, 2)
        planes = self.body(latent)  # [B, 3 * f * f, h', w']
        batch, _, height, width = planes.shape
        f = self.factor
        image = planes.view(batch, 3, f, f, height, width).permute(0, 1, 4, 2, 5, 3)
        image = image.reshape(batch, 3, height * f, width * f)
        return (image.clamp(-1.0, 1.0) + 1.0) / 2.0


def reference_decode(model: VisualTokenizer, indices: Tensor) -> Tensor:
    """What the detokenizer must give: ``model.decode`` itself, clamped and rescaled to 0..1."""
    return (model.decode(indices).clamp(-1.0, 1.0) + 1.0) / 2.0


def build_card(
    checkpoint: LoadedCheckpoint,
    model: VisualTokenizer,
    hashes: dict[str, str],
    exporter: str,
    opset: int,
    max_batch: int,
) -> ModelCard:
    """The card of the tokenizer package exported from ``checkpoint``; ``hashes`` holds the
    sha256 of every graph file by its name."""
    height, width = model.input_size
    groups, codes = model.quantizer.groups, model.quantizer.codes
    shape = (1, groups, *model.grid)
    tokenizer = TokenizerSpec(
        sha256=hashes[DETOKENIZER_FILE],
        inputs=(InputSpec(name=TOKEN_INDICES, shape=shape, dtype="int64"),),
        outputs=(
            OutputSpec(
                name=RECONSTRUCTION,
                shape=(1, 3, height, width),
                dtype="float32",
                meaning="the image the tokens rebuild, RGB in 0..1",
                activation="none",
            ),
        ),
        groups=groups,
        codes=codes,
        grid=model.grid,
    )
    return ModelCard(
        name=checkpoint.model_name,
        task=TOKENIZER,
        version=checkpoint.sha256[:12],
        inputs=(image_input(IMAGE_INPUT, height, width, NORMALISATION, NORMALISATION),),
        outputs=(
            OutputSpec(
                name=TOKEN_INDICES,
                shape=shape,
                dtype="int64",
                meaning=f"the image's tokens: per grid position, one of {codes} codes in each of "
                f"{groups} sub-codebooks",
                activation="none",
            ),
        ),
        clip=Clip(length=1, stride=1, fps=NOMINAL_FPS),
        hashes=Hashes(checkpoint=checkpoint.sha256, model_onnx=hashes[MODEL_FILE]),
        training=training_record(checkpoint.record),
        export=export_info(exporter, opset, max_batch),
        tokenizer=tokenizer,
    )


def check_index_parity(
    model: VisualTokenizer,
    backend: OnnxRuntimeBackend,
    images: np.ndarray,
    source: str,
    rows: int,
) -> IndexParity:
    """The encoder on ONNX Runtime against PyTorch on pre-processed ``images`` [N, 3, H, W] in
    calls of ``rows`` rows.

    Raises:
        OrstreamError: fewer than :data:`MIN_EQUAL_INDICES` of the indices are equal.
    """
    equal = total = 0
    for start in range(0, len(images), rows):
        batch = images[start : start + rows]
        actual = backend.infer({IMAGE_INPUT: batch})[TOKEN_INDICES]
        with torch.no_grad():
            expected = model.encode(torch.from_numpy(batch)).numpy()
        equal += int(np.count_nonzero(actual == expected))
        total += expected.size
    share = equal / total
    if share < MIN_EQUAL_INDICES:
        raise OrstreamError(
            f"parity failed on {source} frames at batch {rows}: only {share:.4%} of the "
            f"encoder's indices equal PyTorch's (at least {MIN_EQUAL_INDICES:.1%} needed)"
        )
    return IndexParity(
        source=source, frames=len(images), batch=rows, equal=share, minimum=MIN_EQUAL_INDICES
    )


def check_image_parity(
    model: VisualTokenizer,
    backend: OnnxRuntimeBackend,
    indices: np.ndarray,
    source: str,
    rows: int,
) -> ParityResult:
    """The detokenizer on ONNX Runtime against ``model.decode`` on ``indices`` [N, G, h, w] in
    calls of ``rows`` rows.

    Raises:
        OrstreamError: a pixel differs by more than :data:`TOLERANCE`.
    """
    worst = 0.0
    for start in range(0, len(indices), rows):
        batch = indices[start : start + rows]
        actual = backend.infer({TOKEN_INDICES: batch})[RECONSTRUCTION]
        with torch.no_grad():
            expected = reference_decode(model, torch.from_numpy(batch)).numpy()
        worst = max(worst, float(np.abs(actual - expected).max()))
    if worst > TOLERANCE:
        raise OrstreamError(
            f"parity failed on {source} indices at batch {rows}: the detokenizer's "
            f"{RECONSTRUCTION} differs from PyTorch by {worst:.3g} > {TOLERANCE:g}"
        )
    return ParityResult(
        source=source,
        frames=len(indices),
        batch=rows,
        max_abs_diff={RECONSTRUCTION: worst},
        tolerance=TOLERANCE,
    )


def random_indices(count: int, groups: int, codes: int, grid: tuple[int, int]) -> np.ndarray:
    """``count`` grids of uniformly random codes, int64 [count, groups, h, w]."""
    return np.random.default_rng(0).integers(0, codes, (count, groups, *grid), dtype=np.int64)


def export_tokenizer_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 16,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> TokenizerExportResult:
    """Export ``checkpoint_path`` to the package folder ``out`` (module docstring), built in a
    staging folder and moved there only when every check passed.

    Raises:
        OrstreamError: bad checkpoint, existing ``out`` without ``overwrite``, ``max_batch``
            below 2, an export or checker failure, or parity outside its bounds.
    """
    if parity_frames < 1:
        raise OrstreamError(f"--parity-frames must be at least 1, not {parity_frames}")
    check_max_batch(max_batch)
    out = Path(out)
    staging = prepare_output(out, overwrite)
    try:
        progress(f"loading {checkpoint_path}")
        checkpoint = load_model_checkpoint(checkpoint_path, progress)
        model = checkpoint.model
        if not isinstance(model, VisualTokenizer):
            raise OrstreamError(f"{checkpoint_path}: {checkpoint.model_name!r} is no tokenizer")
        height, width = model.input_size
        progress("exporting the encoder")
        used = export_graph(
            TokenEncoder(model),
            (torch.zeros(EXPORT_BATCH, 3, height, width),),
            staging / MODEL_FILE,
            ([IMAGE_INPUT], [TOKEN_INDICES]),
            exporter,
            OPSET,
            progress,
        )
        progress("exporting the detokenizer")
        export_graph(
            TokenDecoder(model),
            (torch.zeros(EXPORT_BATCH, model.quantizer.groups, *model.grid, dtype=torch.long),),
            staging / DETOKENIZER_FILE,
            ([TOKEN_INDICES], [RECONSTRUCTION]),
            cast(Exporter, used),  # the exporter that worked for the encoder
            OPSET,
            progress,
        )
        protos = {file: read_onnx(staging / file) for file in (MODEL_FILE, DETOKENIZER_FILE)}
        hashes = {file: sha256_file(staging / file) for file in protos}
        opset = onnx_opset(protos[MODEL_FILE])
        card = build_card(checkpoint, model, hashes, used, opset, max_batch)
        checks: tuple[tuple[Graph, onnx.ModelProto, str], ...] = (
            ("model", protos[MODEL_FILE], MODEL_FILE),
            ("detokenizer", protos[DETOKENIZER_FILE], DETOKENIZER_FILE),
        )
        for graph, proto, file in checks:
            inputs, outputs = onnx_signature(proto)
            check_graph_signature(card, inputs, outputs, staging / file, graph)
        package = ModelPackage(root=staging, card=card)
        encoder = OnnxRuntimeBackend()
        encoder.load(package)
        detokenizer = OnnxRuntimeBackend(graph="detokenizer")
        detokenizer.load(package)
        count = max(parity_frames, max_batch)
        images = ImagePreprocessor.from_card(card).batch(list(phantom_frames(count)))
        progress(f"encoder parity on {count} phantom frames, batch 1 and {max_batch}")
        index_parity = tuple(
            check_index_parity(model, encoder, images, "phantom", rows) for rows in (1, max_batch)
        )
        with torch.no_grad():
            phantom_indices = model.encode(torch.from_numpy(images)).numpy()
        spec = card.tokenizer
        assert spec is not None  # build_card wrote it
        image_parity = []
        for source, indices in (
            ("phantom", phantom_indices),
            ("random", random_indices(count, spec.groups, spec.codes, spec.grid)),
        ):
            progress(f"detokenizer parity on {count} {source} index grids, batch 1 and {max_batch}")
            image_parity += [
                check_image_parity(model, detokenizer, indices, source, rows)
                for rows in (1, max_batch)
            ]
        spec = spec.model_copy(update={"index_parity": index_parity, "parity": tuple(image_parity)})
        card = card.model_copy(update={"tokenizer": spec})
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return TokenizerExportResult(
        package=load_package(out),
        exporter=used,
        index_parity=index_parity,
        image_parity=tuple(image_parity),
    )
