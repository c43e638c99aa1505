"""The torch backend on the shipped packages and a random workflow package: what ONNX Runtime
gives, the golden references passed, cards that do not match refused, and the workflow runner's
steps unchanged; on CUDA (gpu marker) CUDA graphs, fp16 and bf16 within their tolerance."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from project_paths import PACKAGES

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.backends.reference_check import allowed_difference, check_reference
from orstream.edge.backends.torch_backend import TorchBackend
from orstream.edge.models.gpu_preprocess import TorchImagePreprocessor
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.edge.models.workflow_runner import WorkflowRunner
from orstream.errors import OrstreamError
from orstream.package.card import Graph
from orstream.package.loading import ModelPackage, load_package
from orstream.package.preprocess import ImagePreprocessor, image_spec, preprocessor_for
from orstream.segmentation.prompts import Prompt
from orstream.streams.phantom.source import PhantomSource

GRAPHS: list[tuple[str, Graph]] = [
    ("pitvis_workflow", "model"),
    ("imis_segmenter", "model"),
    ("imis_segmenter", "decoder"),
]
FP32_TOLERANCE = 1e-4
"""As test_onnx_torch.py beside this: measured at most 2.7e-5 (the decoder's masks) on the CPU."""

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _package(name: str) -> ModelPackage:
    return load_package(PACKAGES / name)


def _loaded(name: str, graph: Graph, device: str = "cpu", **options: object) -> TorchBackend:
    backend = TorchBackend(graph=graph, **options)  # type: ignore[arg-type]
    backend.load(_package(name), device)
    return backend


def _noisy_inputs(package: ModelPackage, graph: Graph, seed: int) -> dict[str, np.ndarray]:
    """The golden reference's inputs with noise added: inputs the reference has not seen."""
    reference = package.reference(graph)
    assert reference is not None
    rng = np.random.default_rng(seed)
    return {
        name: (value + rng.normal(0, 0.5, value.shape)).astype(value.dtype)
        for name, value in reference.inputs.items()
    }


def _max_diff(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    assert a.keys() == b.keys()
    return max(float(np.abs(a[name] - b[name]).max()) for name in a)


def _phantom_frames(count: int, seed: int = 5) -> list[np.ndarray]:
    source = PhantomSource(seed=seed, seconds=count, width=320, height=180, fps=1.0, paced=False)
    return [frame.image for frame in source.frames(limit=count)]


@pytest.mark.parametrize(("name", "graph"), GRAPHS)
def test_cpu_backend_matches_onnxruntime_and_passes_the_golden_check(
    name: str, graph: Graph
) -> None:
    package = _package(name)
    backend = _loaded(name, graph)
    assert backend.name == "torch"
    assert backend.label == "torch-cpu-fp32" and backend.precision == "fp32"
    check = check_reference(backend, package, graph)
    assert check.max_abs_diff <= FP32_TOLERANCE
    onnxruntime = OnnxRuntimeBackend(graph=graph)
    onnxruntime.load(package)
    inputs = _noisy_inputs(package, graph, seed=1)
    ours = backend.infer(inputs)
    theirs = onnxruntime.infer(inputs)
    assert all(value.dtype == np.float32 for value in ours.values())
    assert _max_diff(ours, theirs) <= FP32_TOLERANCE


def test_outputs_belong_to_the_caller_and_tensors_are_taken() -> None:
    package = _package("pitvis_workflow")
    backend = _loaded("pitvis_workflow", "model")
    inputs = _noisy_inputs(package, "model", seed=2)
    first = backend.infer(inputs)
    kept = {name: value.copy() for name, value in first.items()}
    for value in first.values():
        value[...] = 0
    again = backend.infer({name: torch.from_numpy(value) for name, value in inputs.items()})
    assert _max_diff(again, kept) == 0.0
    read_only = {
        name: np.lib.stride_tricks.as_strided(v, writeable=False) for name, v in inputs.items()
    }
    assert _max_diff(backend.infer(read_only), kept) == 0.0


def test_a_card_that_does_not_match_the_graph_is_refused() -> None:
    package = _package("pitvis_workflow")
    image = package.card.inputs[0]
    assert image.resize is not None
    resize = image.resize.model_copy(update={"height": 64, "width": 64})
    wrong = image.model_copy(update={"shape": (1, 3, 64, 64), "resize": resize})
    card = package.card.model_copy(update={"inputs": (wrong, *package.card.inputs[1:])})
    with pytest.raises(OrstreamError, match=r"does not match card.json.*'image'"):
        TorchBackend().load(ModelPackage(root=package.root, card=card))


def test_a_package_without_a_decoder_has_no_decoder_graph() -> None:
    with pytest.raises(OrstreamError, match="no prompt decoder"):
        TorchBackend(graph="decoder").load(_package("pitvis_workflow"))


def test_precision_and_device_mistakes_are_one_line() -> None:
    with pytest.raises(OrstreamError, match="unknown precision 'fp8'"):
        TorchBackend(precision="fp8")
    with pytest.raises(OrstreamError, match="runs fp16 on CUDA only"):
        TorchBackend(precision="fp16").load(_package("pitvis_workflow"), "cpu")
    with pytest.raises(OrstreamError, match="unknown device 'gpu'"):
        TorchBackend.unavailable_reason("gpu")
    assert TorchBackend.unavailable_reason("cpu") is None
    if not torch.cuda.is_available():
        reason = TorchBackend.unavailable_reason("cuda:0")
        assert reason is not None and "CUDA" in reason
        with pytest.raises(OrstreamError, match="torch cannot run on cuda"):
            TorchBackend().load(_package("pitvis_workflow"), "cuda")


def test_bad_inputs_are_refused() -> None:
    package = _package("imis_segmenter")
    with pytest.raises(OrstreamError, match="before load"):
        TorchBackend().infer({})
    backend = _loaded("imis_segmenter", "model")
    image = np.zeros((1, 3, 144, 256), np.float32)
    with pytest.raises(OrstreamError, match=r"inputs \[\] given, the graph takes \['image'\]"):
        backend.infer({})
    with pytest.raises(OrstreamError, match=r"input 'image' has shape \[1, 3, 144, 255\]"):
        backend.infer({"image": image[..., :255]})
    with pytest.raises(OrstreamError, match="input 'image' is float64, the graph takes float32"):
        backend.infer({"image": image.astype(np.float64)})
    with pytest.raises(OrstreamError, match="is a list"):
        backend.infer({"image": image.tolist()})  # type: ignore[dict-item]
    assert package.card.inputs[0].name == "image"


def test_on_the_cpu_frames_are_preprocessed_by_opencv() -> None:
    backend = _loaded("pitvis_workflow", "model")
    spec = image_spec(_package("pitvis_workflow").card)
    assert backend.image_preprocessor(spec) is None
    assert isinstance(preprocessor_for(backend, spec), ImagePreprocessor)
    with pytest.raises(OrstreamError, match="before load"):
        TorchBackend().image_preprocessor(spec)


def test_tensors_of_the_torch_preprocessor_give_the_numpy_path_outputs() -> None:
    package = _package("imis_segmenter")
    backend = _loaded("imis_segmenter", "model")
    spec = image_spec(package.card)
    frame = _phantom_frames(1)[0]
    from_tensor = backend.infer({"image": TorchImagePreprocessor(spec, "cpu")(frame)})
    from_array = backend.infer({"image": ImagePreprocessor(spec)(frame)})
    assert _max_diff(from_tensor, from_array) <= FP32_TOLERANCE


def test_workflow_runner_gives_the_same_steps_as_on_onnxruntime(
    random_workflow_package: Path,
) -> None:
    package = load_package(random_workflow_package)
    on_torch = TorchBackend()
    on_torch.load(package)
    on_onnxruntime = OnnxRuntimeBackend()
    on_onnxruntime.load(package)
    runners = [WorkflowRunner(b, package.card, min_dwell=1) for b in (on_torch, on_onnxruntime)]
    for index, frame in enumerate(_phantom_frames(12)):
        ours, theirs = (runner(frame, discontinuity=index == 6) for runner in runners)
        assert ours.step == theirs.step and ours.instruments == theirs.instruments
        np.testing.assert_allclose(ours.step_probs, theirs.step_probs, atol=1e-5)


def test_segmenter_on_torch_gives_the_masks_of_onnxruntime() -> None:
    package = _package("imis_segmenter")
    models = [
        SegmenterModel(
            package, _loaded("imis_segmenter", "model"), _loaded("imis_segmenter", "decoder")
        ),
        SegmenterModel.load(package),
    ]
    frame = _phantom_frames(1, seed=7)[0]
    prompt = Prompt(box=(40.0, 30.0, 200.0, 150.0))
    ours, theirs = (model.segment(model.embed(frame), prompt) for model in models)
    assert abs(ours.score - theirs.score) <= FP32_TOLERANCE
    assert (ours.mask != theirs.mask).mean() < 1e-3


# --- CUDA ------------------------------------------------------------------------------------


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize(("name", "graph"), GRAPHS)
def test_cuda_graphs_pass_the_golden_check(name: str, graph: Graph, precision: str) -> None:
    package = _package(name)
    backend = _loaded(name, graph, "cuda", precision=precision)
    assert backend.label == f"torch-cuda:0-{precision}-graphs" and backend.graphed
    check = check_reference(backend, package, graph)
    print(
        f"{backend.label} {name} {graph}: max abs diff {check.max_abs_diff:.3g} "
        f"({check.output}, allowed {check.allowed:.3g})"
    )
    if precision == "fp32":
        assert check.max_abs_diff <= FP32_TOLERANCE


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize(("name", "graph"), GRAPHS)
def test_replays_follow_new_inputs_and_match_op_by_op(name: str, graph: Graph) -> None:
    package = _package(name)
    graphed = _loaded(name, graph, "cuda")
    eager = _loaded(name, graph, "cuda", cuda_graphs=False)
    assert eager.label == "torch-cuda:0-fp16" and not eager.graphed
    cpu = _loaded(name, graph)
    previous: dict[str, np.ndarray] | None = None
    for seed in range(3):
        inputs = _noisy_inputs(package, graph, seed)
        replayed = graphed.infer(inputs)
        expected = cpu.infer(inputs)
        op_by_op = eager.infer(inputs)
        for output, reference in expected.items():
            allowed = allowed_difference(reference, "fp16")
            assert float(np.abs(replayed[output] - reference).max()) <= allowed, output
            # the same kernels, replayed or launched one by one
            assert float(np.abs(replayed[output] - op_by_op[output]).max()) <= allowed / 10
        if previous is not None:
            # a replay that kept the last call's inputs would be caught: the inputs matter
            assert _max_diff(previous, expected) > max(
                allowed_difference(reference, "fp16") for reference in expected.values()
            )
        previous = expected


@cuda
@pytest.mark.gpu
def test_gpu_preprocessed_frames_go_straight_in(random_workflow_package: Path) -> None:
    package = load_package(random_workflow_package)
    gpu = TorchBackend()
    gpu.load(package, "cuda")
    cpu = TorchBackend()
    cpu.load(package)
    runners = [WorkflowRunner(b, package.card, min_dwell=1) for b in (gpu, cpu)]
    assert isinstance(runners[0].preprocess, TorchImagePreprocessor)
    assert runners[0].preprocess.dtype == torch.float16
    for frame in _phantom_frames(8):
        ours, theirs = (runner(frame) for runner in runners)
        np.testing.assert_allclose(ours.step_probs, theirs.step_probs, atol=2e-2)


@cuda
@pytest.mark.gpu
def test_a_missing_gpu_index_is_a_reason() -> None:
    count = torch.cuda.device_count()
    reason = TorchBackend.unavailable_reason(f"cuda:{count}")
    assert reason is not None and "does not exist" in reason


def test_tf32_stays_off_until_the_last_fp32_call_ends() -> None:
    from orstream.edge.backends.torch_backend import _ieee_fp32

    def flags() -> tuple[bool, bool]:
        return torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32

    before = flags()
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
    try:
        first_in, second_in, first_out = (threading.Event() for _ in range(3))
        seen: dict[str, tuple[bool, bool]] = {}

        def first() -> None:
            with _ieee_fp32(True):
                first_in.set()
                second_in.wait(5)
            first_out.set()

        def second() -> None:
            first_in.wait(5)
            with _ieee_fp32(True):
                second_in.set()
                first_out.wait(5)
                seen["after the first ended"] = flags()
            seen["after both"] = flags()

        threads = [threading.Thread(target=f) for f in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        assert seen == {"after the first ended": (False, False), "after both": (True, True)}
        with _ieee_fp32(False):
            assert flags() == (True, True)  # fp16/bf16 calls leave the flags alone
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = before
