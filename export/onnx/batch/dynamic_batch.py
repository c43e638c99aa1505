"""Rewrite a batch-1 ONNX graph so that axis 0 of every input and output is a symbolic batch.

Marking the inputs dynamic is not enough for a graph traced at batch 1: it bakes the batch into
constants. A Reshape to ``[1, 1, -1]`` would fold every row into one, a class token expanded
to ``[1, 4, 128]`` cannot be concatenated with the tokens of several rows, a Resize to sizes
``[1, C, H, W]`` drops every row but the first.

The graph is walked node by node, three times in step, at batch 1, 2 and 3, with the op table
of the torch backend's ONNX interpreter (:mod:`orstream.edge.backends.onnx_torch_ops`): values
that follow from constants and shapes are folded on the CPU, per-frame tensors live on torch's
``meta`` device (shapes, no data). A tensor's batch axis is the one axis whose size is 1, 2
and 3 in the three walks. Along the way:

- a Reshape of a batched tensor keeps its batch-1 output shape with the batch on an axis that
  splits the data where the input's batch axis did (as many elements before it and after it);
  when the shape it is given does not do that, it gets that batch-1 shape with -1 on the batch
  axis;
- a Concat of batched and unbatched tensors gets the unbatched ones expanded to the batch
  (``Expand`` to the graph's batch size, read from the shape of its first input);
- a Resize to constant sizes gets the graph's batch size as its batch entry.

What would mix rows is refused in one line naming the node: an output that loses the batch
axis or folds it into another one (a reduction, slice, gather, split or reshape across the
batch), Softmax or LayerNormalization over the batch, a convolution, pooling, normalisation or
Resize without the batch on axis 0, a Gather or GatherElements along the batch, a Slice
stepping along it, an Einsum that sums over it. Every graph output must carry the batch on
axis 0. The result still has to be proved on ONNX Runtime
(:mod:`orstream.export.onnx.batch.batch_check`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

from orstream.edge.backends.onnx_torch_ops import (
    FLOAT_TYPES,
    OPS,
    TORCH_DTYPES,
    Node,
    OpContext,
    tensor_from_proto,
)
from orstream.edge.backends.onnx_torch_program import MIN_OPSET, ONNX_DOMAINS, node_attributes
from orstream.errors import OrstreamError
from orstream.package.card import BATCH_AXIS_NAME

PROBE_BATCHES = (1, 2, 3)
"""The batch sizes the graph is walked at: the batch axis is the one with these sizes."""
NAME_PREFIX = "batch/"
"""Prefix of the nodes and constants the rewrite adds."""
AXIS_ZERO_OPS = frozenset(
    {
        "Conv",
        "ConvTranspose",
        "AveragePool",
        "MaxPool",
        "GlobalAveragePool",
        "GlobalMaxPool",
        "BatchNormalization",
        "InstanceNormalization",
        "Resize",
    }
)
"""Operators that read axis 0 of their first input as the batch (N of NCHW)."""
_META = torch.device("meta")
_FOLD = OpContext(device=torch.device("cpu"), dtype=torch.float32)
_ON_META = OpContext(device=_META, dtype=torch.float32)
_RUN_ERRORS = (
    OrstreamError,
    RuntimeError,
    ValueError,
    TypeError,
    IndexError,
    KeyError,
    NotImplementedError,
)


@dataclass(frozen=True)
class BatchConversion:
    """A graph rewritten for a dynamic batch.

    Attributes:
        model: the graph, axis 0 of every input and output named :data:`BATCH_AXIS_NAME`.
        changes: one line per node rewritten, e.g. ``Reshape '/Reshape_1': shape [1, 1, -1]
            -> [-1, 1, 1024]``.
    """

    model: onnx.ModelProto
    changes: tuple[str, ...]


class _Refused(Exception):
    """A node that cannot take a batch, and why (the converter names the node)."""


class _Walk:
    """The graph at one batch size: folded values (CPU) and per-frame tensors (meta) by name."""

    def __init__(
        self,
        batch: int,
        constants: Mapping[str, torch.Tensor],
        inputs: Mapping[str, tuple[tuple[int, ...], torch.dtype]],
    ) -> None:
        self.batch = batch
        self.known: dict[str, torch.Tensor] = dict(constants)
        self.meta: dict[str, torch.Tensor] = {
            name: torch.empty((batch, *shape[1:]), dtype=dtype, device=_META)
            for name, (shape, dtype) in inputs.items()
        }

    def value(self, name: str) -> torch.Tensor:
        return self.known[name] if name in self.known else self.meta[name]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.value(name).shape)

    def run(self, proto: onnx.NodeProto, node: Node) -> None:
        """Run one node, as the torch backend does at load: folded when every input is known."""
        op = OPS[proto.op_type]
        names = list(proto.input)
        if op.shape_only or all(name in self.known for name in names if name):
            values = [self.value(name) if name else None for name in names]
            self._store(proto.output, op.run(_FOLD, values, node), self.known)
            return
        for index in op.host_inputs:
            if index < len(names) and names[index] and names[index] not in self.known:
                raise _Refused(f"input {index} ({names[index]!r}) comes from frame data")
        values = []
        for index, name in enumerate(names):
            if not name:
                values.append(None)
            elif name in self.known:
                known = self.known[name]
                values.append(known if index in op.host_inputs else known.to(_META))
            else:
                values.append(self.meta[name])
        self._store(proto.output, op.run(_ON_META, values, node), self.meta)

    @staticmethod
    def _store(
        names: Sequence[str],
        result: torch.Tensor | tuple[torch.Tensor, ...],
        into: dict[str, torch.Tensor],
    ) -> None:
        results = (result,) if isinstance(result, torch.Tensor) else tuple(result)
        for name, value in zip(names, results, strict=False):
            if name:
                into[name] = value


def _fold_dtype(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor


def _axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


class _Converter:
    """One conversion: the walks, the rewritten node list and what changed."""

    def __init__(self, model: onnx.ModelProto, source: str) -> None:
        self.source = source
        self.model = onnx.ModelProto()
        self.model.CopyFrom(model)
        graph = self.model.graph
        versions = [e.version for e in self.model.opset_import if e.domain in ONNX_DOMAINS]
        if versions and versions[0] < MIN_OPSET:
            raise OrstreamError(
                f"{source}: ONNX opset {versions[0]}; a dynamic batch needs opset {MIN_OPSET} or "
                "later"
            )
        unsupported = sorted({n.op_type for n in graph.node if n.op_type not in OPS})
        unsupported += sorted({n.domain for n in graph.node if n.domain not in ONNX_DOMAINS})
        if unsupported:
            raise OrstreamError(
                f"{source}: cannot follow the batch through operator(s) {', '.join(unsupported)}"
            )
        initializers = {t.name for t in graph.initializer}
        self.inputs = [v for v in graph.input if v.name not in initializers]
        specs = {v.name: self._input_spec(v) for v in self.inputs}
        constants = {t.name: _fold_dtype(tensor_from_proto(t)) for t in graph.initializer}
        self.walks = [_Walk(batch, constants, specs) for batch in PROBE_BATCHES]
        self.axes: dict[str, int] = {name: 0 for name in specs}
        """The batch axis of every batched tensor so far."""
        self.nodes: list[onnx.NodeProto] = []
        self.added: list[TensorProto] = []
        self.changes: list[str] = []
        self._names = {name for n in graph.node for name in (n.name, *n.input, *n.output)}
        self._names |= {v.name for v in graph.input} | initializers
        self._batch_size: str | None = None

    def _input_spec(self, value: onnx.ValueInfoProto) -> tuple[tuple[int, ...], torch.dtype]:
        dims = value.type.tensor_type.shape.dim
        shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
        if not shape or shape[0] != 1 or min(shape) < 1:
            shown = [d if d >= 0 else "?" for d in shape]
            raise OrstreamError(
                f"{self.source}: input {value.name!r} has shape {shown}; a batch-1 graph with "
                "static shapes has 1 on axis 0"
            )
        elem_type = value.type.tensor_type.elem_type
        if elem_type not in TORCH_DTYPES:
            raise OrstreamError(f"{self.source}: input {value.name!r} has an unsupported type")
        dtype = torch.float32 if elem_type in FLOAT_TYPES else TORCH_DTYPES[elem_type]
        return shape, dtype

    # --- the walk ---------------------------------------------------------------------------

    def convert(self) -> BatchConversion:
        graph = self.model.graph
        for proto in list(graph.node):
            try:
                self._visit(proto)
            except _Refused as reason:
                raise OrstreamError(
                    f"{self.source}: node {proto.name!r} ({proto.op_type}) cannot take a batch: "
                    f"{reason}"
                ) from None
        for value in graph.output:
            axis = self.axes.get(value.name)
            if axis != 0:
                where = "does not depend on it" if axis is None else f"has it on axis {axis}"
                raise OrstreamError(
                    f"{self.source}: output {value.name!r} must carry the batch on axis 0 but "
                    f"{where}"
                )
        self._finish()
        return BatchConversion(model=self.model, changes=tuple(self.changes))

    def _visit(self, proto: onnx.NodeProto) -> None:
        if proto.op_type == "Concat":
            proto = self._expand_unbatched(proto)
        elif proto.op_type == "Resize":
            proto = self._batch_sizes(proto)
        node = Node(proto.op_type, proto.name, node_attributes(proto), len(proto.output))
        self._check_axes(proto, node)
        errors = self._run(proto, node)
        if proto.op_type == "Reshape":
            proto = self._reshape(proto, node, errors)
        elif any(errors):
            raise _Refused(next(e for e in errors if e))
        self._record_axes(proto)
        self.nodes.append(proto)

    def _run(self, proto: onnx.NodeProto, node: Node) -> list[str | None]:
        """Run ``proto`` in every walk: per walk, None or why it failed."""
        errors: list[str | None] = []
        for walk in self.walks:
            try:
                walk.run(proto, node)
            except _Refused as reason:
                raise reason from None
            except _RUN_ERRORS as error:
                errors.append(" ".join(str(error).split()) or type(error).__name__)
            else:
                errors.append(None)
        if errors[0] is not None:
            # batch 1 is the graph as exported: it must run
            raise _Refused(f"fails at batch 1: {errors[0]}")
        return errors

    def _axis_of(self, name: str) -> int | None:
        """The batch axis of ``name`` after the walks ran it, None when it has none."""
        shapes = [walk.shape(name) for walk in self.walks]
        if shapes[0] == shapes[1] == shapes[2]:
            return None
        ranks = {len(shape) for shape in shapes}
        differing = [a for a in range(len(shapes[0])) if len({s[a] for s in shapes}) > 1]
        if len(ranks) == 1 and len(differing) == 1:
            axis = differing[0]
            if tuple(s[axis] for s in shapes) == PROBE_BATCHES:
                return axis
        shown = ", ".join(str(list(s)) for s in shapes)
        raise _Refused(
            f"output {name!r} is {shown} at batch {', '.join(map(str, PROBE_BATCHES))}: the "
            "batch does not stay an axis of its own"
        )

    def _record_axes(self, proto: onnx.NodeProto) -> None:
        op = OPS[proto.op_type]
        batched_inputs = [
            name
            for index, name in enumerate(proto.input)
            if name in self.axes and index not in op.host_inputs
        ]
        for name in proto.output:
            if not name:
                continue
            axis = self._axis_of(name)
            if axis is None:
                if batched_inputs and not op.shape_only:
                    raise _Refused(
                        f"output {name!r} is the same at every batch size: it mixes the rows "
                        f"of {batched_inputs[0]!r}"
                    )
                continue
            self.axes[name] = axis

    # --- checks of ops with an axis ----------------------------------------------------------

    def _check_axes(self, proto: onnx.NodeProto, node: Node) -> None:
        first = proto.input[0] if proto.input else ""
        axis = self.axes.get(first)
        if proto.op_type == "Einsum":
            self._check_einsum(proto, node)
        if axis is None:
            return
        rank = len(self.walks[0].shape(first))
        op_type = proto.op_type
        if op_type in AXIS_ZERO_OPS and axis != 0:
            raise _Refused(f"its input has the batch on axis {axis}; {op_type} needs it on axis 0")
        if op_type in ("Softmax", "LogSoftmax") and _axis(node.attrs.get("axis", -1), rank) == axis:
            raise _Refused("it normalises over the batch axis")
        if op_type == "LayerNormalization" and _axis(node.attrs.get("axis", -1), rank) <= axis:
            raise _Refused("it normalises over the batch axis")
        gathers = op_type in ("Gather", "GatherElements")
        if gathers and _axis(node.attrs.get("axis", 0), rank) == axis:
            raise _Refused("it gathers along the batch axis")
        if op_type == "Slice":
            self._check_slice(proto, axis, rank)

    def _check_slice(self, proto: onnx.NodeProto, axis: int, rank: int) -> None:
        known = self.walks[0].known
        names = list(proto.input) + [""] * (5 - len(proto.input))
        if any(name and name not in known for name in names[1:]):
            return  # the walk refuses slices from frame data
        starts = known[names[1]].reshape(-1).tolist()
        axes = known[names[3]].reshape(-1).tolist() if names[3] else list(range(len(starts)))
        steps = known[names[4]].reshape(-1).tolist() if names[4] else [1] * len(starts)
        for sliced, step in zip(axes, steps, strict=True):
            if _axis(int(sliced), rank) == axis and step != 1:
                raise _Refused(f"it steps by {step} along the batch axis")

    def _check_einsum(self, proto: onnx.NodeProto, node: Node) -> None:
        equation = str(node.attrs.get("equation", "")).replace(" ", "")
        inputs, _, output = equation.partition("->")
        terms = inputs.split(",")
        letters = set()
        for term, name in zip(terms, proto.input, strict=False):
            if name in self.axes:
                if "..." in term:
                    raise _Refused("its batched input is under an ellipsis")
                letters.add(term[self.axes[name]])
        if len(letters) > 1:
            raise _Refused(f"its inputs have the batch on different letters {sorted(letters)}")
        if letters and (not output or letters.pop() not in output):
            raise _Refused("it sums over the batch axis")

    # --- rewrites ----------------------------------------------------------------------------

    def _reshape(
        self, proto: onnx.NodeProto, node: Node, errors: list[str | None]
    ) -> onnx.NodeProto:
        """Keep the batch an axis of its own through a Reshape (module docstring)."""
        data, target = proto.input[0], proto.input[1]
        axis = self.axes.get(data)
        if axis is None:
            if any(errors):
                raise _Refused(next(e for e in errors if e))
            return proto
        before = self.walks[0].shape(data)
        after = self.walks[0].shape(proto.output[0])
        candidates = [
            j
            for j, size in enumerate(after)
            if size == 1
            and math.prod(after[:j]) == math.prod(before[:axis])
            and math.prod(after[j + 1 :]) == math.prod(before[axis + 1 :])
        ]

        def batched(walk: _Walk, j: int) -> tuple[int, ...]:
            return (*after[:j], walk.batch, *after[j + 1 :])

        if not any(errors) and any(
            all(walk.shape(proto.output[0]) == batched(walk, j) for walk in self.walks)
            for j in candidates
        ):
            return proto
        if not candidates or 0 in after:
            raise _Refused(
                f"it folds the batch axis {axis} of {list(before)} into another axis of "
                f"{list(after)}"
            )
        j = axis if axis in candidates else candidates[0]
        shape = [*after[:j], -1, *after[j + 1 :]]
        given = self.walks[0].known[target].reshape(-1).tolist()
        rewritten = onnx.NodeProto()
        rewritten.CopyFrom(proto)
        rewritten.input[1] = self._constant(shape, f"{proto.name}/shape")
        if any(self._run(rewritten, node)):
            raise _Refused(f"shape {shape} does not fit its input")
        self.changes.append(f"Reshape {proto.name!r}: shape {given} -> {shape}")
        return rewritten

    def _expand_unbatched(self, proto: onnx.NodeProto) -> onnx.NodeProto:
        """A Concat of batched and unbatched tensors: expand the unbatched ones to the batch."""
        batched = {self.axes[name] for name in proto.input if name in self.axes}
        if not batched or all(name in self.axes for name in proto.input):
            return proto
        if len(batched) > 1:
            raise _Refused(f"its inputs have the batch on different axes {sorted(batched)}")
        (axis,) = batched
        rank = len(self.walks[0].shape(proto.input[0]))
        attrs = {a.name: helper.get_attribute_value(a) for a in proto.attribute}
        if _axis(int(attrs.get("axis", 0)), rank) == axis:
            return proto  # joining along the batch: refused once the walks ran it
        rewritten = onnx.NodeProto()
        rewritten.CopyFrom(proto)
        expanded = 0
        for index, name in enumerate(proto.input):
            if name in self.axes:
                continue
            if self.walks[0].shape(name)[axis] != 1:
                raise _Refused(f"input {name!r} has {self.walks[0].shape(name)[axis]} rows")
            shape = self._batch_shape(rank, axis)
            rewritten.input[index] = self._emit("Expand", [name, shape], f"{proto.name}/expand")
            expanded += 1
        self.changes.append(
            f"Concat {proto.name!r}: {expanded} input(s) without the batch expanded to it"
        )
        return rewritten

    def _batch_sizes(self, proto: onnx.NodeProto) -> onnx.NodeProto:
        """A Resize to constant sizes: the batch entry becomes the graph's batch size."""
        if len(proto.input) < 4 or not proto.input[3] or self.axes.get(proto.input[0]) != 0:
            return proto
        sizes_name = proto.input[3]
        if any(sizes_name not in walk.known for walk in self.walks):
            return proto  # the walk refuses sizes from frame data
        values = [walk.known[sizes_name].reshape(-1).tolist() for walk in self.walks]
        if values[0] != values[1] or values[0][0] != 1:
            return proto  # sizes that follow the batch already
        rest = self._constant(values[0][1:], f"{proto.name}/sizes")
        sizes = self._emit("Concat", [self._batch(), rest], f"{proto.name}/sizes", axis=0)
        rewritten = onnx.NodeProto()
        rewritten.CopyFrom(proto)
        rewritten.input[3] = sizes
        self.changes.append(f"Resize {proto.name!r}: sizes {values[0]} take the batch size")
        return rewritten

    # --- new nodes and constants --------------------------------------------------------------

    def _unique(self, hint: str) -> str:
        base = NAME_PREFIX + hint.strip("/")
        name, count = base, 1
        while name in self._names:
            count += 1
            name = f"{base}_{count}"
        self._names.add(name)
        return name

    def _constant(self, values: Sequence[int], hint: str) -> str:
        """An int64 initializer holding ``values``, known to every walk."""
        name = self._unique(hint)
        array = np.asarray(values, dtype=np.int64)
        self.added.append(numpy_helper.from_array(array, name))
        for walk in self.walks:
            walk.known[name] = torch.from_numpy(array.copy())
        return name

    def _emit(self, op_type: str, inputs: list[str], hint: str, **attrs: int) -> str:
        """Add a node (run in every walk like the graph's own) and return its output."""
        name = self._unique(hint)
        node = helper.make_node(op_type, inputs, [name], name=name)
        node.attribute.extend(helper.make_attribute(key, value) for key, value in attrs.items())
        self._visit(node)
        return name

    def _batch(self) -> str:
        """The graph's batch size as int64 [1]: axis 0 of its first input's shape."""
        if self._batch_size is None:
            shape = self._emit("Shape", [self.inputs[0].name], "shape")
            starts, ends = self._constant([0], "zero"), self._constant([1], "one")
            self._batch_size = self._emit("Slice", [shape, starts, ends], "size")
        return self._batch_size

    def _batch_shape(self, rank: int, axis: int) -> str:
        """int64 [rank]: ones with the batch size at ``axis`` (an Expand target)."""
        parts = [self._batch()]
        if axis:
            parts.insert(0, self._constant([1] * axis, "ones"))
        if rank - axis - 1:
            parts.append(self._constant([1] * (rank - axis - 1), "ones"))
        if len(parts) == 1:
            return parts[0]
        return self._emit("Concat", parts, "batch_shape", axis=0)

    def _finish(self) -> None:
        """Nodes and constants no longer read are dropped; inputs and outputs get the axis."""
        graph = self.model.graph
        wanted = {value.name for value in graph.output}
        kept: list[onnx.NodeProto] = []
        for proto in reversed(self.nodes):
            if any(name in wanted for name in proto.output):
                kept.append(proto)
                wanted.update(name for name in proto.input if name)
        graph.ClearField("node")
        graph.node.extend(reversed(kept))
        initializers = [t for t in [*graph.initializer, *self.added] if t.name in wanted]
        graph.ClearField("initializer")
        graph.initializer.extend(initializers)
        graph.ClearField("value_info")
        for value in [*self.inputs, *graph.output]:
            shape = self.walks[0].shape(value.name)
            dims = value.type.tensor_type.shape
            dims.ClearField("dim")
            dims.dim.add().dim_param = BATCH_AXIS_NAME
            for size in shape[1:]:
                dims.dim.add().dim_value = size


def dynamic_batch_graph(
    model: onnx.ModelProto, source: str | Path = "ONNX graph"
) -> BatchConversion:
    """``model`` (static shapes, batch 1) with a symbolic batch on axis 0 (module docstring).

    Args:
        model: the graph; it is not changed.
        source: what to name in errors (the ONNX file).

    Raises:
        OrstreamError: one line naming the node or tensor when the graph cannot take a batch.
    """
    return _Converter(model, str(source)).convert()
