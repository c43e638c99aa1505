"""An ONNX graph as a straight list of torch operations, fixed at load for static input shapes.

:class:`OnnxTorchProgram` reads a graph once and runs it on any torch device in one float
compute dtype (fp32, fp16 or bf16). At load every node whose inputs are all known then —
initializers, Constant nodes, the Shape of any tensor (input shapes are static), and whatever
is computed from those only — is evaluated once on the CPU in fp32 and kept as a constant. The
per-frame program is what is left: the nodes that read frame data, each with its constants on
the device in the compute dtype and its shape arguments as host numbers, so a call does no
host-side shape arithmetic on device values, never synchronises, and can be captured in a CUDA
graph. Shapes of per-frame tensors are propagated at load on torch's "meta" device (no data,
no compute), which is also where an operator that cannot run with the given shapes fails.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import torch
from google.protobuf.message import DecodeError
from onnx import TensorProto

from orstream.edge.backends.onnx_torch_ops import (
    FLOAT_TYPES,
    OPS,
    TORCH_DTYPES,
    Node,
    Op,
    OpContext,
    tensor_from_proto,
)
from orstream.errors import OrstreamError
from orstream.package.card import GraphShape

MIN_OPSET = 13
"""Oldest default-domain opset run: from 13 on, axes and split sizes may be inputs and Softmax
works along one axis, which is what the op table implements."""
ONNX_DOMAINS = frozenset({"", "ai.onnx"})
_META = torch.device("meta")
_FOLD = OpContext(device=torch.device("cpu"), dtype=torch.float32)
_LOAD_ERRORS = (RuntimeError, ValueError, TypeError, IndexError, KeyError, NotImplementedError)


def read_onnx(path: Path) -> onnx.ModelProto:
    """Parse an ONNX file (and its external data, if any).

    Raises:
        OrstreamError: the file is missing or not an ONNX model.
    """
    path = Path(path)
    if not path.is_file():
        raise OrstreamError(f"{path} not found")
    try:
        return onnx.load(str(path))
    except (DecodeError, OSError, ValueError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise OrstreamError(f"{path} is not a valid ONNX model ({message})") from None


def _dtype_name(elem_type: int) -> str:
    try:
        return str(onnx.helper.tensor_dtype_to_np_dtype(elem_type))
    except (KeyError, ValueError, TypeError):
        return TensorProto.DataType.Name(elem_type).lower()


def _shape(value: onnx.ValueInfoProto) -> GraphShape:
    dims = value.type.tensor_type.shape.dim
    return tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in dims)


def graph_signature(
    model: onnx.ModelProto,
) -> tuple[dict[str, tuple[GraphShape, str]], dict[str, tuple[GraphShape, str]]]:
    """The graph's inputs and outputs as the card check reads them: name -> (shape, dtype)."""
    graph = model.graph
    initializers = {t.name for t in graph.initializer}
    inputs = {
        v.name: (_shape(v), _dtype_name(v.type.tensor_type.elem_type))
        for v in graph.input
        if v.name not in initializers
    }
    outputs = {v.name: (_shape(v), _dtype_name(v.type.tensor_type.elem_type)) for v in graph.output}
    return inputs, outputs


def node_attributes(node: onnx.NodeProto) -> dict[str, Any]:
    """A node's attributes as the op table reads them: strings decoded, tensors as torch."""
    attrs: dict[str, Any] = {}
    for attribute in node.attribute:
        value = onnx.helper.get_attribute_value(attribute)
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, TensorProto):
            value = tensor_from_proto(value)
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode() for v in value]
        attrs[attribute.name] = value
    return attrs


def _fold_dtype(tensor: torch.Tensor) -> torch.Tensor:
    """Constants fold in fp32, whatever float type the graph stores them in."""
    return tensor.float() if tensor.is_floating_point() else tensor


@dataclass(frozen=True)
class _Step:
    """One per-frame node: value slots it reads (-1: absent) and writes (-1: unused)."""

    op: Op
    node: Node
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    release: tuple[int, ...]
    """Slots that no later step reads and that are not graph outputs."""


class OnnxTorchProgram:
    """One ONNX graph, ready to run per frame as torch operations.

    Args:
        model: the parsed graph (:func:`read_onnx`).
        input_shapes: the static shape of every graph input (a card's shapes).
        device: where the per-frame program runs.
        dtype: the float compute dtype (torch.float32, float16 or bfloat16).
        source: what to name in errors (the ONNX file).
        shared: device copies of the graph's initializers by name, kept across programs of
            the same graph on the same device in the same dtype (one per batch size): this
            program takes the copies it finds and adds the ones it makes, so the weights are
            on the device once.

    Raises:
        OrstreamError: the opset is older than :data:`MIN_OPSET`; the graph uses operators the
            op table lacks (all of them named in one line); an input shape is missing; a shape
            argument depends on frame data; or a node cannot run with these shapes.
    """

    def __init__(
        self,
        model: onnx.ModelProto,
        input_shapes: Mapping[str, Sequence[int]],
        device: torch.device | str,
        dtype: torch.dtype = torch.float32,
        source: str | Path = "ONNX graph",
        shared: dict[str, torch.Tensor] | None = None,
    ) -> None:
        if dtype not in (torch.float32, torch.float16, torch.bfloat16):
            raise OrstreamError(f"compute dtype {dtype} is not fp32, fp16 or bf16")
        self.device = torch.device(device)
        self.dtype = dtype
        self.source = str(source)
        self._ctx = OpContext(device=self.device, dtype=dtype)
        self._shared = shared
        graph = model.graph
        self._initializers = frozenset(t.name for t in graph.initializer)
        _check_opset(model, self.source)
        _check_operators(graph, self.source)
        self.input_names = tuple(v.name for v in graph.input if v.name not in self._initializers)
        self.output_names = tuple(v.name for v in graph.output)
        missing = [name for name in self.input_names if name not in input_shapes]
        if missing:
            raise OrstreamError(f"{self.source}: no static shape given for input(s) {missing}")
        declared = {v.name: v.type.tensor_type.elem_type for v in graph.input}
        unsupported = [n for n in self.input_names if declared[n] not in TORCH_DTYPES]
        if unsupported:
            raise OrstreamError(f"{self.source}: input(s) {unsupported} of an unsupported type")
        self.input_shapes = {name: tuple(input_shapes[name]) for name in self.input_names}
        self.input_dtypes = {
            name: dtype if declared[name] in FLOAT_TYPES else TORCH_DTYPES[declared[name]]
            for name in self.input_names
        }
        self._build(graph)

    # --- load --------------------------------------------------------------------------------

    def _build(self, graph: onnx.GraphProto) -> None:
        known: dict[str, torch.Tensor] = {
            t.name: _fold_dtype(tensor_from_proto(t)) for t in graph.initializer
        }
        meta: dict[str, torch.Tensor] = {
            name: torch.empty(self.input_shapes[name], dtype=_meta_dtype(dtype), device=_META)
            for name, dtype in self.input_dtypes.items()
        }
        planned: list[tuple[Op, Node, list[str], list[str]]] = []
        for proto in graph.node:
            op = OPS[proto.op_type]
            node = Node(proto.op_type, proto.name, node_attributes(proto), len(proto.output))
            names = list(proto.input)
            present = [name for name in names if name]
            if op.shape_only or all(name in known for name in present):
                # Every input is known now: run once here, keep the result as a constant.
                values = [None if not name else known.get(name, meta.get(name)) for name in names]
                results = self._run_at_load(op, _FOLD, values, node)
                known.update(_named(proto.output, results))
                continue
            for index in op.host_inputs:
                if index < len(names) and names[index] and names[index] not in known:
                    raise OrstreamError(
                        f"{self.source}: node {node.name!r} ({node.op_type}) takes input "
                        f"{index} ({names[index]!r}) from frame data; the torch backend needs "
                        "it fixed at load"
                    )
            values = [
                self._meta_value(name, index, op, known, meta) for index, name in enumerate(names)
            ]
            results = self._run_at_load(op, OpContext(_META, torch.float32), values, node)
            meta.update(_named(proto.output, results))
            planned.append((op, node, names, list(proto.output)))
        self._check_outputs(graph, known, meta)
        self._plan(planned, known)

    def _meta_value(
        self,
        name: str,
        index: int,
        op: Op,
        known: Mapping[str, torch.Tensor],
        meta: Mapping[str, torch.Tensor],
    ) -> torch.Tensor | None:
        if not name:
            return None
        if name in known:
            return known[name] if index in op.host_inputs else known[name].to(_META)
        return meta[name]

    def _run_at_load(
        self, op: Op, ctx: OpContext, values: list[torch.Tensor | None], node: Node
    ) -> tuple[torch.Tensor, ...]:
        try:
            result = op.run(ctx, values, node)
        except OrstreamError as error:
            raise OrstreamError(
                f"{self.source}: node {node.name!r} ({node.op_type}): {error}"
            ) from None
        except _LOAD_ERRORS as error:
            message = " ".join(str(error).split())
            raise OrstreamError(
                f"{self.source}: node {node.name!r} ({node.op_type}) cannot run: {message}"
            ) from None
        return (result,) if isinstance(result, torch.Tensor) else tuple(result)

    def _check_outputs(
        self,
        graph: onnx.GraphProto,
        known: Mapping[str, torch.Tensor],
        meta: Mapping[str, torch.Tensor],
    ) -> None:
        for value in graph.output:
            tensor = known.get(value.name, meta.get(value.name))
            if tensor is None:
                raise OrstreamError(f"{self.source}: graph output {value.name!r} is never made")
            declared = _shape(value)
            static = all(isinstance(d, int) for d in declared)
            if declared and static and tuple(tensor.shape) != declared:
                raise OrstreamError(
                    f"{self.source}: output {value.name!r} comes out "
                    f"{list(tensor.shape)}, the graph declares {list(declared)}"
                )

    def _plan(
        self,
        planned: list[tuple[Op, Node, list[str], list[str]]],
        known: Mapping[str, torch.Tensor],
    ) -> None:
        """Slots for per-frame values and the constants they read; when each slot is freed."""
        slots: dict[tuple[str, bool], int] = {}
        initial: list[torch.Tensor | None] = []

        def slot(name: str, host: bool = False) -> int:
            key = (name, host and name in known)
            if key not in slots:
                slots[key] = len(initial)
                value = None
                if name in known:
                    value = known[name] if host else self._device_constant(name, known[name])
                initial.append(value)
            return slots[key]

        self._inputs = tuple((name, slot(name)) for name in self.input_names)
        steps_io = []
        for op, node, names, outputs in planned:
            reads = tuple(
                slot(name, index in op.host_inputs) if name else -1
                for index, name in enumerate(names)
            )
            writes = tuple(slot(name) if name else -1 for name in outputs)
            steps_io.append((op, node, reads, writes))
        self._outputs = tuple((name, slot(name)) for name in self.output_names)
        kept = {index for _, index in self._outputs}
        constant_slots = {index for (name, _), index in slots.items() if name in known}
        last_read: dict[int, int] = {}
        for position, (_, _, reads, _) in enumerate(steps_io):
            for index in reads:
                if index >= 0:
                    last_read[index] = position
        released: dict[int, list[int]] = {}
        for index, position in last_read.items():
            if index not in kept and index not in constant_slots:
                released.setdefault(position, []).append(index)
        self._steps = tuple(
            _Step(op, node, reads, writes, tuple(released.get(position, ())))
            for position, (op, node, reads, writes) in enumerate(steps_io)
        )
        self._initial = tuple(initial)

    def _device_constant(self, name: str, constant: torch.Tensor) -> torch.Tensor:
        if self._shared is None or name not in self._initializers:
            return self._on_device(constant)
        if name not in self._shared:
            self._shared[name] = self._on_device(constant)
        return self._shared[name]

    def _on_device(self, constant: torch.Tensor) -> torch.Tensor:
        dtype = self.dtype if constant.is_floating_point() else constant.dtype
        return constant.to(device=self.device, dtype=dtype).contiguous()

    # --- per frame ---------------------------------------------------------------------------

    @property
    def op_counts(self) -> Counter[str]:
        """Operator types of the per-frame program (what is left after folding)."""
        return Counter(step.node.op_type for step in self._steps)

    def __call__(self, inputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run once: every graph input by name -> every graph output by name.

        Float inputs are converted to the compute dtype and moved to the program's device;
        outputs are on that device, floats in the compute dtype (they may be views of inputs
        or constants when the graph passes those through).

        Raises:
            OrstreamError: an input is missing or has a shape other than its static shape.
        """
        values = list(self._initial)
        for name, index in self._inputs:
            value = inputs.get(name)
            if value is None:
                raise OrstreamError(f"{self.source}: input {name!r} not given")
            if tuple(value.shape) != self.input_shapes[name]:
                raise OrstreamError(
                    f"{self.source}: input {name!r} has shape {list(value.shape)}, the program "
                    f"was loaded for {list(self.input_shapes[name])}"
                )
            values[index] = value.to(device=self.device, dtype=self.input_dtypes[name])
        ctx = self._ctx
        for step in self._steps:
            result = step.op.run(
                ctx, [values[i] if i >= 0 else None for i in step.inputs], step.node
            )
            if isinstance(result, torch.Tensor):
                if step.outputs[0] >= 0:
                    values[step.outputs[0]] = result
            else:
                for index, value in zip(step.outputs, result, strict=False):
                    if index >= 0:
                        values[index] = value
            for index in step.release:
                values[index] = None
        return {name: values[index] for name, index in self._outputs}  # type: ignore[misc]


def _meta_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float32 if dtype.is_floating_point else dtype


def _named(names: Sequence[str], results: tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    missing = [name for name in names[len(results) :] if name]
    if missing:
        raise OrstreamError(f"output(s) {missing} are not produced")
    return {name: value for name, value in zip(names, results, strict=False) if name}


def _check_opset(model: onnx.ModelProto, source: str) -> None:
    versions = [entry.version for entry in model.opset_import if entry.domain in ONNX_DOMAINS]
    if versions and versions[0] < MIN_OPSET:
        raise OrstreamError(
            f"{source}: ONNX opset {versions[0]}; the torch backend runs opset {MIN_OPSET} "
            "and later (re-export the model with a newer opset)"
        )


def _check_operators(graph: onnx.GraphProto, source: str) -> None:
    unsupported = sorted(
        {
            node.op_type if node.domain in ONNX_DOMAINS else f"{node.domain}:{node.op_type}"
            for node in graph.node
            if node.domain not in ONNX_DOMAINS or node.op_type not in OPS
        }
    )
    if unsupported:
        raise OrstreamError(
            f"{source}: the torch backend does not support ONNX operator(s) "
            f"{', '.join(unsupported)}"
        )
