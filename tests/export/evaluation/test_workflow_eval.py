"""`orstream eval workflow` on tiny phantom cases of three lengths with the shipped recognizer:
the same scores as `orstream eval pitvis` on the predictions it writes, one sampled frame per
second, length buckets, per-class F1 worked by hand, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runs import run_cli

from orstream.errors import OrstreamError
from orstream.export.evaluation.workflow import bucket_label, class_f1, parse_bucket_edges
from orstream.labels import UNUSED_SLOT
from orstream.streams.phantom.writer import PhantomSpec, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("workflow_eval")
    spec = PhantomSpec(3, 20, seed=23, width=192, height=112, fps=4.0, max_seconds=40)
    write_dataset(spec, root)
    return root


def test_scores_match_eval_pitvis_on_the_predictions_it_writes(
    dataset: Path, tmp_path: Path
) -> None:
    pred = tmp_path / "pred"
    code, out, err = run_cli(
        "eval", "workflow", "--data", str(dataset), "--buckets", "25,35", "--pred", str(pred),
        "--json",
    )  # fmt: skip
    assert code == 0, err
    report = json.loads(out)
    assert [case["seconds"] for case in report["per_video"].values()] == [20, 30, 40]
    assert "[3/3] video 03 (40 s)" in err
    # One sampled frame per second of video: the card's rate, by source timestamps.
    assert report["frame_latency_ms"]["count"] == 20 + 30 + 40
    assert report["frame_latency_ms"]["p50"] > 0
    code, out, err = run_cli(
        "eval", "pitvis", "--truth", str(dataset), "--pred", str(pred), "--json"
    )
    assert code == 0, err
    pitvis = json.loads(out)
    for key in ("step_score", "instrument_f1", "instrument_f1_official"):
        assert report[key] == pytest.approx(pitvis[key])
        for video, scores in report["per_video"].items():
            assert scores[key] == pytest.approx(pitvis["per_video"][video][key])
    buckets = report["per_bucket"]
    assert list(buckets) == ["<25 s", "25-34 s", ">=35 s"]
    assert [bucket["videos"] for bucket in buckets.values()] == [[1], [2], [3]]
    assert buckets["25-34 s"]["step_score"] == pytest.approx(
        report["per_video"]["02"]["step_score"]
    )
    assert report["instruments"].startswith("imis_")  # named by the segmenter and classifier
    classes = report["instrument_f1_per_class"]
    assert classes and all(0.0 <= entry["f1"] <= 1.0 for entry in classes.values())
    # The shipped recognizer sees these cases' steps; a broken path scores near zero.
    assert report["step_score"] > 0.3


def test_the_table_names_cases_buckets_classes_and_latency(dataset: Path) -> None:
    code, out, err = run_cli(
        "eval", "workflow", "--data", str(dataset), "--videos", "2", "--instruments", "recognizer"
    )
    assert code == 0, err
    assert "instruments named by recognizer" in out
    assert "video 02" in out and "video 01" not in out
    assert "<120 s" in out
    assert "recognizer per sampled frame: p50" in out


def test_class_f1_counts_seconds_that_show_or_name_each_class() -> None:
    truth = np.array([[3, UNUSED_SLOT], [3, 5], [0, UNUSED_SLOT], [5, UNUSED_SLOT]])
    pred = np.array([[3, UNUSED_SLOT], [5, UNUSED_SLOT], [0, UNUSED_SLOT], [3, UNUSED_SLOT]])
    scores = class_f1(truth, pred)
    first, second = scores[_name(3)], scores[_name(5)]
    assert (first.support, first.predicted, first.f1) == (2, 2, pytest.approx(0.5))
    assert (second.support, second.predicted, second.f1) == (2, 1, pytest.approx(2 / 3))
    assert scores[_name(0)].f1 == 1.0
    assert len(scores) == 3  # classes neither side names are left out


def _name(code: int) -> str:
    from orstream.labels import instrument_name

    return instrument_name(code)


def test_length_buckets() -> None:
    edges = parse_bucket_edges("120, 240")
    assert edges == (120, 240)
    assert [bucket_label(s, edges) for s in (90, 119, 120, 239, 240, 600)] == [
        "<120 s", "<120 s", "120-239 s", "120-239 s", ">=240 s", ">=240 s",
    ]  # fmt: skip
    for bad in ("", "abc", "240,120", "0,10", "60,60"):
        with pytest.raises(OrstreamError, match="buckets"):
            parse_bucket_edges(bad)


def test_bad_input_is_one_clear_line(
    dataset: Path, random_videotext_package: Path, tmp_path: Path
) -> None:
    code, _, err = run_cli("eval", "workflow", "--data", str(dataset), "--videos", "9")
    assert code != 0 and "no annotated video 9" in err
    code, _, err = run_cli(
        "eval", "workflow", "--data", str(dataset), "--package", str(random_videotext_package)
    )
    assert code != 0 and "not workflow_recognition" in err
    code, _, err = run_cli("eval", "workflow", "--data", str(tmp_path))
    assert code != 0 and str(tmp_path) in err
