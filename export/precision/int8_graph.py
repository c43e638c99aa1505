"""The graph an INT8 engine is built from: explicit quantisation with Q/DQ pairs.

TensorRT 11 has no implicit INT8 (the builder flag and the calibrator interface are gone) and
10.x prefers explicit quantisation: the graph says where values are quantised by
``QuantizeLinear`` -> ``DequantizeLinear`` pairs, and TensorRT runs the layers between them in
INT8. orstream puts a pair on every float input of the layers that carry the arithmetic
(:data:`QUANTIZED_SLOTS`: convolutions and matrix products), in TensorRT's symmetric scheme
(zero point 0, INT8):

- activations get one scale per tensor, ``amax / 127`` from the calibrated range
  (:mod:`orstream.export.precision.activation_ranges`);
- constant weights are stored as INT8 (-127..127) behind a ``DequantizeLinear``, with their
  own ranges, per output channel for convolutions (axis 0 of ``[out, in, kh, kw]``), per
  tensor otherwise.

Everything else computes as the graph says; an INT8 engine's graph then goes through
:func:`orstream.export.precision.fp16_graph.fp16_graph`, which makes the pairs fp16 too
(opset 19), so each quantised layer reads and writes fp16 around its INT8 arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from orstream.export.onnx.graph_probe import constant_tensors, dynamic_tensors, tensor_types

QUANTIZED_SLOTS: Mapping[str, tuple[int, ...]] = {
    "Conv": (0, 1),
    "ConvTranspose": (0, 1),
    "MatMul": (0, 1),
    "Gemm": (0, 1),
}
"""Input slots quantised per op type: the data and the weights, never the bias."""
PER_CHANNEL_OPS = frozenset({"Conv"})
INT8_MAX = 127.0


def quantized_activations(model: onnx.ModelProto) -> set[str]:
    """The input-dependent float tensors that :func:`int8_graph` quantises (to calibrate)."""
    dynamic = dynamic_tensors(model.graph)
    types = tensor_types(model)
    return {
        name
        for name in _quantized_inputs(model.graph)
        if name in dynamic and types.get(name) == TensorProto.FLOAT
    }


def int8_graph(model: onnx.ModelProto, ranges: Mapping[str, float]) -> onnx.ModelProto:
    """A copy of ``model`` with a Q/DQ pair on each quantised input.

    Args:
        model: an fp32 graph of static shapes.
        ranges: the clipping magnitude of every tensor :func:`quantized_activations` names.

    Raises:
        KeyError: an activation without a range.
    """
    quantized = onnx.ModelProto()
    quantized.CopyFrom(model)
    graph = quantized.graph
    dynamic = dynamic_tensors(graph)
    constants = constant_tensors(graph)
    types = tensor_types(model)
    added: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type in QUANTIZED_SLOTS and dynamic & set(node.input):
            for slot in QUANTIZED_SLOTS[node.op_type]:
                name = node.input[slot] if slot < len(node.input) else ""
                if not name or types.get(name) != TensorProto.FLOAT:
                    continue
                if name not in added:
                    if name in dynamic:
                        scale = np.float32(max(ranges[name], 1e-12) / INT8_MAX)
                        added[name] = _qdq(graph, nodes, name, np.asarray(scale))
                    elif name in constants:
                        weights = numpy_helper.to_array(constants[name])
                        per_channel = node.op_type in PER_CHANNEL_OPS and slot == 1
                        added[name] = _quantized_weights(graph, nodes, name, weights, per_channel)
                    else:
                        continue  # a weight computed from constants: TensorRT folds it in fp32
                node.input[slot] = added[name]
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.value_info[:]
    onnx.checker.check_model(quantized)
    return quantized


def _quantized_weights(
    graph: onnx.GraphProto,
    nodes: list[onnx.NodeProto],
    name: str,
    weights: np.ndarray,
    per_channel: bool,
) -> str:
    """Store ``weights`` as INT8 with a DequantizeLinear; return the dequantised tensor."""
    if per_channel:
        peaks = np.abs(weights.reshape(weights.shape[0], -1)).max(axis=1)
        scale = (np.maximum(peaks, 1e-12) / INT8_MAX).astype(np.float32)
        shaped = scale.reshape((-1,) + (1,) * (weights.ndim - 1))
    else:
        scale = np.asarray(np.float32(max(float(np.abs(weights).max()), 1e-12) / INT8_MAX))
        shaped = scale
    # Weights use -127..127 (TensorRT's weight range): the scale maps the peak to 127.
    stored = np.clip(np.rint(weights / shaped), -INT8_MAX, INT8_MAX).astype(np.int8)
    scale_name, zero_name = _scale_and_zero(graph, name, scale)
    graph.initializer.append(numpy_helper.from_array(stored, f"{name}/int8"))
    dequantized = f"{name}/int8_dq"
    node = helper.make_node(
        "DequantizeLinear", [f"{name}/int8", scale_name, zero_name], [dequantized], name=dequantized
    )
    if per_channel:
        node.attribute.append(helper.make_attribute("axis", 0))
    nodes.append(node)
    return dequantized


def _qdq(graph: onnx.GraphProto, nodes: list[onnx.NodeProto], name: str, scale: np.ndarray) -> str:
    """Add ``name -> QuantizeLinear -> DequantizeLinear``; return the dequantised tensor."""
    scale_name, zero_name = _scale_and_zero(graph, name, scale)
    quantized, dequantized = f"{name}/int8", f"{name}/int8_dq"
    for op, source, target in (
        ("QuantizeLinear", name, quantized),
        ("DequantizeLinear", quantized, dequantized),
    ):
        nodes.append(helper.make_node(op, [source, scale_name, zero_name], [target], name=target))
    return dequantized


def _scale_and_zero(graph: onnx.GraphProto, name: str, scale: np.ndarray) -> tuple[str, str]:
    scale_name, zero_name = f"{name}/int8_scale", f"{name}/int8_zero"
    graph.initializer.append(numpy_helper.from_array(scale, scale_name))
    graph.initializer.append(numpy_helper.from_array(np.zeros(scale.shape, np.int8), zero_name))
    return scale_name, zero_name


def _quantized_inputs(graph: onnx.GraphProto) -> list[str]:
    return [
        node.input[slot]
        for node in graph.node
        if node.op_type in QUANTIZED_SLOTS
        for slot in QUANTIZED_SLOTS[node.op_type]
        if slot < len(node.input) and node.input[slot]
    ]
