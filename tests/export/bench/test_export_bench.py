"""``orstream export bench``: every backend of the host side by side, from one run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from orstream.cli import main
from orstream.export.bench.backends import BackendConfig, backend_configs, max_abs_diff

SHIPPED = ("pitvis_workflow", "model"), ("imis_segmenter", "model"), ("imis_segmenter", "decoder")


@pytest.mark.parametrize(("package", "graph"), SHIPPED)
def test_json_holds_every_cpu_backend_with_percentiles_and_difference(
    project_root: Path, package: str, graph: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["export", "bench", "--package", str(project_root / "edge" / "packages" / package)]
    argv += ["--graph", graph, "--device", "cpu", "--iterations", "8", "--warmup", "1", "--json"]
    assert main(argv) == 0
    figures = json.loads(capsys.readouterr().out)
    assert list(figures)[:2] == ["onnxruntime-cpu", "torch-cpu-fp32"]
    for label, row in figures.items():
        assert set(row) == {"p50_ms", "p99_ms", "p999_ms", "fps", "max_abs_diff", "ratio_p50"}
        assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["p999_ms"], label
        assert row["fps"] > 0, label
    assert figures["onnxruntime-cpu"]["max_abs_diff"] == 0.0
    assert figures["onnxruntime-cpu"]["ratio_p50"] == 1.0
    # torch runs the same graph in fp32: it must agree with ONNX Runtime closely.
    assert figures["torch-cpu-fp32"]["max_abs_diff"] < 1e-3


def test_table_names_every_row_and_its_ratio(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = project_root / "edge" / "packages" / "pitvis_workflow"
    argv = ["export", "bench", "--package", str(package), "--device", "cpu"]
    assert main([*argv, "--iterations", "5", "--warmup", "0"]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].split()[:4] == ["backend", "p50", "ms", "p99"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"onnxruntime-cpu", "torch-cpu-fp32"}
    assert " 1.00x " in rows["onnxruntime-cpu"]
    assert "torch-cpu-fp32: timing 5 calls" in captured.err


def test_batch_rows_are_timed_beside_one_call_per_row(
    project_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = project_root / "edge" / "packages" / "imis_segmenter"
    argv = ["export", "bench", "--package", str(package), "--device", "cpu", "--batch", "3"]
    assert main([*argv, "--iterations", "4", "--warmup", "1", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    for label, row in figures.items():
        assert row["batch"] == 3, label
        assert row["frame_p50_ms"] == pytest.approx(row["p50_ms"] / 3)
        assert 0 < row["sequential_p50_ms"] <= row["sequential_p99_ms"]
        assert row["gain_p50"] == pytest.approx(row["sequential_p50_ms"] / row["p50_ms"])
    assert figures["torch-cpu-fp32"]["max_abs_diff"] < 1e-3
    assert main([*argv, "--iterations", "2", "--warmup", "0"]) == 0
    header, _, *rows = capsys.readouterr().out.splitlines()
    assert header.endswith("frame p50   3x1 p50   3x1 p99   gain")
    assert rows[0].startswith("onnxruntime-cpu") and rows[0].endswith("x")


def test_a_batch_beyond_the_package_is_refused(
    project_root: Path, batch_1_workflow_package: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = project_root / "edge" / "packages" / "pitvis_workflow"
    argv = ["export", "bench", "--device", "cpu", "--batch"]
    assert main([*argv, "9", "--package", str(package)]) == 2
    assert "--batch 9: pitvis_workflow takes 1 to 8 rows" in capsys.readouterr().err
    assert main([*argv, "2", "--package", str(batch_1_workflow_package)]) == 2
    assert "--batch 2: pitvis_workflow runs batch 1 only" in capsys.readouterr().err


def test_a_package_without_golden_reference_is_refused_in_one_line(
    project_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "workflow"
    shutil.copytree(project_root / "edge" / "packages" / "pitvis_workflow", package)
    card = json.loads((package / "card.json").read_text())
    card["hashes"].pop("reference")
    (package / "card.json").write_text(json.dumps(card))
    (package / "reference.npz").unlink()
    assert main(["export", "bench", "--package", str(package), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "no golden reference" in err and "orstream export reference" in err
    assert err.count("\n") == 1


def test_cuda_configurations_cover_every_precision_with_and_without_graphs() -> None:
    configs = backend_configs("cuda:1")
    assert configs[0] == BackendConfig("onnxruntime", "cpu")
    torch_cuda = {
        (c.options["precision"], c.options["cuda_graphs"])
        for c in configs
        if c.backend == "torch" and c.device == "cuda:1"
    }
    assert torch_cuda == {(p, g) for p in ("fp32", "fp16", "bf16") for g in (True, False)}
    assert BackendConfig("tensorrt", "cuda:1") in configs
    assert all(c.device == "cpu" for c in backend_configs(None))


def test_difference_is_infinite_when_outputs_do_not_line_up() -> None:
    a = {"x": np.zeros((1, 3), np.float32)}
    assert max_abs_diff(a, {"x": np.full((1, 3), 0.5)}) == 0.5
    assert max_abs_diff(a, {"y": np.zeros((1, 3))}) == float("inf")
    assert max_abs_diff(a, {"x": np.zeros((1, 4))}) == float("inf")
