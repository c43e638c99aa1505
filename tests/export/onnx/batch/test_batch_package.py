"""`orstream export batch`: a package traced at batch 1 gets graphs with a dynamic batch, proved
on ONNX Runtime before they replace the old ones; anything that fails leaves the package as it
was."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from project_paths import PACKAGES

from orstream.cli import main
from orstream.edge.backends import create_backend
from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.onnx.batch import batch_check
from orstream.export.onnx.batch.batch_check import batch_rows, stack_rows
from orstream.export.onnx.batch.batch_package import convert_package
from orstream.package.loading import load_package, sha256_file


def _files(root: Path) -> dict[str, str]:
    return {path.name: sha256_file(path) for path in sorted(root.iterdir())}


@pytest.fixture
def package(batch_1_workflow_package: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(batch_1_workflow_package, tmp_path / "workflow"))


def test_the_command_converts_proves_and_reports(
    package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = load_package(package)
    assert not before.card.dynamic_batch and before.card.max_batch == 1
    reference = package.joinpath("reference.npz").read_bytes()
    assert main(["export", "batch", "--package", str(package), "--max-batch", "4"]) == 0
    out = capsys.readouterr().out
    after = load_package(package)
    card = after.card
    assert card.dynamic_batch and card.max_batch == 4 and card.export.batch == "dynamic"
    assert card.hashes.model_onnx == sha256_file(after.model_path) != before.card.hashes.model_onnx
    assert package.joinpath("reference.npz").read_bytes() == reference
    assert card.model_copy(update={"export": before.card.export, "hashes": before.card.hashes}) == (
        before.card
    )
    assert f"package   {package}  batch dynamic, max_batch 4" in out
    assert "model.onnx: 1 node(s) rewritten" in out
    assert "Reshape '/Reshape_1': shape [1, 1, -1] -> [-1, 1, 1024]" in out
    assert "golden check at batch 1 and 4" in out and "4 different rows vs batch-1 calls" in out
    assert sorted(p.name for p in package.parent.iterdir()) == ["workflow"]
    # the edge runs it at batch 1 as before and at up to 4 rows
    backend = create_backend(["onnxruntime"], after)
    assert backend.max_batch == 4
    reference_inputs = after.reference()
    assert reference_inputs is not None
    rows = backend.infer(stack_rows(batch_rows(reference_inputs.inputs, 4)))
    assert rows["step_logits"].shape == (4, 15)


def test_the_rows_are_those_of_the_batch_1_graph(package: Path) -> None:
    original = OnnxRuntimeBackend()
    original.load(load_package(package))
    result = convert_package(package, max_batch=3)
    assert [graph.graph for graph in result.graphs] == ["model"]
    proved = result.graphs[0]
    assert proved.rows.batch == 3 and proved.rows.max_abs_diff <= proved.rows.allowed
    assert proved.golden.max_abs_diff <= proved.golden.allowed
    converted = OnnxRuntimeBackend()
    converted.load(result.package)
    reference = result.package.reference()
    assert reference is not None
    feeds = batch_rows(reference.inputs, 3, seed=7)
    outputs = converted.infer(stack_rows(feeds))
    for row, feed in enumerate(feeds):
        for name, value in original.infer(feed).items():
            np.testing.assert_allclose(outputs[name][row : row + 1], value, atol=1e-5)


def test_a_failed_check_leaves_the_package_as_it_was(
    package: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = _files(package)
    monkeypatch.setattr(batch_check, "ROW_TOLERANCE", 0.0)
    with pytest.raises(
        OrstreamError,
        match=r"model graph at batch 8: row \d of output \S+ differs from a batch-1 call",
    ):
        convert_package(package)
    assert _files(package) == before
    assert sorted(p.name for p in package.parent.iterdir()) == ["workflow"]


def test_refusals_are_one_line(package: Path, tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="--max-batch must be at least 2, not 1"):
        convert_package(package, max_batch=1)
    convert_package(package, max_batch=2)
    with pytest.raises(OrstreamError, match=r"already takes a dynamic batch \(max_batch 2\)"):
        convert_package(package)
    with pytest.raises(OrstreamError, match=r"already takes a dynamic batch \(max_batch 8\)"):
        convert_package(PACKAGES / "pitvis_workflow")
    with pytest.raises(OrstreamError, match="not found"):
        convert_package(tmp_path / "absent")
