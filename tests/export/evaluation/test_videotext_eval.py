"""`orstream eval videotext` on a tiny phantom dataset with a random video-text package: the
measures' parts worked by hand, the report's keys and ranges, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cli_runs import run_cli

from orstream.errors import OrstreamError
from orstream.export.evaluation.videotext import (
    evaluate_videotext,
    fit_probe,
    per_second,
    recall,
)
from orstream.streams.phantom.writer import PhantomSpec, write_dataset


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videotext_eval")
    write_dataset(PhantomSpec(3, 30, seed=17, width=160, height=96, fps=4.0), root)
    return root


def test_recall_counts_rows_whose_own_column_is_among_the_k_best() -> None:
    similarity = np.array([[0.9, 0.1, 0.0], [0.8, 0.5, 0.1], [0.2, 0.3, 0.1]])
    assert recall(similarity, 1) == pytest.approx(1 / 3)  # rows 1 and 2 rank others first
    assert recall(similarity, 2) == pytest.approx(2 / 3)  # row 2 ranks its own last
    assert recall(similarity, 3) == 1.0
    assert recall(similarity.T, 1) == pytest.approx(2 / 3)  # a tie goes to the first column


def test_each_second_takes_the_latest_prediction_at_or_before_it() -> None:
    times = np.array([0.0, 1.25, 2.5, 3.75])
    predictions = np.array([4, 5, 6, 7])
    assert per_second(times, predictions, 5).tolist() == [4, 4, 5, 6, 7]


def test_the_probe_separates_what_a_line_separates() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(200, 4))
    labels = (features[:, 0] + features[:, 1] > 0).astype(int) + 2 * (features[:, 2] > 1)
    weights = fit_probe(features, labels, 4)
    logits = np.hstack([features, np.ones((200, 1))]) @ weights
    assert (logits.argmax(axis=1) == labels).mean() > 0.9


def test_the_report_has_every_key_in_range(
    random_videotext_package: Path, dataset: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The package records train 1-2 and val 3: the defaults take them.
    report = evaluate_videotext(random_videotext_package, dataset)
    scores = report.to_json()
    assert report.videos == [3] and report.probe_videos == [1, 2]
    assert report.clips == 3  # three 10 s narrated clips in the 30 s case
    for key in ("t2v_r1", "t2v_r5", "t2v_r10", "v2t_r1", "v2t_r5", "v2t_r10"):
        assert 0.0 <= float(scores[key]) <= 1.0  # type: ignore[arg-type]
    assert scores["t2v_r5"] == 1.0  # 3 clips: every one is among the 5 best
    for key in ("zeroshot_step_score", "probe_step_score"):
        assert 0.0 <= float(scores[key]) <= 1.0  # type: ignore[arg-type]
    assert set(report.zeroshot_per_video) == set(report.probe_per_video) == {3}
    assert scores["supervised"] is None

    code, out, _ = run_cli(
        "eval", "videotext", "--package", str(random_videotext_package), "--data", str(dataset),
        "--videos", "3", "--probe-videos", "1-2", "--json",
    )  # fmt: skip
    assert code == 0
    printed = json.loads(out)
    assert printed["zeroshot_step_score"] == pytest.approx(report.zeroshot_step_score)
    assert printed["supervised_step_score"] >= 0.0  # the shipped recognizer beside it


def test_bad_input_is_one_clear_line(
    random_videotext_package: Path, random_workflow_package: Path, dataset: Path
) -> None:
    with pytest.raises(OrstreamError, match="is a workflow_recognition package, not video_text"):
        evaluate_videotext(random_workflow_package, dataset)
    with pytest.raises(OrstreamError, match=r"videos \[2\] are both held out and probe"):
        evaluate_videotext(random_videotext_package, dataset, videos=[2, 3])
    with pytest.raises(OrstreamError, match=r"video_09\.mp4: no such video"):
        evaluate_videotext(random_videotext_package, dataset, videos=[9])
    with pytest.raises(OrstreamError, match="is not a workflow recognition package"):
        evaluate_videotext(random_videotext_package, dataset, supervised=random_videotext_package)
