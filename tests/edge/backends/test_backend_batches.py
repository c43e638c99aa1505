"""Backends on calls of several rows (streams stacked on axis 0) for packages with a dynamic
batch: rows as batch-1 calls give them, at most max_batch, the batched golden check, and
batch 1 only for packages that run batch 1; the torch backend's program per batch size on the
CPU, on torch's meta device (what CUDA runs) and, with a GPU, its CUDA graph per batch size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from project_paths import PACKAGES

from orstream.edge.backends.batching import backend_max_batch, batch_of
from orstream.edge.backends.null_backend import NullBackend
from orstream.edge.backends.onnx_torch_program import OnnxTorchProgram, read_onnx
from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.backends.reference_check import allowed_difference, check_reference
from orstream.edge.backends.torch_backend import TorchBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import ROW_TOLERANCE, batch_rows, stack_rows
from orstream.package.card import Graph
from orstream.package.loading import ModelPackage, load_package

GRAPHS: list[tuple[str, Graph]] = [
    ("pitvis_workflow", "model"),
    ("imis_segmenter", "model"),
    ("imis_segmenter", "decoder"),
]
TORCH_TOLERANCE = 1e-4
"""torch fp32 against ONNX Runtime, as in test_torch_backend.py beside this."""

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _package(name: str) -> ModelPackage:
    return load_package(PACKAGES / name)


def _rows(package: ModelPackage, graph: Graph, count: int) -> list[dict[str, np.ndarray]]:
    reference = package.reference(graph)
    assert reference is not None
    return batch_rows(reference.inputs, count, seed=count)


def _allowed(outputs: list[dict[str, np.ndarray]], name: str) -> float:
    return ROW_TOLERANCE * max(1.0, max(float(np.abs(row[name]).max()) for row in outputs))


@pytest.mark.parametrize(("name", "graph"), GRAPHS)
def test_onnxruntime_rows_are_batch_1_calls(name: str, graph: Graph) -> None:
    package = _package(name)
    assert package.card.dynamic_batch and package.card.max_batch == 8
    backend = OnnxRuntimeBackend(graph=graph)
    backend.load(package)
    assert backend.max_batch == 8
    for count in (2, 8):
        rows = _rows(package, graph, count)
        outputs = backend.infer(stack_rows(rows))
        singles = [backend.infer(row) for row in rows]
        for output, value in outputs.items():
            assert value.shape[0] == count
            for index, single in enumerate(singles):
                diff = np.abs(value[index : index + 1] - single[output]).max()
                assert diff <= _allowed(singles, output), (output, index)


def test_more_rows_than_max_batch_are_refused_in_one_line() -> None:
    package = _package("pitvis_workflow")
    backend = OnnxRuntimeBackend(max_batch=3)
    backend.load(package)
    assert backend.max_batch == 3
    with pytest.raises(OrstreamError) as info:
        backend.infer(stack_rows(_rows(package, "model", 4)))
    assert str(info.value) == "onnxruntime backend: a call of 4 rows; this backend takes 1 to 3"
    uneven = stack_rows(_rows(package, "model", 2))
    uneven["image"] = uneven["image"][:1]
    with pytest.raises(OrstreamError, match=r"inputs disagree on the batch \(axis 0\)"):
        backend.infer(uneven)


def test_a_package_that_runs_batch_1_takes_one_row(batch_1_workflow_package: Path) -> None:
    package = load_package(batch_1_workflow_package)
    assert not package.card.dynamic_batch
    backend = OnnxRuntimeBackend()
    backend.load(package)
    assert backend.max_batch == 1
    check = check_reference(backend, package)  # batch 1 only: no batched call
    assert check.max_abs_diff <= check.allowed
    with pytest.raises(
        OrstreamError, match=r"this backend takes 1 \(its package runs batch 1 only\)"
    ):
        backend.infer(stack_rows(_rows(package, "model", 2)))
    for backend_class in (OnnxRuntimeBackend, TorchBackend):
        with pytest.raises(OrstreamError, match=r"runs batch 1 only .* orstream export batch"):
            backend_class(max_batch=2).load(package)


def test_batching_helpers() -> None:
    package = _package("pitvis_workflow")
    assert backend_max_batch(package, None, "x") == 8
    assert backend_max_batch(package, 16, "x") == 16
    with pytest.raises(OrstreamError, match="x: max_batch must be at least 1, not 0"):
        backend_max_batch(package, 0, "x")
    assert batch_of({"a": np.zeros((3, 2)), "b": torch.zeros(3)}, 4, "x") == 3
    assert batch_of({}, 1, "x") == 1
    with pytest.raises(OrstreamError, match=r"x: input 'a' has no batch axis \(shape \[\]\)"):
        batch_of({"a": np.float32(1.0)}, 4, "x")


def test_the_null_backend_answers_every_row() -> None:
    package = _package("imis_segmenter")
    backend = NullBackend()
    backend.load(package)
    assert backend.max_batch == 8
    outputs = backend.infer(stack_rows(_rows(package, "model", 5)))
    assert outputs["image_embeddings"].shape == (5, 128, 18, 32)
    assert not outputs["image_embeddings"].any()


class _WrongPastTheFirstRow(OnnxRuntimeBackend):
    """Right at batch 1, wrong in every other row: what a broken batched kernel returns."""

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = super().infer(inputs)
        first = next(iter(outputs))
        outputs[first][1:] += np.float32(1.0)
        return outputs


def test_the_golden_check_runs_a_call_of_max_batch_rows() -> None:
    package = _package("pitvis_workflow")
    backend = _WrongPastTheFirstRow(max_batch=4)
    backend.load(package)
    with pytest.raises(OrstreamError) as info:
        check_reference(backend, package)
    message = str(info.value)
    assert message.startswith("golden check failed on onnxruntime-cpu at batch 4: output ")
    assert "differs by 1" in message
    right = OnnxRuntimeBackend(max_batch=1)
    right.load(package)
    wrong_but_single = _WrongPastTheFirstRow(max_batch=1)
    wrong_but_single.load(package)
    assert check_reference(wrong_but_single, package) == check_reference(right, package)


# --- torch ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "graph"), GRAPHS)
def test_torch_makes_a_program_per_batch_size_on_first_use(name: str, graph: Graph) -> None:
    package = _package(name)
    backend = TorchBackend(graph=graph)
    backend.load(package)
    assert backend.batches == (1,) and backend.max_batch == 8
    onnxruntime = OnnxRuntimeBackend(graph=graph)
    onnxruntime.load(package)
    for count in (3, 8, 3):
        inputs = stack_rows(_rows(package, graph, count))
        ours, theirs = backend.infer(inputs), onnxruntime.infer(inputs)
        for output, value in theirs.items():
            assert ours[output].shape == value.shape
            assert np.abs(ours[output] - value).max() <= TORCH_TOLERANCE, output
    assert backend.batches == (1, 3, 8)
    with pytest.raises(OrstreamError, match="a call of 9 rows; this backend takes 1 to 8"):
        backend.infer(stack_rows(_rows(package, graph, 9)))
    image = stack_rows(_rows(package, graph, 2))
    first = next(iter(image))
    image[first] = image[first][:, :1]
    with pytest.raises(OrstreamError, match=rf"input '{first}' has shape \[2, 1"):
        backend.infer(image)


def test_torch_golden_check_prepares_max_batch() -> None:
    package = _package("imis_segmenter")
    backend = TorchBackend(max_batch=4)
    backend.load(package)
    check = check_reference(backend, package)
    assert check.max_abs_diff <= TORCH_TOLERANCE
    assert backend.batches == (1, 4)


def test_programs_of_every_batch_size_share_the_weights_on_the_device() -> None:
    model = read_onnx(PACKAGES / "pitvis_workflow" / "model.onnx")
    package = _package("pitvis_workflow")
    inputs, _ = package.card.graph_tensors()
    shared: dict[str, torch.Tensor] = {}
    meta = torch.device("meta")
    programs = []
    for rows in (1, 5):
        shapes = {name: (rows, *shape[1:]) for name, (shape, _) in inputs.items()}
        programs.append(OnnxTorchProgram(model, shapes, meta, torch.float16, "test", shared))
        if rows == 1:
            weights = dict(shared)
    assert len(weights) > 50
    assert all(shared[name] is tensor for name, tensor in weights.items())
    assert all(
        tensor.device == meta and tensor.dtype in (torch.float16, torch.int64)
        for tensor in shared.values()
    )
    feeds = {
        name: torch.empty((5, *shape[1:]), dtype=torch.float16, device=meta)
        for name, (shape, _) in inputs.items()
    }
    with torch.inference_mode():
        outputs = programs[1](feeds)
    assert outputs["step_logits"].shape == (5, 15) and outputs["step_logits"].device == meta


@cuda
@pytest.mark.gpu
@pytest.mark.parametrize(("name", "graph"), GRAPHS)
def test_cuda_captures_a_graph_per_batch_size_on_first_use(name: str, graph: Graph) -> None:
    package = _package(name)
    backend = TorchBackend(graph=graph)
    backend.load(package, "cuda")
    assert backend.graphed and backend.batches == (1,)
    cpu = TorchBackend(graph=graph)
    cpu.load(package)
    for count in (2, 8, 2):
        inputs = stack_rows(_rows(package, graph, count))
        replayed, expected = backend.infer(inputs), cpu.infer(inputs)
        for output, reference in expected.items():
            allowed = allowed_difference(reference, "fp16")
            assert float(np.abs(replayed[output] - reference).max()) <= allowed, output
    assert backend.batches == (1, 2, 8)
    check = check_reference(backend, package, graph)  # batch 1 and 8 again, replayed
    print(f"{backend.label} {name} {graph} batched golden check: {check}")
    assert check.max_abs_diff <= check.allowed
