"""Export a trained instrument classifier checkpoint to a package (``model.onnx`` + card).

The graph takes tip crops (:mod:`orstream.segmentation.instrument_crop`) as an RGB image input
``crop`` [B, 3, 64, 64], normalised as the card says (to -1..1, as training did), and gives
``instrument_logits`` [B, 19], a softmax over ``orstream.labels.INSTRUMENT_CODES`` (class 0: no
instrument). The batch is dynamic, like every exported package's. ONNX Runtime must reproduce
PyTorch within 1e-4 on phantom tip crops, in calls of one row and of ``max_batch`` rows, before
the package is written; the golden reference is written last.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

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
    _labels,
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
from orstream.package.card import (
    INSTRUMENT_CLASSIFICATION,
    MODEL_FILE,
    Clip,
    Hashes,
    ModelCard,
    OutputSpec,
    ParityResult,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file
from orstream.package.preprocess import ImagePreprocessor
from orstream.package.signatures import check_graph_signature
from orstream.segmentation.instrument_crop import CROP_SIZE, tip_crop

CROP_INPUT = "crop"
LOGITS_OUTPUT = "instrument_logits"
LIVE_RATE_HZ = 2.0
"""The card's rate: crops come from the live masks, at the segmenter's rate."""


CLASSIFIER_MODELS = frozenset({"instrument_classifier"})


@dataclass(frozen=True)
class ClassifierExportResult:
    """The written package and the parity checks it passed."""

    package: ModelPackage
    exporter: str
    parity: tuple[ParityResult, ...]

    def summary(self) -> list[str]:
        """What ``orstream export onnx`` prints: the package, the model and its parity."""
        lines: list[str] = []
        card = self.package.card
        lines.append(package_line(self.package))
        lines.append(
            f"model     {card.name} {card.version}  input {list(card.inputs[0].shape)}  "
            f"{card.outputs[0].shape[-1]} classes  opset {card.export.opset} ({self.exporter})"
        )
        for parity in self.parity:
            diffs = "  ".join(f"{name} {value:.2e}" for name, value in parity.max_abs_diff.items())
            lines.append(
                f"parity    ONNX Runtime vs PyTorch on "
                f"{parity.frames} {parity.source} crops, batch "
                f"{parity.batch}: {diffs} (tolerance {parity.tolerance:g})"
            )
        return lines


def build_card(
    checkpoint: LoadedCheckpoint, onnx_sha256: str, exporter: str, opset: int, max_batch: int
) -> ModelCard:
    """The card of the classifier package exported from ``checkpoint``."""
    labels = {"instruments": _labels()["instruments"]}
    return ModelCard(
        name=checkpoint.model_name,
        task=INSTRUMENT_CLASSIFICATION,
        version=checkpoint.sha256[:12],
        inputs=(image_input(CROP_INPUT, CROP_SIZE, CROP_SIZE, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),),
        outputs=(
            OutputSpec(
                name=LOGITS_OUTPUT,
                shape=(1, len(labels["instruments"])),
                dtype="float32",
                meaning="which instrument a tip crop shows (class 0: no instrument)",
                activation="softmax",
                labels="instruments",
            ),
        ),
        labels=labels,
        clip=Clip(length=1, stride=1, fps=LIVE_RATE_HZ),
        hashes=Hashes(checkpoint=checkpoint.sha256, model_onnx=onnx_sha256),
        training=training_record(checkpoint.record),
        export=export_info(exporter, opset, max_batch),
    )


def phantom_crops(count: int) -> np.ndarray:
    """Tip crops of the true instrument masks of a fixed phantom case: RGB uint8 [N, S, S, 3]."""
    from orstream.streams.phantom.difficulty import get_difficulty
    from orstream.streams.phantom.renderer import CaseRenderer

    renderer = CaseRenderer(0, 1, 60, get_difficulty("normal"), 640, 360, fps=1.0)
    crops: list[np.ndarray] = []
    for index in range(renderer.frame_count):
        frame = np.zeros((360, 640, 3), np.uint8)
        truth = np.zeros((360, 640), np.uint8)
        renderer.render(index, frame, truth)
        for code in np.unique(truth[truth > 0]):
            crop = tip_crop(frame, truth == code)
            if crop is not None:
                crops.append(crop)
        if len(crops) >= count:
            return np.stack(crops[:count])
    raise OrstreamError(f"the parity phantom case shows fewer than {count} instruments")


def check_classifier_parity(
    model: torch.nn.Module,
    backend: OnnxRuntimeBackend,
    card: ModelCard,
    crops: np.ndarray,
    rows: int,
    tolerance: float,
) -> ParityResult:
    """ONNX Runtime against PyTorch on ``crops`` in calls of ``rows`` rows.

    Raises:
        OrstreamError: a logit differs by more than ``tolerance``.
    """
    preprocess = ImagePreprocessor.from_card(card)
    worst = 0.0
    for start in range(0, len(crops), rows):
        tensor = preprocess.batch(list(crops[start : start + rows]))
        actual = backend.infer({CROP_INPUT: tensor})[LOGITS_OUTPUT]
        with torch.no_grad():
            expected = model(torch.from_numpy(tensor)).numpy()
        worst = max(worst, float(np.abs(actual - expected).max()))
    if worst > tolerance:
        raise OrstreamError(
            f"parity failed on phantom crops at batch {rows}: {LOGITS_OUTPUT} differs from "
            f"PyTorch by {worst:.3g} > {tolerance:g}"
        )
    return ParityResult(
        source="phantom",
        frames=len(crops),
        batch=rows,
        max_abs_diff={LOGITS_OUTPUT: worst},
        tolerance=tolerance,
    )


def export_classifier_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 16,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> ClassifierExportResult:
    """Export ``checkpoint_path`` to the package folder ``out`` (module docstring), built in a
    staging folder and moved there only when every check passed.

    Raises:
        OrstreamError: bad checkpoint, existing ``out`` without ``overwrite``, ``max_batch``
            below 2, an export or checker failure, or parity above tolerance.
    """
    check_max_batch(max_batch)
    out = Path(out)
    staging = prepare_output(out, overwrite)
    try:
        progress(f"loading {checkpoint_path}")
        checkpoint = load_model_checkpoint(checkpoint_path, progress)
        model = checkpoint.model.eval()
        model_path = staging / MODEL_FILE
        example = (torch.zeros(EXPORT_BATCH, 3, CROP_SIZE, CROP_SIZE),)
        used = export_graph(
            model, example, model_path, ([CROP_INPUT], [LOGITS_OUTPUT]), exporter, OPSET, progress
        )
        proto = read_onnx(model_path)
        card = build_card(checkpoint, sha256_file(model_path), used, onnx_opset(proto), max_batch)
        inputs, outputs = onnx_signature(proto)
        check_graph_signature(card, inputs, outputs, model_path)
        backend = OnnxRuntimeBackend()
        backend.load(ModelPackage(root=staging, card=card))
        crops = phantom_crops(max(parity_frames, max_batch))
        progress(f"parity on {len(crops)} phantom tip crops in calls of 1 and {max_batch} rows")
        parity = tuple(
            check_classifier_parity(model, backend, card, crops, rows, TOLERANCE)
            for rows in (1, max_batch)
        )
        card = card.model_copy(update={"export": card.export.model_copy(update={"parity": parity})})
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return ClassifierExportResult(package=load_package(out), exporter=used, parity=parity)
