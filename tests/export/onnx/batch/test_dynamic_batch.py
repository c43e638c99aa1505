"""The rewrite that gives batch-1 graphs a dynamic batch: the nodes that bake the batch in are
rewritten and the rows come out as batch-1 calls give them (on ONNX Runtime); graphs that
would mix rows are refused in one line naming the node."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from segmenter_checkpoints import save_random_segmenter_checkpoint

from orstream.errors import OrstreamError
from orstream.export.onnx.batch.dynamic_batch import dynamic_batch_graph
from orstream.export.onnx.models.segmenter_export import (
    DecoderGraph,
    EncoderGraph,
    decoder_example,
    load_segmenter_checkpoint,
)
from orstream.package.card import DECODER_INPUTS, DECODER_OUTPUTS

F = TensorProto.FLOAT


def _session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _rows_match(original: onnx.ModelProto, converted: onnx.ModelProto, rows: int = 3) -> float:
    """The largest difference between ``rows`` different rows in one call of ``converted`` and
    one call each of ``original``."""
    single, batched = _session(original), _session(converted)
    rng = np.random.default_rng(1)
    feeds = [
        {
            arg.name: rng.normal(0, 1, arg.shape).astype(np.float32)  # static shapes, batch 1
            for arg in single.get_inputs()
        }
        for _ in range(rows)
    ]
    stacked = {name: np.concatenate([feed[name] for feed in feeds]) for name in feeds[0]}
    outputs = batched.run(None, stacked)
    worst = 0.0
    for row, feed in enumerate(feeds):
        for got, want in zip(outputs, single.run(None, feed), strict=True):
            assert got.shape[0] == rows
            worst = max(worst, float(np.abs(got[row : row + 1] - want).max()))
    return worst


def _graph(
    nodes: list[onnx.NodeProto],
    inputs: dict[str, list[int]],
    outputs: dict[str, list[int]],
    constants: dict[str, np.ndarray] | None = None,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "test",
        [helper.make_tensor_value_info(name, F, shape) for name, shape in inputs.items()],
        [helper.make_tensor_value_info(name, F, shape) for name, shape in outputs.items()],
        [numpy_helper.from_array(value, name) for name, value in (constants or {}).items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def _refused(model: onnx.ModelProto) -> str:
    with pytest.raises(OrstreamError) as info:
        dynamic_batch_graph(model, "test.onnx")
    message = str(info.value)
    assert message.startswith("test.onnx: ") and "\n" not in message
    return message


def test_a_reshape_that_folds_rows_together_gets_the_batch_back() -> None:
    # [1, 4, 2] -> [1, 1, -1] as a trace at batch 1 writes x.view(B, T, -1)
    model = _graph(
        [helper.make_node("Reshape", ["x", "shape"], ["y"], name="fold")],
        {"x": [1, 4, 2]},
        {"y": [1, 1, 8]},
        {"shape": np.array([1, 1, -1], np.int64)},
    )
    conversion = dynamic_batch_graph(model, "test.onnx")
    assert conversion.changes == ("Reshape 'fold': shape [1, 1, -1] -> [-1, 1, 8]",)
    inputs, outputs = conversion.model.graph.input, conversion.model.graph.output
    assert inputs[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert [d.dim_param or d.dim_value for d in outputs[0].type.tensor_type.shape.dim] == [
        "batch",
        1,
        8,
    ]
    onnx.checker.check_model(conversion.model, full_check=True)
    assert _rows_match(model, conversion.model) == 0.0


def test_a_constant_token_is_expanded_to_the_batch_before_a_concat() -> None:
    token = np.arange(6, dtype=np.float32).reshape(1, 2, 3)
    model = _graph(
        [helper.make_node("Concat", ["token", "x"], ["y"], name="join", axis=1)],
        {"x": [1, 4, 3]},
        {"y": [1, 6, 3]},
        {"token": token},
    )
    conversion = dynamic_batch_graph(model, "test.onnx")
    assert conversion.changes == ("Concat 'join': 1 input(s) without the batch expanded to it",)
    assert {node.op_type for node in conversion.model.graph.node} >= {"Expand", "Shape"}
    assert _rows_match(model, conversion.model) == 0.0


def test_a_resize_to_constant_sizes_takes_the_batch_size() -> None:
    model = _graph(
        [helper.make_node("Resize", ["x", "", "", "sizes"], ["y"], name="up", mode="linear")],
        {"x": [1, 2, 3, 4]},
        {"y": [1, 2, 6, 8]},
        {"sizes": np.array([1, 2, 6, 8], np.int64)},
    )
    conversion = dynamic_batch_graph(model, "test.onnx")
    assert conversion.changes == ("Resize 'up': sizes [1, 2, 6, 8] take the batch size",)
    assert _rows_match(model, conversion.model) <= 1e-6


def test_what_already_follows_the_batch_is_left_alone() -> None:
    model = _graph(
        [
            helper.make_node("Shape", ["x"], ["s"], name="shape"),
            helper.make_node("Reshape", ["x", "s"], ["r"], name="same"),
            helper.make_node("Softmax", ["r"], ["y"], name="softmax", axis=-1),
        ],
        {"x": [1, 5]},
        {"y": [1, 5]},
    )
    conversion = dynamic_batch_graph(model, "test.onnx")
    assert conversion.changes == ()
    assert _rows_match(model, conversion.model) <= 1e-7


@pytest.mark.parametrize(
    ("node", "constants", "output", "message"),
    [
        (
            helper.make_node("Softmax", ["x"], ["y"], name="over_rows", axis=0),
            {},
            [1, 5],
            "node 'over_rows' (Softmax) cannot take a batch: it normalises over the batch axis",
        ),
        (
            helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="mean", keepdims=1),
            {"axes": np.array([0], np.int64)},
            [1, 5],
            "node 'mean' (ReduceMean) cannot take a batch: output 'y' is the same at every "
            "batch size: it mixes the rows of 'x'",
        ),
        (
            helper.make_node("Gather", ["x", "first"], ["y"], name="row_0", axis=0),
            {"first": np.array(0, np.int64)},
            [5],
            "node 'row_0' (Gather) cannot take a batch: it gathers along the batch axis",
        ),
        (
            helper.make_node("Reshape", ["x", "shape"], ["y"], name="square"),
            {"shape": np.array([5, 1], np.int64)},
            [5, 1],
            "node 'square' (Reshape) cannot take a batch: it folds the batch axis 0 of [1, 5] "
            "into another axis of [5, 1]",
        ),
        (
            helper.make_node("Transpose", ["x"], ["y"], name="swap", perm=[1, 0]),
            {},
            [5, 1],
            "output 'y' must carry the batch on axis 0 but has it on axis 1",
        ),
    ],
    ids=["softmax-over-rows", "mean-over-rows", "gather-a-row", "reshape-folding", "output-axis"],
)
def test_graphs_that_would_mix_rows_are_refused_naming_the_node(
    node: onnx.NodeProto, constants: dict[str, np.ndarray], output: list[int], message: str
) -> None:
    model = _graph([node], {"x": [1, 5]}, {"y": output}, constants)
    assert _refused(model) == f"test.onnx: {message}"


def test_inputs_must_be_batch_1_with_static_shapes() -> None:
    model = _graph([helper.make_node("Relu", ["x"], ["y"])], {"x": [2, 5]}, {"y": [2, 5]})
    assert "input 'x' has shape [2, 5]; a batch-1 graph with static shapes" in _refused(model)


def test_an_output_that_ignores_the_batch_is_refused() -> None:
    model = _graph(
        [
            helper.make_node("Relu", ["x"], ["y"], name="relu"),
            helper.make_node("Identity", ["bias"], ["z"], name="constant"),
        ],
        {"x": [1, 5]},
        {"y": [1, 5], "z": [3]},
        {"bias": np.zeros(3, np.float32)},
    )
    assert _refused(model).endswith(
        "output 'z' must carry the batch on axis 0 but does not depend on it"
    )


def _static_export(
    module: torch.nn.Module, example: tuple[torch.Tensor, ...], names: tuple, path: Path
) -> onnx.ModelProto:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module.eval(),
            example,
            str(path),
            input_names=list(names[0]),
            output_names=list(names[1]),
            opset_version=18,
            dynamo=False,
        )
    return onnx.load(str(path))


def test_a_segmenter_traced_at_batch_1_takes_a_batch(tmp_path: Path) -> None:
    checkpoint = save_random_segmenter_checkpoint(tmp_path / "segmenter.ckpt")
    model = load_segmenter_checkpoint(checkpoint, lambda _: None).model
    height, width = model.input_size
    image = torch.zeros(1, 3, height, width)
    encoder = _static_export(
        EncoderGraph(model), (image,), (["image"], ["image_embeddings"]), tmp_path / "e.onnx"
    )
    with torch.no_grad():
        embeddings = model.encode_image(image)
    decoder = _static_export(
        DecoderGraph(model),
        decoder_example(model, embeddings),
        (DECODER_INPUTS, DECODER_OUTPUTS),
        tmp_path / "d.onnx",
    )
    for graph, kinds in ((encoder, {"Concat", "Reshape"}), (decoder, {"Concat", "Reshape"})):
        conversion = dynamic_batch_graph(graph, "graph.onnx")
        assert {change.split()[0] for change in conversion.changes} == kinds
        onnx.checker.check_model(conversion.model, full_check=True)
        assert _rows_match(graph, conversion.model, rows=4) <= 1e-4
