"""create_backend: preference order, availability, loading and the golden check, on the shipped
packages with real backends."""

from __future__ import annotations

import importlib.util
import logging

import numpy as np
import pytest
from project_paths import PACKAGES

from orstream.edge.backends import BACKENDS, create_backend, parse_preference
from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.errors import OrstreamError
from orstream.package.card import Graph
from orstream.package.loading import ModelPackage, load_package


class PerturbedOnnxRuntime(OnnxRuntimeBackend):
    """ONNX Runtime with its first output shifted: a backend that loads and runs but is wrong."""

    name = "perturbed"

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = super().infer(inputs)
        first = next(iter(outputs))
        outputs[first] = outputs[first] + np.float32(1.0)
        return outputs


@pytest.fixture(scope="module")
def workflow() -> ModelPackage:
    return load_package(PACKAGES / "pitvis_workflow")


@pytest.fixture
def perturbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(BACKENDS, "perturbed", (__name__, "PerturbedOnnxRuntime"))


def test_the_first_backend_that_works_is_chosen(
    workflow: ModelPackage, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="orstream.edge.backends"):
        backend = create_backend(["onnxruntime", "null"], workflow)
    assert backend.name == "onnxruntime"
    assert backend.selection == "onnxruntime-cpu"
    assert "pitvis_workflow model graph runs on onnxruntime-cpu" in caplog.text
    null = create_backend(["null", "onnxruntime"], workflow)
    assert null.name == "null"  # zeros are not held to the reference: nothing to compare


def test_unavailable_backends_are_passed_over_with_their_reasons(workflow: ModelPackage) -> None:
    backend = create_backend(["tensorrt", "null:cuda", "onnxruntime"], workflow)
    assert backend.label == "onnxruntime-cpu"
    selection: str = backend.selection
    head, _, reasons = selection.partition(" (")
    assert head == "onnxruntime-cpu"
    entries = [reason.split(": ", 1)[0] for reason in reasons.rstrip(")").split("; ")]
    assert entries == ["tensorrt", "null:cuda"]
    assert "null:cuda: the null backend runs on cpu only" in selection


def test_a_failing_golden_check_falls_through_to_the_next(
    workflow: ModelPackage, perturbed: None
) -> None:
    backend = create_backend(["perturbed", "onnxruntime"], workflow)
    assert backend.name == "onnxruntime"
    selection: str = backend.selection
    assert selection.startswith(
        "onnxruntime-cpu (perturbed: golden check failed on onnxruntime-cpu: output "
        "step_logits differs by 1 (allowed "
    )


def test_unknown_names_and_devices_are_refused_before_anything_loads(
    workflow: ModelPackage,
) -> None:
    with pytest.raises(OrstreamError, match=r"unknown backend 'tensorrt9' in 'tensorrt9:cuda'"):
        create_backend(["onnxruntime", "tensorrt9:cuda"], workflow)
    with pytest.raises(OrstreamError, match=r"unknown device 'gpu'"):
        create_backend(["onnxruntime:gpu"], workflow)
    with pytest.raises(OrstreamError, match="no backend given"):
        create_backend([], workflow)
    assert parse_preference("torch:cuda:1", "cpu") == ("torch", "cuda:1")
    assert parse_preference("onnxruntime", "cuda") == ("onnxruntime", "cuda")


def test_when_none_works_every_reason_is_listed(workflow: ModelPackage, perturbed: None) -> None:
    with pytest.raises(OrstreamError) as info:
        create_backend(["null:cuda", "perturbed"], workflow)
    message = str(info.value)
    assert message.startswith(f"no backend can run the model graph of {workflow.root}: ")
    assert "null:cuda: the null backend runs on cpu only; perturbed: golden check failed" in message
    assert "\n" not in message


def test_a_missing_decoder_is_a_reason_not_a_crash(workflow: ModelPackage) -> None:
    with pytest.raises(OrstreamError, match=r"onnxruntime: .* has no prompt decoder"):
        create_backend(["onnxruntime"], workflow, graph="decoder")


def test_the_segmenter_chooses_a_backend_per_graph(perturbed: None) -> None:
    package = load_package(PACKAGES / "imis_segmenter")
    model = SegmenterModel.load(package, backends=["perturbed", "onnxruntime"])
    graphs: tuple[Graph, ...] = ("model", "decoder")
    for backend, graph in zip((model.encoder, model.decoder), graphs, strict=True):
        assert backend.name == "onnxruntime"
        assert getattr(backend, "graph") == graph  # noqa: B009 - not part of the protocol
    assert model.selection.startswith("encoder onnxruntime-cpu (perturbed: golden check failed")
    assert "; decoder onnxruntime-cpu (perturbed: golden check failed" in model.selection
    assert "output masks differs" in model.selection


@pytest.mark.skipif(
    importlib.util.find_spec("orstream.edge.backends.torch_backend") is None,
    reason="the torch backend is not in this tree",
)
def test_torch_on_cpu_passes_the_golden_check(workflow: ModelPackage) -> None:
    backend = create_backend(["torch:cpu"], workflow)
    assert backend.label.startswith("torch-cpu")


def test_a_backend_whose_library_is_missing_says_how_to_install_it(
    workflow: ModelPackage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(BACKENDS, "torch", ("orstream.edge.backends.no_such_torch", "Backend"))
    with pytest.raises(OrstreamError) as raised:
        create_backend(["torch:cpu"], workflow)
    assert "cannot import the torch backend" in str(raised.value)
    assert "pip install 'orstream[edge-gpu]'" in str(raised.value)
