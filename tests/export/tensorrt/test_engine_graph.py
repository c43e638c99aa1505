"""The graphs TensorRT builds engines from: fp16 written into the graph, INT8 as Q/DQ pairs from
calibrated ranges, each held to the golden reference on ONNX Runtime before any build. None of
this needs TensorRT."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, numpy_helper
from project_paths import PACKAGES

from orstream.cli import main
from orstream.edge.backends.reference_check import allowed_difference
from orstream.errors import OrstreamError
from orstream.export.onnx.graph_probe import dynamic_tensors, tensor_types
from orstream.export.precision.activation_ranges import (
    MAX_CLIPPED,
    clipping_range,
    entropy_threshold,
    read_ranges,
    write_ranges,
)
from orstream.export.precision.calibration import Calibration, read_calibration
from orstream.export.precision.fp16_graph import fp16_graph, fp32_nodes, node_key
from orstream.export.precision.int8_graph import int8_graph, quantized_activations
from orstream.export.tensorrt.engine_graph import engine_graph
from orstream.package.loading import ModelPackage, load_package


@pytest.fixture(scope="module")
def workflow() -> ModelPackage:
    return load_package(PACKAGES / "pitvis_workflow")


@pytest.fixture(scope="module")
def segmenter() -> ModelPackage:
    return load_package(PACKAGES / "imis_segmenter")


@pytest.fixture(scope="module")
def phantom_frames(workflow: ModelPackage) -> Calibration:
    """48 frames of a phantom case the golden frame is not from, at the recogniser's 1 Hz."""
    return read_calibration("phantom://?seed=5&seconds=48&width=320&height=180", 1.0, 48)


def run(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))


def worst_share(outputs: dict[str, np.ndarray], package: ModelPackage, precision: str) -> float:
    """The largest difference from the golden outputs, as a share of what is allowed."""
    reference = package.reference("model")
    assert reference is not None
    return max(
        float(np.abs(outputs[name] - expected).max()) / allowed_difference(expected, precision)
        for name, expected in reference.outputs.items()
    )


# --- fp16 -------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["pitvis_workflow", "imis_segmenter"])
def test_fp16_graph_computes_in_fp16_behind_fp32_inputs_and_outputs(name: str) -> None:
    package = load_package(PACKAGES / name)
    model = onnx.load(package.model_path)
    reference = package.reference("model")
    assert reference is not None
    kept = fp32_nodes(model, reference.inputs)
    converted = fp16_graph(model, kept)
    assert [(v.name, v.type.tensor_type.elem_type) for v in converted.graph.input] == [
        (v.name, v.type.tensor_type.elem_type) for v in model.graph.input
    ]
    assert [(v.name, v.type.tensor_type.elem_type) for v in converted.graph.output] == [
        (v.name, v.type.tensor_type.elem_type) for v in model.graph.output
    ]
    # every value computed per frame is fp16 but where a kept layer or an output needs fp32
    types = tensor_types(converted)
    fp32 = {v.name for v in (*converted.graph.output, *converted.graph.input)}
    for node in converted.graph.node:
        if node_key(node) in kept or node.output[0].endswith("/fp32"):
            fp32.update(node.output)
    computed = dynamic_tensors(converted.graph) - fp32
    floats = [n for n in computed if types[n] in (TensorProto.FLOAT, TensorProto.FLOAT16)]
    assert floats and all(types[n] == TensorProto.FLOAT16 for n in floats)
    assert len(kept) == {"pitvis_workflow": 0, "imis_segmenter": 2}[name]
    # fp16 arithmetic moves the outputs, within the fp16 allowance of the golden check
    share = worst_share(run(converted, reference.inputs), package, "fp16")
    assert 0.0 < share < 0.5


def test_resize_scales_stay_fp32(segmenter: ModelPackage) -> None:
    model = onnx.load(segmenter.model_path)
    converted = fp16_graph(model)
    types = tensor_types(converted)
    resizes = [node for node in converted.graph.node if node.op_type == "Resize"]
    assert resizes
    for node in resizes:
        assert types[node.input[0]] == TensorProto.FLOAT16
        assert all(types[name] == TensorProto.FLOAT for name in node.input[1:3] if name)


def test_layers_whose_values_exceed_the_limit_stay_fp32(workflow: ModelPackage) -> None:
    model = onnx.load(workflow.model_path)
    reference = workflow.reference("model")
    assert reference is not None
    assert fp32_nodes(model, reference.inputs) == set()  # the shipped recogniser fits fp16
    kept = fp32_nodes(model, reference.inputs, data_max=4.0)
    assert kept
    converted = fp16_graph(model, kept)
    types = tensor_types(converted)
    for node in converted.graph.node:
        if node_key(node) in kept:
            assert all(types[name] == TensorProto.FLOAT for name in node.output)
    share = worst_share(run(converted, reference.inputs), workflow, "fp16")
    assert share < 0.5


def test_sums_that_could_pass_fp16_stay_fp32() -> None:
    values = onnx.helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])
    graph = onnx.helper.make_graph(
        [
            onnx.helper.make_node("ReduceMean", ["x"], ["mean"], keepdims=1),
            onnx.helper.make_node("Sub", ["x", "mean"], ["y"]),
        ],
        "means",
        [values],
        [onnx.helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1024])],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 18)])
    # every value stays far under 512; only the mean's sum of 1024 of them grows
    assert fp32_nodes(model, {"x": np.full((1, 1024), 10.0, np.float32)}) == set()  # 10240
    assert fp32_nodes(model, {"x": np.full((1, 1024), 20.0, np.float32)}) == {"mean"}  # 20480


def test_values_beyond_fp16_are_measured_as_overflowing(workflow: ModelPackage) -> None:
    model = onnx.load(workflow.model_path)
    reference = workflow.reference("model")
    assert reference is not None
    loud = {name: value * 1e5 for name, value in reference.inputs.items()}
    first_conv = next(node for node in model.graph.node if node.op_type == "Conv")
    assert node_key(first_conv) in fp32_nodes(model, loud)


# --- INT8 -------------------------------------------------------------------------------------


def test_entropy_threshold_clips_tails_but_not_a_flat_range() -> None:
    rng = np.random.default_rng(0)
    gaussian = np.abs(rng.standard_normal(200_000))
    gaussian[:3] = 40.0  # outliers far out
    histogram = np.histogram(gaussian, 2048, (0.0, 40.0))[0]
    assert 3.0 < entropy_threshold(histogram, 40.0) < 5.0
    uniform = rng.uniform(0.0, 1.0, 200_000)
    histogram = np.histogram(uniform, 2048, (0.0, 1.0))[0]
    assert entropy_threshold(histogram, 1.0) > 0.99


def test_the_range_never_clips_more_than_its_share() -> None:
    # a few large values that carry the signal: entropy alone would clip them all
    bulk = np.abs(np.random.default_rng(0).standard_normal(100_000))
    values = np.concatenate([bulk, np.linspace(20.0, 40.0, 40)])
    histogram = np.histogram(values, 2048, (0.0, 40.0))[0]
    assert entropy_threshold(histogram, 40.0) < 5.0
    chosen = clipping_range(histogram, 40.0)
    assert np.mean(values > chosen) <= MAX_CLIPPED


def test_int8_graph_quantises_symmetric_int8_per_channel_weights(
    workflow: ModelPackage,
) -> None:
    model = onnx.load(workflow.model_path)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    activations = quantized_activations(model)
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    assert activations == {node.input[0] for node in convs}
    quantized = int8_graph(model, dict.fromkeys(activations, 4.0))
    initializers = {t.name: numpy_helper.to_array(t) for t in quantized.graph.initializer}
    qdq = [n for n in quantized.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    assert len(qdq) == 2 * len(activations) + len(convs)  # weights: stored INT8, one DQ
    for node in qdq:
        zero = initializers[node.input[2]]
        assert zero.dtype == np.int8 and not zero.any()
    by_output = {node.output[0]: node for node in quantized.graph.node}
    for conv, original in zip(
        (n for n in quantized.graph.node if n.op_type == "Conv"), convs, strict=True
    ):
        dequantize = by_output[conv.input[1]]
        stored, scale = initializers[dequantize.input[0]], initializers[dequantize.input[1]]
        assert stored.dtype == np.int8 and np.abs(stored.astype(int)).max() == 127
        assert {a.name: a.i for a in dequantize.attribute}["axis"] == 0
        assert scale.shape == (stored.shape[0],)
        restored = stored * scale.reshape((-1,) + (1,) * (stored.ndim - 1))
        error = np.abs(restored - weights[original.input[1]])
        assert (error <= scale.reshape((-1,) + (1,) * (stored.ndim - 1)) / 2 + 1e-9).all()
        activation = by_output[by_output[conv.input[0]].input[0]]  # DQ <- Q <- the input
        assert activation.op_type == "QuantizeLinear"
        assert initializers[activation.input[1]] == pytest.approx(4.0 / 127)


def test_calibrated_int8_graph_passes_the_golden_check(
    workflow: ModelPackage, phantom_frames: Calibration, tmp_path: Path
) -> None:
    ranges_path = tmp_path / "engines" / "key.ranges.json"
    graph = engine_graph(workflow, "int8", phantom_frames, ranges_path)
    assert graph.calibrated and graph.quantized == 81
    assert graph.check.max_abs_diff < graph.check.allowed
    assert {o.version for o in graph.model.opset_import if o.domain in ("", "ai.onnx")} == {19}
    types = tensor_types(graph.model)
    dequantized = [n.output[0] for n in graph.model.graph.node if n.op_type == "DequantizeLinear"]
    assert all(types[name] == TensorProto.FLOAT16 for name in dequantized)
    # the same frames again: the ranges kept beside the engine, no calibration
    again = engine_graph(workflow, "int8", phantom_frames, ranges_path)
    assert not again.calibrated
    assert again.model.SerializeToString() == graph.model.SerializeToString()


def test_a_graph_off_the_reference_is_refused_before_tensorrt(
    workflow: ModelPackage, phantom_frames: Calibration, tmp_path: Path
) -> None:
    model = onnx.load(workflow.model_path)
    ranges_path = tmp_path / "clipped.ranges.json"
    # ranges far too narrow clip nearly every activation
    write_ranges(
        ranges_path, dict.fromkeys(quantized_activations(model), 1e-3), phantom_frames.sha256
    )
    with pytest.raises(OrstreamError) as refused:
        engine_graph(workflow, "int8", phantom_frames, ranges_path)
    message = str(refused.value)
    assert message.startswith("the int8 graph for TensorRT fails the golden check on ONNX Runtime")
    assert "differs by" in message and "\n" not in message


def test_kept_ranges_are_only_read_for_their_own_frames(tmp_path: Path) -> None:
    path = tmp_path / "a.ranges.json"
    write_ranges(path, {"x": 1.5, "y": 0.25}, "a" * 64)
    assert read_ranges(path, {"x", "y"}, "a" * 64) == {"x": 1.5, "y": 0.25}
    assert read_ranges(path, {"x", "y"}, "b" * 64) is None  # other frames
    assert read_ranges(path, {"x"}, "a" * 64) is None  # another graph's tensors
    assert read_ranges(tmp_path / "missing.json", {"x"}, "a" * 64) is None
    path.write_text(json.dumps({"format": 99}))
    assert read_ranges(path, {"x", "y"}, "a" * 64) is None


def test_reduced_precision_needs_a_golden_reference(
    random_workflow_package: Path, tmp_path: Path
) -> None:
    import shutil

    from orstream.package.loading import read_card, write_card

    root = Path(shutil.copytree(random_workflow_package, tmp_path / "package"))
    card = read_card(root / "card.json")
    write_card(
        root, card.model_copy(update={"hashes": card.hashes.model_copy(update={"reference": None})})
    )
    (root / "reference.npz").unlink()
    with pytest.raises(OrstreamError, match="orstream export reference --package"):
        engine_graph(load_package(root), "fp16")


# --- the command --------------------------------------------------------------------------------


def test_graph_only_writes_the_checked_graph_without_tensorrt(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "graphs" / "fp16.onnx"
    argv = ["export", "trt", "--package", str(PACKAGES / "pitvis_workflow"), "--fp16"]
    assert main([*argv, "--graph-only", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"graph     {out}" in printed
    assert "fp16 graph, 0 layer(s) kept fp32; golden check on ONNX Runtime:" in printed
    assert tensor_types(onnx.load(out))
    assert main([*argv, "--graph-only", str(tmp_path / "fp16.plan")]) == 2
    assert "expected a .onnx file" in capsys.readouterr().err
