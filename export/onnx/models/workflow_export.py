"""Export a trained workflow checkpoint to a model package (``model.onnx`` + ``card.json``).

The graph is the model's ``streaming_step``: one frame and the temporal state in, step and
instrument logits and the new state out. Inputs are ``image`` [B, 3, H, W] and
``state_in.<name>``; outputs ``step_logits`` [B, 15], ``instrument_logits`` [B, 19] and
``state_out.<name>``, one state per TCN layer in the model's order. The batch B is dynamic
(axis 0 of every tensor, ``export.batch: "dynamic"`` in the card, whose shapes are those of
B = 1): the edge runs the frames of several streams that fall due together as one call, one
row and one state per stream.

Exporters: the TorchScript-based ``torch.onnx.export(dynamo=False)`` is tried first, since it is
fast and still works on torch 2.6..2.14 (where it warns that it is deprecated); if it fails or
is gone, the ``torch.export``-based exporter (``dynamo=True``, needs onnxscript) runs instead.
Either way the graph is traced at batch :data:`EXPORT_BATCH`, so that nothing specialises to
one row, the file is checked with ``onnx.checker`` (full_check), its tensors are compared with
the card, and ONNX Runtime must reproduce PyTorch frame by frame with the state carried
through, within 1e-4 in fp32, at batch 1 and in calls of ``max_batch`` rows (each row its own
stream), before the package is written. The package's golden reference
(:mod:`orstream.export.onnx.golden_reference`) is written last.
"""

from __future__ import annotations

import math
import pickle
import shutil
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
import torch
from google.protobuf.message import DecodeError
from torch import Tensor, nn

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import DEFAULT_MAX_BATCH
from orstream.export.onnx.card_parts import export_info, image_input, package_line
from orstream.export.onnx.golden_reference import write_reference
from orstream.export.onnx.parity import StreamingModel, check_parity, phantom_frames, random_frames
from orstream.labels import (
    INSTRUMENT_CODES,
    STEP_CODES,
    instrument_name,
    step_name,
)
from orstream.package.card import (
    BATCH_AXIS_NAME,
    CARD_FILE,
    MODEL_FILE,
    Clip,
    GraphShape,
    Hashes,
    Label,
    ModelCard,
    OutputSpec,
    ParityResult,
    StateSpec,
    StepSmoothing,
    Training,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file, write_card
from orstream.package.signatures import check_graph_signature
from orstream.training.registry import create_model

OPSET = 18
EXPORT_BATCH = 2
"""Rows of the example a graph is traced with: more than one, so that no shape specialises to a
single row, while axis 0 stays dynamic."""
TOLERANCE = 1e-4
INSTRUMENT_THRESHOLD = 0.5
IMAGE_INPUT = "image"
STEP_OUTPUT = "step_logits"
INSTRUMENT_OUTPUT = "instrument_logits"
STATE_INPUT_PREFIX = "state_in."
STATE_OUTPUT_PREFIX = "state_out."

Exporter = Literal["auto", "torchscript", "dynamo"]
Progress = Callable[[str], None]


def progress_to_stderr(message: str) -> None:
    """The default progress sink: one line on stderr."""
    print(f"[export] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class LoadedCheckpoint:
    """A checkpoint's model rebuilt from the registry, in eval mode, and what it recorded."""

    path: Path
    sha256: str
    model_name: str
    model_kwargs: dict[str, Any]
    hyper_parameters: dict[str, Any]
    model: nn.Module
    record: dict[str, Any]
    """``checkpoint["orstream"]``: training data and metrics ({} when absent)."""

    def streaming(self) -> StreamingModel:
        """The model as a streaming (workflow) model; :func:`load_checkpoint` checked it is."""
        assert isinstance(self.model, StreamingModel)
        return self.model


@dataclass(frozen=True)
class ExportResult:
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
            f"{len(card.state)} state tensors  opset {card.export.opset} ({self.exporter})"
        )
        lines.append(
            "parity    ONNX Runtime vs PyTorch, max abs diff per output "
            f"(tolerance {self.parity[0].tolerance:g}):"
        )
        state_outputs = {state.output for state in card.state}
        for parity in self.parity:
            heads = "  ".join(
                f"{name} {value:.2e}"
                for name, value in parity.max_abs_diff.items()
                if name not in state_outputs
            )
            state = max((parity.max_abs_diff[name] for name in state_outputs), default=0.0)
            lines.append(
                f"  {parity.source:<8} {parity.frames:>3} frames  batch {parity.batch:<3} {heads}  "
                f"state {state:.2e}"
            )
        return lines


def torch_load(path: Path, progress: Progress) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        # Not plain tensors and containers: either not a checkpoint at all or one holding other
        # Python objects (a checkpoint is code; orstream loads it in full for its own training
        # runs' checkpoints, which the user chose to export).
        pass
    except (RuntimeError, EOFError, OSError, ValueError) as error:
        raise OrstreamError(f"{path} is not a PyTorch checkpoint ({one_line(error)})") from None
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:  # unpickling arbitrary bytes can raise almost anything
        raise OrstreamError(f"{path} is not a PyTorch checkpoint ({one_line(error)})") from None
    progress("checkpoint holds Python objects besides tensors; loaded in full")
    return checkpoint


def one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def read_checkpoint(path: Path, progress: Progress = progress_to_stderr) -> dict[str, Any]:
    """The raw dictionary of a checkpoint file ({} for a file holding something else).

    Raises:
        OrstreamError: the file is missing or not a PyTorch checkpoint.
    """
    if not path.exists():
        raise OrstreamError(f"checkpoint {path} not found")
    if not path.is_file():
        raise OrstreamError(f"checkpoint {path} is not a file")
    checkpoint = torch_load(path, progress)
    return checkpoint if isinstance(checkpoint, dict) else {}


def load_model_checkpoint(path: Path, progress: Progress = progress_to_stderr) -> LoadedCheckpoint:
    """Rebuild the registered model a Lightning checkpoint of ``orstream train`` holds.

    Raises:
        OrstreamError: the file is missing, not a PyTorch checkpoint, not an orstream model
            checkpoint, names an unknown model, or its weights do not fit the model.
    """
    path = Path(path)
    checkpoint = read_checkpoint(path, progress)
    hyper = checkpoint.get("hyper_parameters")
    if (
        not isinstance(hyper, Mapping)
        or not isinstance(hyper.get("model_name"), str)
        or not isinstance(checkpoint.get("state_dict"), Mapping)
    ):
        raise OrstreamError(
            f"{path} is not an orstream model checkpoint (needs hyper_parameters['model_name'] "
            "and a state_dict)"
        )
    model_name = hyper["model_name"]
    model_kwargs = dict(hyper.get("model_kwargs") or {})
    try:
        model = create_model(model_name, **model_kwargs)
    except OrstreamError as error:
        raise OrstreamError(f"{path}: {error}") from None
    except (TypeError, ValueError) as error:
        raise OrstreamError(
            f"{path}: cannot build model {model_name!r} from its model_kwargs ({one_line(error)})"
        ) from None
    prefix = "model."
    weights = {
        key[len(prefix) :]: value
        for key, value in checkpoint["state_dict"].items()
        if key.startswith(prefix)
    }
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        raise OrstreamError(
            f"{path}: weights do not fit model {model_name!r} ({one_line(error)})"
        ) from None
    model.eval()
    record = checkpoint.get("orstream")
    return LoadedCheckpoint(
        path=path,
        sha256=sha256_file(path),
        model_name=model_name,
        model_kwargs=model_kwargs,
        hyper_parameters=dict(hyper),
        model=model,
        record=dict(record) if isinstance(record, Mapping) else {},
    )


def load_checkpoint(path: Path, progress: Progress = progress_to_stderr) -> LoadedCheckpoint:
    """Rebuild a streaming (workflow) model from its checkpoint, for :func:`export_package`.

    Raises:
        OrstreamError: as :func:`load_model_checkpoint`, or the model has no streaming
            interface to export.
    """
    loaded = load_model_checkpoint(path, progress)
    if not isinstance(loaded.model, StreamingModel):
        raise OrstreamError(
            f"{loaded.path}: model {loaded.model_name!r} has no streaming_step/state interface "
            "to export"
        )
    return loaded


class StreamingStepGraph(nn.Module):
    """The exported function: ``model.streaming_step(image, *state)``."""

    def __init__(self, model: StreamingModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, image: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        return self.model.streaming_step(image, *state)


def graph_names(model: StreamingModel) -> tuple[list[str], list[str]]:
    """The graph's input and output names for ``model``, in argument order."""
    states = list(model.state_shapes())
    inputs = [IMAGE_INPUT] + [STATE_INPUT_PREFIX + name for name in states]
    outputs = [STEP_OUTPUT, INSTRUMENT_OUTPUT] + [STATE_OUTPUT_PREFIX + name for name in states]
    return inputs, outputs


def batch_axes(example: Any, batch: Any) -> Any:
    """The dynamo exporter's ``dynamic_shapes`` for ``example``, arranged like it (tensors in
    tuples): axis 0 of every tensor is the one dimension ``batch``."""
    if isinstance(example, Tensor):
        return {0: batch}
    return tuple(batch_axes(item, batch) for item in example)


def export_graph(
    module: nn.Module,
    example: tuple[Any, ...],
    path: Path,
    names: tuple[Sequence[str], Sequence[str]],
    exporter: Exporter = "auto",
    opset: int = OPSET,
    progress: Progress = progress_to_stderr,
    more_axes: Mapping[str, Mapping[int, str]] | None = None,
) -> str:
    """Write ``module`` traced on ``example`` to ``path`` with a dynamic batch (axis 0 of every
    input and output named :data:`BATCH_AXIS_NAME`); returns the exporter used.

    Args:
        example: ``module.forward``'s arguments, :data:`EXPORT_BATCH` rows each; a tuple in
            it stands for a ``*args`` parameter.
        names: the graph's input and output names.
        more_axes: symbolic axes besides the batch, by tensor name: axis -> its name (the
            slide encoder's tile count).

    Raises:
        OrstreamError: every exporter asked for failed.
    """
    flat = [item for arg in example for item in (arg if isinstance(arg, tuple) else (arg,))]
    input_names, output_names = list(names[0]), list(names[1])
    axes = {
        n: {0: BATCH_AXIS_NAME, **(more_axes or {}).get(n, {})} for n in input_names + output_names
    }
    failures = []
    for dynamo in {"auto": (False, True), "torchscript": (False,), "dynamo": (True,)}[exporter]:
        name = "dynamo" if dynamo else "torchscript"
        # each exporter's own way to say the batch is dynamic; weights stay inside the file
        extra: dict[str, Any] = (
            {"external_data": False, "dynamic_shapes": _dynamo_shapes(example, input_names, axes)}
            if dynamo
            else {"dynamic_axes": axes}
        )
        try:
            with warnings.catch_warnings(), torch.no_grad():
                # The TorchScript exporter warns on every call that it is deprecated, and the
                # tracer on the model's shape checks, which are constants at static shapes.
                warnings.simplefilter("ignore", category=DeprecationWarning)
                warnings.simplefilter("ignore", category=FutureWarning)
                warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
                torch.onnx.export(
                    module.eval(),
                    tuple(flat),
                    str(path),
                    input_names=input_names,
                    output_names=output_names,
                    opset_version=opset,
                    dynamo=dynamo,
                    verbose=False,
                    **extra,
                )
        except Exception as error:  # exporter failures come in every type
            failures.append(f"{name}: {one_line(error)}")
            progress(f"{name} exporter failed: {failures[-1]}")
            continue
        with torch.no_grad():
            results = module(*flat)
        results = results if isinstance(results, tuple) else (results,)
        _declare_output_shapes(path, results, [axes[n] for n in output_names])
        return name
    raise OrstreamError(f"ONNX export of {path.name} failed (" + "; ".join(failures) + ")")


def _dynamo_shapes(
    example: tuple[Any, ...], input_names: Sequence[str], axes: Mapping[str, Mapping[int, str]]
) -> Any:
    """The dynamo exporter's ``dynamic_shapes``: the batch on every tensor, and the named axes
    of each plain tensor argument (one ``Dim`` per name, shared where names repeat)."""
    if all(len(axes[n]) == 1 for n in input_names):
        return batch_axes(example, torch.export.Dim(BATCH_AXIS_NAME))
    if any(isinstance(arg, tuple) for arg in example):
        raise OrstreamError("named axes besides the batch need plain tensor arguments")
    dims = {label: torch.export.Dim(label) for n in input_names for label in axes[n].values()}
    return tuple({axis: dims[label] for axis, label in axes[n].items()} for n in input_names)


def _declare_output_shapes(
    path: Path, results: tuple[Tensor, ...], axes: Sequence[Mapping[int, str]]
) -> None:
    """Declare every output of the graph at ``path`` [batch, *the traced output's other dims],
    each axis of ``axes`` by its name: an exporter leaves a dim it cannot follow symbolically (a
    state window sliced by its own length) as a name of its own, which no card can match."""
    model = onnx.load(str(path))
    for value, result, named in zip(model.graph.output, results, axes, strict=True):
        dims = value.type.tensor_type.shape
        dims.ClearField("dim")
        for axis, size in enumerate(result.shape):
            if axis in named:
                dims.dim.add().dim_param = named[axis]
            else:
                dims.dim.add().dim_value = int(size)
    onnx.save(model, str(path))


def export_onnx(
    model: StreamingModel,
    path: Path,
    exporter: Exporter = "auto",
    opset: int = OPSET,
    progress: Progress = progress_to_stderr,
) -> str:
    """Write ``model.streaming_step`` with a dynamic batch to ``path``; returns the exporter.

    Raises:
        OrstreamError: every exporter asked for failed.
    """
    height, width = model.input_size
    example = (
        torch.zeros(EXPORT_BATCH, 3, height, width),
        tuple(model.initial_state(EXPORT_BATCH)),
    )
    graph = StreamingStepGraph(model)
    return export_graph(graph, example, path, graph_names(model), exporter, opset, progress)


def onnx_signature(
    model: onnx.ModelProto,
) -> tuple[dict[str, tuple[GraphShape, str]], dict[str, tuple[GraphShape, str]]]:
    """The graph's inputs and outputs as name -> (shape, numpy dtype name)."""
    initializers = {tensor.name for tensor in model.graph.initializer}

    def describe(value: onnx.ValueInfoProto) -> tuple[GraphShape, str]:
        tensor = value.type.tensor_type
        shape = tuple(
            dim.dim_value if dim.HasField("dim_value") else (dim.dim_param or None)
            for dim in tensor.shape.dim
        )
        return shape, onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name

    inputs = {v.name: describe(v) for v in model.graph.input if v.name not in initializers}
    outputs = {v.name: describe(v) for v in model.graph.output}
    return inputs, outputs


def _labels() -> dict[str, tuple[Label, ...]]:
    return {
        "steps": tuple(
            Label(index=index, code=code, name=step_name(code))
            for index, code in enumerate(STEP_CODES)
        ),
        "instruments": tuple(
            Label(index=index, code=code, name=instrument_name(code))
            for index, code in enumerate(INSTRUMENT_CODES)
        ),
    }


def training_record(record: Mapping[str, Any]) -> Training:
    data = record.get("data")
    data = dict(data) if isinstance(data, Mapping) else {}
    cases = {
        split: [int(video) for video in data[key]]
        for split, key in (("train", "train_videos"), ("val", "val_videos"))
        if isinstance(data.get(key), list | tuple)
    }
    recorded = record.get("metrics")
    metrics = {}
    for name, value in recorded.items() if isinstance(recorded, Mapping) else ():
        if isinstance(value, Tensor) and value.numel() == 1:
            value = value.item()
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            metrics[str(name)] = float(value)
    return Training(data=_json_safe(data), cases=cases, metrics=metrics)


def _json_safe(value: Any) -> Any:
    """Plain JSON values from what a checkpoint recorded (paths, tuples, tensors included)."""
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, Tensor | np.ndarray | np.generic):
        return _json_safe(value.tolist())
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def build_card(
    checkpoint: LoadedCheckpoint,
    onnx_sha256: str,
    exporter: str,
    opset: int,
    max_batch: int = DEFAULT_MAX_BATCH,
    parity: tuple[ParityResult, ...] = (),
) -> ModelCard:
    """The card of the package exported from ``checkpoint`` (a dynamic batch, checked at
    ``max_batch`` rows)."""
    model = checkpoint.streaming()
    height, width = model.input_size
    labels = _labels()
    return ModelCard(
        name=checkpoint.model_name,
        task="workflow_recognition",
        version=checkpoint.sha256[:12],
        inputs=(image_input(IMAGE_INPUT, height, width, model.mean, model.std),),
        outputs=(
            OutputSpec(
                name=STEP_OUTPUT,
                shape=(1, len(labels["steps"])),
                dtype="float32",
                meaning="PitVis step logits of the current frame (online: frames up to now)",
                activation="softmax",
                labels="steps",
            ),
            OutputSpec(
                name=INSTRUMENT_OUTPUT,
                shape=(1, len(labels["instruments"])),
                dtype="float32",
                meaning="instrument presence logits of the current frame, one per class "
                "(multi-label; class 0 = inside, no instrument visible)",
                activation="sigmoid",
                labels="instruments",
            ),
        ),
        labels=labels,
        clip=Clip(length=1, stride=1, fps=float(model.sample_fps)),
        state=tuple(
            StateSpec(
                name=name,
                input=STATE_INPUT_PREFIX + name,
                output=STATE_OUTPUT_PREFIX + name,
                shape=(1, *shape),
                dtype="float32",
            )
            for name, shape in model.state_shapes().items()
        ),
        thresholds={INSTRUMENT_OUTPUT: INSTRUMENT_THRESHOLD},
        step_smoothing=StepSmoothing(
            min_dwell=int(checkpoint.hyper_parameters.get("min_dwell", StepSmoothing().min_dwell))
        ),
        hashes=Hashes(checkpoint=checkpoint.sha256, model_onnx=onnx_sha256),
        training=training_record(checkpoint.record),
        export=export_info(exporter, opset, max_batch, parity),
    )


def check_max_batch(max_batch: int) -> None:
    """Refuse a ``--max-batch`` that checks no batch: a dynamic batch is proved at 2 or more."""
    if max_batch < 2:
        raise OrstreamError(f"--max-batch must be at least 2, not {max_batch}")


def prepare_output(out: Path, overwrite: bool) -> Path:
    """A fresh staging folder beside ``out``; refuses to replace what is not a package."""
    if out.exists() or out.is_symlink():
        if not overwrite:
            raise OrstreamError(f"{out} already exists (pass --overwrite to replace it)")
        if not out.is_dir() or (any(out.iterdir()) and not (out / CARD_FILE).is_file()):
            raise OrstreamError(f"{out} exists and is not a model package; not replacing it")
    if not out.parent.is_dir():
        raise OrstreamError(f"cannot write {out}: folder {out.parent} does not exist")
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    return staging


def finish_package(staging: Path, out: Path, card: ModelCard, progress: Progress) -> None:
    """Write the card and the golden reference into the checked ``staging`` folder, then put
    it in place of ``out`` (replacing what :func:`prepare_output` allowed to replace)."""
    write_card(staging, card)
    progress("writing the golden reference (ONNX Runtime CPU on a phantom frame)")
    write_reference(ModelPackage(root=staging, card=card))
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)


def parity_sources(model: StreamingModel, count: int) -> list[tuple[str, np.ndarray]]:
    """Frames to check parity on: (source, RGB uint8 frames [count, H, W, 3]) pairs.

    Uniform noise at the model's input size spans every input value; phantom frames are what
    the model was trained on and pass through the card's resize.
    """
    height, width = model.input_size
    return [
        ("random", random_frames(count, height, width)),
        ("phantom", phantom_frames(count)),
    ]


def export_package(
    checkpoint_path: Path,
    out: Path,
    *,
    parity_frames: int = 16,
    overwrite: bool = False,
    exporter: Exporter = "auto",
    opset: int = OPSET,
    tolerance: float = TOLERANCE,
    max_batch: int = DEFAULT_MAX_BATCH,
    progress: Progress = progress_to_stderr,
) -> ExportResult:
    """Export ``checkpoint_path`` to the package folder ``out`` (see the module docstring).

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
        checkpoint = load_checkpoint(checkpoint_path, progress)
        progress(
            f"model {checkpoint.model_name} {checkpoint.model_kwargs}; exporting (opset {opset})"
        )
        model_path = staging / MODEL_FILE
        used = export_onnx(checkpoint.streaming(), model_path, exporter, opset, progress)
        progress(f"exported with the {used} exporter; running onnx.checker (full_check)")
        proto = read_onnx(model_path)
        card = build_card(checkpoint, sha256_file(model_path), used, onnx_opset(proto), max_batch)
        check_graph_signature(card, *onnx_signature(proto), model_path)
        backend = OnnxRuntimeBackend()
        backend.load(ModelPackage(root=staging, card=card))
        parity = []
        for source, frames in parity_sources(checkpoint.streaming(), parity_frames):
            for rows in (1, max_batch):
                progress(
                    f"parity on {len(frames)} {source} frames in calls of {rows} row(s), state "
                    "carried frame to frame"
                )
                result = check_parity(
                    checkpoint.streaming(), backend, card, frames, source, tolerance, rows
                )
                parity.append(result)
                worst = max(result.max_abs_diff, key=result.max_abs_diff.__getitem__)
                if result.max_abs_diff[worst] > tolerance:
                    raise OrstreamError(
                        f"parity failed on {source} frames at batch {rows}: {worst} differs "
                        f"from PyTorch by {result.max_abs_diff[worst]:.3g} > {tolerance:g}"
                    )
        export = card.export.model_copy(update={"parity": tuple(parity)})
        card = card.model_copy(update={"export": export})
        finish_package(staging, out, card, progress)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    progress(f"wrote {out}")
    return ExportResult(package=load_package(out), exporter=used, parity=tuple(parity))


def read_onnx(path: Path) -> onnx.ModelProto:
    """Load an ONNX file and run ``onnx.checker`` on it with full_check.

    Raises:
        OrstreamError: the file does not parse as ONNX or the checker rejects it.
    """
    try:
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
        raise OrstreamError(f"{path} fails onnx.checker: {one_line(error)}") from None
    except DecodeError as error:
        raise OrstreamError(f"{path} is not a valid ONNX model ({one_line(error)})") from None
    return proto


def onnx_opset(proto: onnx.ModelProto) -> int:
    """The default-domain opset a graph imports."""
    return next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx"))


def check_onnx_file(path: Path, card: ModelCard) -> None:
    """``onnx.checker`` with full_check, then the graph's tensors against the card.

    Raises:
        OrstreamError: the file is not valid ONNX, the checker rejects it, or its tensors
            differ from the card's.
    """
    check_graph_signature(card, *onnx_signature(read_onnx(path)), path)
