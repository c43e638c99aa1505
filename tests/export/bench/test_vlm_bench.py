"""`orstream bench vlm` on a tiny random vlm package: every runtime, mode and concurrency
timed, the same tokens decoded in each."""

import json
from pathlib import Path

import pytest

from orstream.cli import main
from orstream.export.bench.vlm_bench import bench_vlm
from tests.vlm_checkpoints import tiny_vlm_package


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vlm_package(tmp_path_factory.mktemp("vlm_bench"))


def test_every_configuration_is_timed(package: Path) -> None:
    report = bench_vlm(package, max_new_tokens=5, runs=2)
    assert set(report["runtimes"]) == {"onnx", "torch"}
    for figures in report["runtimes"].values():
        for mode in ("kv_cache", "recompute"):
            one, four = figures[f"1_request_{mode}"], figures[f"4_requests_{mode}"]
            assert (one["tokens"], four["tokens"]) == (2 * 5, 2 * 4 * 5)
            assert one["ttft_ms"]["p50"] <= one["ttft_ms"]["p99"]
            assert one["tokens_per_s"] > 0
        assert figures["kv_speedup_1"] > 0 and figures["kv_speedup_4"] > 0
    assert report["prompt_tokens"] > 3 * 2  # one clip's visual tokens and the question
    assert report["visual_ms"] is not None  # the tiny package records the shipped segmenter


def test_the_command_writes_its_json(package: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "vlm",
            "--package",
            str(package),
            "--json",
            str(out),
            "--runtimes",
            "onnx",
            "--max-new-tokens",
            "3",
            "--runs",
            "1",
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert set(report["runtimes"]) == {"onnx"} and report["max_new_tokens"] == 3
