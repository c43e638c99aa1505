"""The graph an fp16 engine is built from: the precision written into the ONNX itself.

TensorRT 11 builds strongly typed networks only, and TensorRT 10 does so with the
``STRONGLY_TYPED`` flag: each layer computes in the type its tensors have in the graph, and
the builder flags that let 10.x choose fp16 kernels by itself no longer exist. So the fp16
engine is built from a copy of ``model.onnx`` in which:

- every computation that depends on the input runs in fp16; constants and shape arithmetic,
  which TensorRT folds while building, stay as exported, with a Cast where they meet fp16
  values;
- graph inputs and outputs keep their types behind Casts, so the card, the edge's buffers
  and the golden reference hold for the engine unchanged;
- a node stays fp32 when, on the package's golden input, a value it reads or writes exceeds
  ``data_max`` (:data:`DATA_MAX`, far below fp16's 65504 ceiling so that other frames do
  not overflow where this one came close), a constant it reads lies outside fp16's range,
  or it is a reduction or normalisation whose sum (of squares, for a variance) over the
  reduced values could pass a quarter of 65504;
- input slots that ONNX types as fp32 whatever the data (Resize's roi and scales) stay fp32.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from orstream.errors import OrstreamError
from orstream.export.onnx.graph_probe import (
    SHAPE_OPS,
    GraphProbe,
    constant_tensors,
    dynamic_tensors,
    tensor_types,
)

DATA_MAX = 512.0
"""Largest magnitude a value may reach on the golden input for its node to compute in fp16."""
FP16_MAX = float(np.finfo(np.float16).max)
SUM_MAX = FP16_MAX / 4
"""Largest sum a reduction may build on the golden input and compute in fp16: frames whose
values run twice as large still fit."""
FP32_SLOTS: Mapping[str, frozenset[int]] = {"Resize": frozenset({1, 2})}
"""Float input slots that must stay fp32 whatever the node computes in."""
ANY_TYPE_OPS = frozenset({"Cast", *SHAPE_OPS})
"""Ops that read any element type: their inputs are never cast."""
FLOAT = TensorProto.FLOAT
FLOATS = frozenset({FLOAT, TensorProto.FLOAT16})
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
FP16_QDQ_OPSET = 19
"""The first opset whose Q/DQ operators read and write fp16."""


SUMMED = frozenset({"ReduceMean", "ReduceSum", "ReduceL1"})
NORMALISATIONS = frozenset({"LayerNormalization", "GroupNormalization", "InstanceNormalization"})
SQUARED = frozenset({"ReduceSumSquare", "ReduceL2", *NORMALISATIONS})
"""Reductions over values (SUMMED) or their squares (SQUARED, the variance of a normalisation):
a node stays fp32 when such a sum could pass :data:`SUM_MAX`."""


def node_key(node: onnx.NodeProto) -> str:
    """A node's identity: its first output, which is unique in a graph (names may be empty)."""
    return node.output[0]


def fp32_nodes(
    model: onnx.ModelProto, inputs: Mapping[str, np.ndarray], data_max: float = DATA_MAX
) -> set[str]:
    """The input-dependent nodes (:func:`node_key`) that must stay fp32 for ``inputs``.

    A node stays fp32 when a float value it reads or writes on ``inputs`` exceeds
    ``data_max`` in magnitude or is not finite, a constant it reads exceeds fp16's range, or
    it sums more than fp16 can hold (:data:`SQUARED`, :data:`SUMMED`).
    """
    graph = model.graph
    dynamic = dynamic_tensors(graph)
    types = tensor_types(model)
    computed = [n for n in graph.node if n.op_type not in SHAPE_OPS and dynamic & set(n.input)]
    floats = {
        name
        for node in computed
        for name in (*node.input, *node.output)
        if name and types.get(name) == TensorProto.FLOAT
    }
    values = GraphProbe(model, floats).run(inputs)
    peaks = {name: _peak(value) for name, value in values.items() if name in floats}
    constants = {
        name: _peak(numpy_helper.to_array(tensor))
        for name, tensor in constant_tensors(graph).items()
    }
    kept: set[str] = set()
    for node in computed:
        names = (*node.input, *node.output)
        if (
            any(constants.get(name, 0.0) > FP16_MAX for name in names)
            or any(name in dynamic and peaks.get(name, 0.0) > data_max for name in names)
            or _accumulation_bound(node, values) > SUM_MAX
        ):
            kept.add(node_key(node))
    return kept


def _accumulation_bound(node: onnx.NodeProto, values: Mapping[str, np.ndarray]) -> float:
    """The largest sum a reduction or normalisation could build on these values, were it
    accumulated in fp16 (whether a TensorRT kernel does is not documented)."""
    if node.op_type not in SUMMED and node.op_type not in SQUARED:
        return 0.0
    data, result = values.get(node.input[0]), values.get(node.output[0])
    if data is None or result is None or data.size == 0:
        return 0.0
    if node.op_type in NORMALISATIONS:
        axis = next((a.i for a in node.attribute if a.name == "axis"), -1)
        count = int(np.prod(data.shape[axis:])) if node.op_type == "LayerNormalization" else 0
        count = count or int(np.prod(data.shape[2:]))  # Group/InstanceNormalization: per channel
    else:
        count = max(data.size // max(result.size, 1), 1)
    peak = _peak(data)
    return count * (peak * peak if node.op_type in SQUARED else peak)


def _peak(value: np.ndarray) -> float:
    if not np.issubdtype(value.dtype, np.floating) or value.size == 0:
        return 0.0
    if not np.isfinite(value).all():
        return float("inf")
    return float(np.abs(value).max())


def fp16_graph(model: onnx.ModelProto, keep_fp32: Collection[str] = ()) -> onnx.ModelProto:
    """A copy of ``model`` that computes in fp16 except the nodes in ``keep_fp32``.

    Args:
        model: an fp32 graph of static shapes.
        keep_fp32: :func:`node_key` of nodes that stay fp32 (e.g. :func:`fp32_nodes`).

    Raises:
        OrstreamError: the graph holds an input-dependent node the pass cannot convert (a
            subgraph, or an op that makes floats of a type set by an attribute).
    """
    converted = onnx.ModelProto()
    converted.CopyFrom(model)
    graph = converted.graph
    types = tensor_types(model)
    dynamic = dynamic_tensors(graph)
    half: set[str] = set()
    casts: dict[tuple[str, int], str] = {}
    nodes: list[onnx.NodeProto] = []
    if any(node.op_type in QDQ_OPS for node in graph.node):
        for opset in converted.opset_import:
            if opset.domain in ("", "ai.onnx"):
                opset.version = max(opset.version, FP16_QDQ_OPSET)
    constants = constant_tensors(graph)

    def cast(name: str, to: int) -> str:
        """``name`` as ``to``: a converted copy of a constant (TensorRT wants Q/DQ scales as
        constants, not computed), else a Cast node."""
        if (name, to) not in casts:
            out = f"{name}/{'fp16' if to == TensorProto.FLOAT16 else 'fp32'}"
            if name in constants:
                dtype = np.float16 if to == TensorProto.FLOAT16 else np.float32
                value = numpy_helper.to_array(constants[name]).astype(dtype)
                graph.initializer.append(numpy_helper.from_array(value, out))
            else:
                nodes.append(helper.make_node("Cast", [name], [out], name=f"{out}/cast", to=to))
            casts[name, to] = out
        return casts[name, to]

    for node in graph.node:
        # Weights' DequantizeLinear computes on constants but writes the layer's input type.
        computed = node.op_type == "DequantizeLinear" or dynamic & set(node.input)
        if node.op_type in SHAPE_OPS or not computed:
            nodes.append(node)
            continue
        to_half = node_key(node) not in keep_fp32
        if node.op_type not in ANY_TYPE_OPS:
            fixed = FP32_SLOTS.get(node.op_type, frozenset())
            for slot, name in enumerate(node.input):
                if not name or types.get(name) not in FLOATS:
                    continue
                want_half = to_half and slot not in fixed
                if want_half and name not in half:
                    node.input[slot] = cast(name, TensorProto.FLOAT16)
                elif not want_half and name in half:
                    node.input[slot] = cast(name, TensorProto.FLOAT)
        if to_half:
            for attribute in node.attribute:
                if node.op_type == "Cast" and attribute.name == "to" and attribute.i == FLOAT:
                    attribute.i = TensorProto.FLOAT16
            half.update(name for name in node.output if types.get(name) == TensorProto.FLOAT)
        nodes.append(node)

    # Graph outputs keep their fp32 type: their producers write "<name>/fp16", cast back.
    renamed = {value.name: f"{value.name}/fp16" for value in graph.output if value.name in half}
    for node in nodes:
        for slots in (node.input, node.output):
            for slot, name in enumerate(slots):
                slots[slot] = renamed.get(name, name)
    for name, inner in renamed.items():
        nodes.append(helper.make_node("Cast", [inner], [name], name=f"{name}/cast", to=FLOAT))
    # Constants now read through their fp16 copies are dropped.
    used = {name for node in nodes for name in node.input} | {v.name for v in graph.output}
    del graph.node[:]
    graph.node.extend(n for n in nodes if n.op_type != "Constant" or n.output[0] in used)
    del graph.value_info[:]
    unused = [tensor for tensor in graph.initializer if tensor.name not in used]
    for tensor in unused:
        graph.initializer.remove(tensor)

    inferred = tensor_types(converted)
    for name in sorted(renamed.get(name, name) for name in half):
        if inferred.get(name) != TensorProto.FLOAT16:
            producer = next(node for node in nodes if name in node.output)
            raise OrstreamError(
                f"cannot compute node {producer.name or name} ({producer.op_type}) in fp16: "
                "its output type is set by an attribute the fp16 pass does not rewrite"
            )
    onnx.checker.check_model(converted)
    return converted
