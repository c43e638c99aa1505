"""Golden references: written by the export and `orstream export reference`, verified by
load_package, and reproduced by a backend before it serves (check_reference)."""

from __future__ import annotations

import io
import json
import logging
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from project_paths import PACKAGES

from orstream.cli import main
from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.backends.reference_check import (
    TOLERANCES,
    allowed_difference,
    check_reference,
)
from orstream.errors import OrstreamError
from orstream.package.card import CARD_FILE, DECODER_INPUTS, IMAGE_EMBEDDINGS, REFERENCE_FILE, Graph
from orstream.package.loading import ModelPackage, load_package, sha256_file

WORKFLOW = PACKAGES / "pitvis_workflow"
SEGMENTER = PACKAGES / "imis_segmenter"


class PerturbedBackend:
    """A real backend whose one output is shifted by ``delta``: what a wrong engine returns."""

    name = "perturbed"

    def __init__(self, inner: OnnxRuntimeBackend, output: str, delta: float, precision: str):
        self.inner = inner
        self.output = output
        self.delta = delta
        self.precision = precision
        self.label = f"{inner.label}-perturbed"
        self.max_batch = inner.max_batch

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.inner.infer(inputs)
        outputs[self.output] = outputs[self.output] + np.float32(self.delta)
        return outputs


def _loaded(package: ModelPackage, graph: Graph = "model") -> OnnxRuntimeBackend:
    backend = OnnxRuntimeBackend(intra_op_threads=1, graph=graph)
    backend.load(package)
    return backend


@pytest.fixture(scope="module")
def workflow() -> ModelPackage:
    return load_package(WORKFLOW)


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(WORKFLOW, tmp_path / "pitvis_workflow"))


def test_shipped_packages_carry_a_reference_of_every_graph(workflow: ModelPackage) -> None:
    segmenter = load_package(SEGMENTER)
    cases: list[tuple[ModelPackage, tuple[Graph, ...]]] = [
        (workflow, ("model",)),
        (segmenter, ("model", "decoder")),
    ]
    for package, graphs in cases:
        assert package.card.hashes.reference == sha256_file(package.root / REFERENCE_FILE)
        for graph in graphs:
            reference = package.reference(graph)
            assert reference is not None
            inputs, outputs = package.card.graph_tensors(graph)
            assert list(reference.inputs) == list(inputs)
            assert list(reference.outputs) == list(outputs)
    model = segmenter.reference("model")
    decoder = segmenter.reference("decoder")
    assert model is not None and decoder is not None
    # the decoder is fed the encoder's embedding of the same frame, and a box prompt only
    np.testing.assert_array_equal(decoder.inputs[IMAGE_EMBEDDINGS], model.outputs[IMAGE_EMBEDDINGS])
    flags = {name: float(decoder.inputs[name][0]) for name in ("has_box", "has_mask", "has_text")}
    assert flags == {"has_box": 1.0, "has_mask": 0.0, "has_text": 0.0}
    x0, y0, x1, y1 = decoder.inputs["boxes"][0]
    height, width = segmenter.card.inputs[0].shape[2:]
    assert 0 <= x0 < x1 < width and 0 <= y0 < y1 < height
    assert list(decoder.inputs) == list(DECODER_INPUTS)


def test_reference_inputs_are_a_preprocessed_frame_and_the_initial_state(
    workflow: ModelPackage,
) -> None:
    reference = workflow.reference("model")
    assert reference is not None
    image = reference.inputs["image"]
    spec = workflow.card.inputs[0]
    assert spec.mean is not None and spec.std is not None
    # inverting the card's normalisation gives pixel values of a real (not blank) frame
    pixels = image[0] * np.array(spec.std)[:, None, None] + np.array(spec.mean)[:, None, None]
    assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    assert pixels.std() > 0.05
    for name, value in workflow.card.initial_state().items():
        np.testing.assert_array_equal(reference.inputs[name], value)


@pytest.mark.parametrize("package_dir,graph", [(WORKFLOW, "model"), (SEGMENTER, "decoder")])
def test_onnxruntime_passes_the_golden_check(package_dir: Path, graph: Graph) -> None:
    package = load_package(package_dir)
    check = check_reference(_loaded(package, graph), package, graph)
    assert check.max_abs_diff <= check.allowed
    assert check.output in package.card.graph_tensors(graph)[1]


def test_a_perturbed_output_fails_the_check_in_one_line(workflow: ModelPackage) -> None:
    reference = workflow.reference()
    assert reference is not None
    allowed = allowed_difference(reference.outputs["step_logits"], "fp32")
    wrong = PerturbedBackend(_loaded(workflow), "step_logits", 0.31, "fp32")
    with pytest.raises(OrstreamError) as info:
        check_reference(wrong, workflow)
    assert str(info.value) == (
        f"golden check failed on onnxruntime-cpu-perturbed: output step_logits differs by "
        f"0.31 (allowed {allowed:.3g})"
    )
    # the same shift is within what an fp16 backend is allowed
    loose = PerturbedBackend(_loaded(workflow), "step_logits", 0.01, "fp16")
    check = check_reference(loose, workflow)
    assert check.output == "step_logits"
    assert check.max_abs_diff == pytest.approx(0.01, rel=1e-3)


def test_nan_outputs_fail_the_check(workflow: ModelPackage) -> None:
    wrong = PerturbedBackend(_loaded(workflow), "instrument_logits", math.nan, "int8")
    with pytest.raises(OrstreamError, match="output instrument_logits differs by inf"):
        check_reference(wrong, workflow)


def test_tolerance_follows_precision_and_the_reference_scale() -> None:
    logits = np.array([[-4.0, 2.0, 0.5]], np.float32)
    for precision, (atol, rtol) in TOLERANCES.items():
        assert allowed_difference(logits, precision) == pytest.approx(atol + rtol * 4.0)
    assert allowed_difference(logits, "fp32") < allowed_difference(logits, "fp16")
    assert allowed_difference(logits, "fp16") < allowed_difference(logits, "bf16")
    assert allowed_difference(logits, "bf16") < allowed_difference(logits, "int8")
    assert allowed_difference(np.array([3, -7], np.int64), "int8") == 0.0
    with pytest.raises(OrstreamError, match="unknown precision 'fp8'"):
        allowed_difference(logits, "fp8")


def test_a_tampered_reference_is_refused_by_load_package(workflow_copy: Path) -> None:
    path = workflow_copy / REFERENCE_FILE
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(OrstreamError, match=f"{REFERENCE_FILE} does not match {CARD_FILE}"):
        load_package(workflow_copy)
    path.unlink()
    with pytest.raises(OrstreamError, match=f"has no {REFERENCE_FILE}$"):
        load_package(workflow_copy)


def test_without_a_reference_the_check_passes_with_a_warning(
    workflow_copy: Path, caplog: pytest.LogCaptureFixture
) -> None:
    card = json.loads((workflow_copy / CARD_FILE).read_text())
    del card["hashes"]["reference"]  # a card written before references existed
    (workflow_copy / CARD_FILE).write_text(json.dumps(card))
    (workflow_copy / REFERENCE_FILE).unlink()
    package = load_package(workflow_copy)
    assert package.reference() is None
    with caplog.at_level(logging.WARNING, logger="orstream.edge.backends"):
        check = check_reference(_loaded(package), package)
    assert math.isnan(check.max_abs_diff)
    assert "has no golden reference" in caplog.text


def test_a_reference_of_other_tensors_is_refused(workflow_copy: Path, tmp_path: Path) -> None:
    path = workflow_copy / REFERENCE_FILE
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    del arrays["model.out.step_logits"]
    np.savez(tmp_path / "other.npz", **arrays)
    shutil.copy(tmp_path / "other.npz", path)
    card = json.loads((workflow_copy / CARD_FILE).read_text())
    card["hashes"]["reference"] = sha256_file(path)
    (workflow_copy / CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(OrstreamError, match=r"holds model outputs .* export reference"):
        load_package(workflow_copy).reference()


def test_the_command_rewrites_a_damaged_reference_byte_for_byte(
    workflow_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = workflow_copy / REFERENCE_FILE
    original = path.read_bytes()
    path.write_bytes(b"damaged")
    assert main(["export", "reference", "--package", str(workflow_copy)]) == 0
    out = capsys.readouterr().out
    assert "step_logits [1, 15]" in out and "phantom frame" in out
    rewritten = path.read_bytes()
    with np.load(io.BytesIO(original)) as before, np.load(io.BytesIO(rewritten)) as after:
        assert before.files == after.files
        for name in before.files:
            if ".in." in name:  # the same phantom frame, pre-processed the same way
                np.testing.assert_array_equal(after[name], before[name])
            else:  # another CPU's kernels may round an output's last bit otherwise
                np.testing.assert_allclose(after[name], before[name], rtol=0, atol=1e-5)
    assert load_package(workflow_copy).card.hashes.reference == sha256_file(path)
    # on one machine the reference is written byte for byte the same
    assert main(["export", "reference", "--package", str(workflow_copy)]) == 0
    assert path.read_bytes() == rewritten


def test_the_export_writes_a_reference_onnxruntime_reproduces(
    random_workflow_package: Path,
) -> None:
    package = load_package(random_workflow_package)
    assert package.reference() is not None
    check = check_reference(_loaded(package), package)
    assert check.max_abs_diff <= 1e-5


def test_the_segmenter_export_writes_a_reference_of_both_graphs(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    from segmenter_checkpoints import random_segmenter_package

    package = load_package(random_segmenter_package(tmp_path_factory.getbasetemp()))
    graphs: tuple[Graph, ...] = ("model", "decoder")
    for graph in graphs:
        check = check_reference(_loaded(package, graph), package, graph)
        assert check.max_abs_diff <= 1e-5
