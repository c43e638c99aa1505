"""Reading a graph's intermediate tensors: what the fp16 conversion and INT8 calibration measure.

:func:`dynamic_tensors` finds the tensors that change with the input (the ones an engine
computes per frame); :func:`constant_tensors` the values fixed in the graph;
:func:`tensor_types` gives every tensor's element type; a
:class:`GraphProbe` runs the graph on ONNX Runtime's CPU provider with chosen intermediate
tensors added as outputs, so their values on real inputs can be measured.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import onnx
import onnxruntime as ort

from orstream.errors import OrstreamError

SHAPE_OPS = frozenset({"Shape", "Size"})
"""Ops whose output depends on their input's shape only: static in a graph of static shapes,
so a computation fed only by them and by constants is folded when TensorRT builds."""


def dynamic_tensors(graph: onnx.GraphProto) -> set[str]:
    """The tensors whose values depend on a graph input (through anything but a shape).

    Raises:
        OrstreamError: a node on that path holds a subgraph (If, Loop, Scan), which the
            precision passes do not rewrite.
    """
    initializers = {tensor.name for tensor in graph.initializer}
    dynamic = {value.name for value in graph.input} - initializers
    for node in graph.node:  # ONNX keeps nodes in topological order
        if node.op_type in SHAPE_OPS or not any(name in dynamic for name in node.input):
            continue
        if any(attribute.type == onnx.AttributeProto.GRAPH for attribute in node.attribute):
            raise OrstreamError(
                f"node {node.name or node.output[0]} ({node.op_type}) holds a subgraph that "
                "computes on the input; the precision passes cannot rewrite it"
            )
        dynamic.update(name for name in node.output if name)
    return dynamic


def constant_tensors(graph: onnx.GraphProto) -> dict[str, onnx.TensorProto]:
    """The graph's constant values by tensor name: initializers and ``Constant`` node values."""
    constants = {tensor.name: tensor for tensor in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute[0].name == "value":
            constants[node.output[0]] = node.attribute[0].t
    return constants


def tensor_types(model: onnx.ModelProto) -> dict[str, int]:
    """Every tensor's ``onnx.TensorProto`` element type, by ONNX shape inference.

    Raises:
        OrstreamError: shape inference rejects the graph.
    """
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    except (onnx.shape_inference.InferenceError, onnx.checker.ValidationError) as error:
        raise OrstreamError(f"ONNX shape inference rejects the graph: {error}") from None
    graph = inferred.graph
    types = {tensor.name: tensor.data_type for tensor in graph.initializer}
    for value in (*graph.input, *graph.value_info, *graph.output):
        types[value.name] = value.type.tensor_type.elem_type
    return types


class GraphProbe:
    """A graph on ONNX Runtime (CPU, fp32 as exported) that also returns ``probed`` tensors.

    Graph optimisations are off, so every probed tensor is the one the graph names, computed
    as the ONNX operator defines it.
    """

    def __init__(self, model: onnx.ModelProto, probed: Collection[str]) -> None:
        augmented = onnx.ModelProto()
        augmented.CopyFrom(model)
        outputs = {value.name for value in augmented.graph.output}
        types = tensor_types(model)
        for name in probed:
            if name not in outputs:
                augmented.graph.output.append(
                    onnx.helper.make_tensor_value_info(name, types[name], None)
                )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 3
        self._session = ort.InferenceSession(
            augmented.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self._names = [output.name for output in self._session.get_outputs()]

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph's outputs and the probed tensors for ``inputs``."""
        values = self._session.run(self._names, dict(inputs))
        return dict(zip(self._names, values, strict=True))
