"""The ONNX Runtime backend on a small stateful graph built here, whose outputs numpy can compute.

The graph: ``m = mean(image over H, W)`` [1, 3];
``step_logits = m @ W + sum(state_in.h over its last axis)`` [1, 2];
``instrument_logits = -step_logits``; ``state_out.h = state_in.h + m`` (broadcast) [1, 2, 3].
The exported workflow recognizer runs through the same backend in
tests/export/onnx/models/test_onnx_export.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from orstream.edge.backends import OnnxRuntimeBackend, create_backend
from orstream.errors import OrstreamError
from orstream.package.card import (
    MODEL_FILE,
    Clip,
    ExportInfo,
    Hashes,
    InputSpec,
    Label,
    ModelCard,
    OutputSpec,
    Resize,
    StateSpec,
)
from orstream.package.loading import ModelPackage, load_package, sha256_file, write_card

WEIGHTS = np.array([[1.0, -2.0], [0.5, 0.25], [-1.5, 3.0]], dtype=np.float32)
HAS_CUDA_EP = "CUDAExecutionProvider" in ort.get_available_providers()


def _graph() -> onnx.ModelProto:
    nodes = [
        helper.make_node("ReduceMean", ["image", "hw"], ["m"], keepdims=0),
        helper.make_node("MatMul", ["m", "W"], ["mw"]),
        helper.make_node("ReduceSum", ["state_in.h", "last"], ["hs"], keepdims=0),
        helper.make_node("Add", ["mw", "hs"], ["step_logits"]),
        helper.make_node("Neg", ["step_logits"], ["instrument_logits"]),
        helper.make_node("Unsqueeze", ["m", "one"], ["m1"]),
        helper.make_node("Add", ["state_in.h", "m1"], ["state_out.h"]),
    ]
    initializers = [
        numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "hw"),
        numpy_helper.from_array(np.array([2], dtype=np.int64), "last"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "one"),
        numpy_helper.from_array(WEIGHTS, "W"),
    ]
    f32 = TensorProto.FLOAT
    graph = helper.make_graph(
        nodes,
        "tiny_stateful",
        [
            helper.make_tensor_value_info("image", f32, [1, 3, 4, 4]),
            helper.make_tensor_value_info("state_in.h", f32, [1, 2, 3]),
        ],
        [
            helper.make_tensor_value_info("step_logits", f32, [1, 2]),
            helper.make_tensor_value_info("instrument_logits", f32, [1, 2]),
            helper.make_tensor_value_info("state_out.h", f32, [1, 2, 3]),
        ],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(model, full_check=True)
    return model


def _card(model_sha256: str) -> ModelCard:
    labels = tuple(Label(index=i, code=i, name=f"class{i}") for i in range(2))
    return ModelCard(
        name="tiny_stateful",
        task="test",
        version="1",
        inputs=(
            InputSpec(
                name="image",
                shape=(1, 3, 4, 4),
                dtype="float32",
                layout="NCHW",
                color="RGB",
                resize=Resize(height=4, width=4),
                scale=255.0,
                mean=(0.5, 0.5, 0.5),
                std=(0.5, 0.5, 0.5),
            ),
        ),
        outputs=(
            OutputSpec(
                name="step_logits",
                shape=(1, 2),
                dtype="float32",
                meaning="steps",
                activation="softmax",
                labels="classes",
            ),
            OutputSpec(
                name="instrument_logits",
                shape=(1, 2),
                dtype="float32",
                meaning="instruments",
                activation="sigmoid",
                labels="classes",
            ),
        ),
        labels={"classes": labels},
        clip=Clip(length=1, stride=1, fps=1.0),
        state=(
            StateSpec(
                name="h", input="state_in.h", output="state_out.h", shape=(1, 2, 3), dtype="float32"
            ),
        ),
        thresholds={"instrument_logits": 0.5},
        hashes=Hashes(model_onnx=model_sha256),
        export=ExportInfo(
            exporter="onnx.helper",
            opset=18,
            torch_version="-",
            onnx_version=onnx.__version__,
            onnxruntime_version=ort.__version__,
        ),
    )


@pytest.fixture
def package(tmp_path: Path) -> ModelPackage:
    folder = tmp_path / "pkg"
    folder.mkdir()
    onnx.save_model(_graph(), folder / MODEL_FILE)
    write_card(folder, _card(sha256_file(folder / MODEL_FILE)))
    return load_package(folder)


def _reference_step(image: np.ndarray, state: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    m = image.astype(np.float64).mean(axis=(2, 3))
    step = m @ WEIGHTS.astype(np.float64) + state.astype(np.float64).sum(axis=2)
    return step, state + m[:, None, :]


def test_streaming_carries_state_like_the_reference(package: ModelPackage) -> None:
    backend = OnnxRuntimeBackend()
    backend.load(package)
    assert backend.providers == ["CPUExecutionProvider"]
    assert 1 <= backend.intra_op_threads <= 4
    rng = np.random.default_rng(3)
    state = package.card.initial_state()
    reference_state = np.zeros((1, 2, 3))
    for _ in range(5):
        image = rng.normal(size=(1, 3, 4, 4)).astype(np.float32)
        outputs = backend.infer({"image": image, **state})
        assert list(outputs) == ["step_logits", "instrument_logits", "state_out.h"]
        reference_step, reference_state = _reference_step(image, reference_state)
        np.testing.assert_allclose(outputs["step_logits"], reference_step, atol=1e-5)
        np.testing.assert_allclose(outputs["instrument_logits"], -reference_step, atol=1e-5)
        np.testing.assert_allclose(outputs["state_out.h"], reference_state, atol=1e-5)
        state = package.card.next_state(outputs)
    assert np.abs(reference_state).sum() > 0


def _replace_model(package: ModelPackage, data: bytes, update_card_hash: bool) -> None:
    package.model_path.write_bytes(data)
    if update_card_hash:
        card = package.card.model_copy(
            update={"hashes": Hashes(model_onnx=sha256_file(package.model_path))}
        )
        write_card(package.root, card)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_model_is_refused_by_package_and_backend(
    package: ModelPackage, damage: str
) -> None:
    original = package.model_path.read_bytes()
    data = (
        np.random.default_rng(1).integers(0, 256, len(original), dtype=np.uint8).tobytes()
        if damage == "garbage"
        else original[: len(original) // 2]
    )
    _replace_model(package, data, update_card_hash=False)
    with pytest.raises(OrstreamError, match=r"does not match card\.json"):
        load_package(package.root)
    # With the card's hash updated the files agree, so the backend must spot the damage itself.
    _replace_model(package, data, update_card_hash=True)
    reloaded = load_package(package.root)
    with pytest.raises(OrstreamError, match=r"model.onnx is not a valid ONNX model") as info:
        OnnxRuntimeBackend().load(reloaded)
    assert "\n" not in str(info.value)


def _edit_card(package: ModelPackage, edit: dict[str, object]) -> ModelPackage:
    card = json.loads(package.card_path.read_text())
    for dotted, value in edit.items():
        *path, key = dotted.split(".")
        target = card
        for part in path:
            target = target[int(part)] if part.isdigit() else target[part]
        target[key] = value
    package.card_path.write_text(json.dumps(card))
    return load_package(package.root)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            {
                "inputs.0.shape": [1, 3, 8, 8],
                "inputs.0.resize.height": 8,
                "inputs.0.resize.width": 8,
            },
            "input 'image' has shape [1, 3, 4, 4] in the graph, [1, 3, 8, 8] in the card",
        ),
        ({"state.0.output": "state_out.hidden"}, "graph outputs ['step_logits'"),
        ({"state.0.dtype": "float16"}, "input 'state_in.h' is float32 in the graph, float16"),
    ],
)
def test_card_that_disagrees_with_the_graph_is_refused(
    package: ModelPackage, edit: dict[str, object], message: str
) -> None:
    edited = _edit_card(package, edit)
    assert edited.card.hashes.model_onnx == sha256_file(edited.model_path)
    with pytest.raises(OrstreamError, match=r"model\.onnx does not match card\.json") as info:
        OnnxRuntimeBackend().load(edited)
    assert message in str(info.value)


def test_bad_inputs_to_infer_are_clear_errors(package: ModelPackage) -> None:
    backend = OnnxRuntimeBackend(intra_op_threads=1)
    with pytest.raises(OrstreamError, match="before load"):
        backend.infer({})
    backend.load(package)
    image = np.zeros((1, 3, 4, 4), dtype=np.float32)
    with pytest.raises(OrstreamError, match=r"inputs \['image'\] given"):
        backend.infer({"image": image})
    with pytest.raises(OrstreamError, match=r"onnxruntime backend:.*dimensions"):
        backend.infer({"image": np.zeros((1, 3, 5, 4), np.float32), **package.card.initial_state()})


def test_create_backend_picks_by_preference_and_availability(package: ModelPackage) -> None:
    backend = create_backend(["onnxruntime"], package)
    assert backend.name == "onnxruntime"
    assert "state_out.h" in backend.infer(
        {"image": np.ones((1, 3, 4, 4), np.float32), **package.card.initial_state()}
    )
    with pytest.raises(OrstreamError, match=r"unknown backend 'tensorrt9'"):
        create_backend(["tensorrt9", "onnxruntime"], package)
    with pytest.raises(OrstreamError, match="unknown device 'tpu'"):
        create_backend(["onnxruntime"], package, device="tpu")


@pytest.mark.skipif(HAS_CUDA_EP, reason="this onnxruntime has a CUDAExecutionProvider")
def test_cuda_without_cuda_provider_is_refused(package: ModelPackage) -> None:
    with pytest.raises(OrstreamError, match=r"no backend can run .*: onnxruntime: .*CUDA"):
        create_backend(["onnxruntime"], package, device="cuda")
    with pytest.raises(OrstreamError, match="onnxruntime cannot run on cuda:0"):
        OnnxRuntimeBackend().load(package, device="cuda:0")


@pytest.mark.gpu
@pytest.mark.skipif(not HAS_CUDA_EP, reason="needs onnxruntime with CUDAExecutionProvider")
def test_cuda_provider_matches_cpu(package: ModelPackage) -> None:
    cpu, cuda = OnnxRuntimeBackend(), OnnxRuntimeBackend()
    cpu.load(package)
    cuda.load(package, device="cuda")
    assert cuda.providers[0] == "CUDAExecutionProvider"
    inputs = {
        "image": np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32),
        **package.card.initial_state(),
    }
    for name, value in cpu.infer(inputs).items():
        np.testing.assert_allclose(cuda.infer(inputs)[name], value, atol=1e-5)
