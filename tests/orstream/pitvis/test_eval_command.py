"""``orstream eval pitvis`` through the real CLI, on real CSV files, against hand-worked values."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from orstream.cli import main
from orstream.pitvis.csv_files import (
    Annotations,
    write_annotations,
    write_instrument_submission,
    write_label_maps,
    write_step_submission,
)

KEYS = {
    "step_score",
    "step_f1",
    "step_edit",
    "instrument_f1",
    "instrument_f1_official",
    "multitask_score",
    "multitask_score_corrected",
}

# (truth steps, truth slots, predicted steps, predicted slots) per video; the values each video
# must score are worked out in test_pitvis_metrics.py beside this and repeated in EXPECTED.
VIDEOS = {
    1: (
        [1, 1, 2, 2, 3],
        [(0, -2), (1, -2), (1, 2), (-1, -1), (3, -2)],
        [1, 2, 2, 2, 3],
        [(0, -2), (1, -2), (1, -2), (0, -2), (3, -2)],
    ),
    2: (
        [3, 3, 3, 3],
        [(0, -2), (1, -2), (2, -2), (2, -2)],
        [3, 3, 4, 3],
        [(1, -2), (2, -2), (3, -2), (3, -2)],
    ),
    3: ([-1, 11, 13], [(-1, -1), (-1, -1), (-1, -1)], [1, 2, 3], [(0, -2), (0, -2), (0, -2)]),
}
EXPECTED = {
    # Steps: classes 1: 2/3, 2: 4/5, 3: 1 -> F1 37/45, edit 1. Instruments, every frame kept:
    # truth {0},{1},{1,2},{},{3}, prediction {0},{1},{1},{0},{3}: class 0 2/3 (w 1), class 1
    # 1 (w 2), class 2 0 (w 1), class 3 1 (w 1) -> 11/15. Official: prediction columns
    # 0,1,3,2,..: positions 2 and 3 compare truth 2 with predicted 3 and truth 3 with
    # predicted 2 -> 0 each -> (2/3 + 2) / 5 = 8/15.
    "01": {
        "step_f1": 37 / 45,
        "step_edit": 1.0,
        "step_score": (37 / 45 + 1) / 2,
        "instrument_f1": 11 / 15,
        "instrument_f1_official": 8 / 15,
        # The challenge's multitask score: (step score + official instrument F1) / 2.
        "multitask_score": ((37 / 45 + 1) / 2 + 8 / 15) / 2,
        "multitask_score_corrected": ((37 / 45 + 1) / 2 + 11 / 15) / 2,
    },
    # Steps: class 3: 6/7, class 4: 0 -> F1 3/7; segments [3] vs [3,4,3] -> edit 1/3.
    # Instruments all shifted by one class: corrected 0, official binarizers line up -> 1.
    "02": {
        "step_f1": 3 / 7,
        "step_edit": 1 / 3,
        "step_score": 8 / 21,
        "instrument_f1": 0.0,
        "instrument_f1_official": 1.0,
        "multitask_score": (8 / 21 + 1) / 2,
        "multitask_score_corrected": (8 / 21 + 0) / 2,
    },
    # Steps: nothing left after filtering: undefined, left out of the means. Instruments: no
    # true instrument, so no weights: class 0 predicted only -> 0, 18 classes 0/0 -> 1: 18/19.
    "03": {
        **dict.fromkeys(KEYS),
        "instrument_f1": 18 / 19,
        "instrument_f1_official": 18 / 19,
    },
}
EXPECTED_MEAN = {
    "step_f1": (37 / 45 + 3 / 7) / 2,
    "step_edit": (1 + 1 / 3) / 2,
    "step_score": ((37 / 45 + 1) / 2 + 8 / 21) / 2,
    "instrument_f1": (11 / 15 + 0 + 18 / 19) / 3,
    "instrument_f1_official": (8 / 15 + 1 + 18 / 19) / 3,
    # Video 3 has no step score, so no multitask score: the mean is over videos 1 and 2.
    "multitask_score": (((37 / 45 + 1) / 2 + 8 / 15) / 2 + (8 / 21 + 1) / 2) / 2,
    "multitask_score_corrected": (((37 / 45 + 1) / 2 + 11 / 15) / 2 + (8 / 21) / 2) / 2,
}


def write_case(root: Path, *, instruments: bool = True, pred_layout: str = "subfolders") -> None:
    """A PitVis dataset root under root/truth and a submission under root/pred."""
    write_label_maps(root / "truth")
    for video, (truth_steps, truth_slots, pred_steps, pred_slots) in VIDEOS.items():
        time = np.arange(len(truth_steps))
        write_annotations(
            root / "truth" / "annotations" / f"annotations_{video:02d}.csv",
            Annotations(video, time, np.array(truth_steps), np.array(truth_slots)),
        )
        if pred_layout == "multitask":  # the challenge's one-file format
            rows = [
                f"{t},{st},{a},{b}"
                for t, st, (a, b) in zip(time, pred_steps, pred_slots, strict=True)
            ]
            (root / "pred").mkdir(parents=True, exist_ok=True)
            (root / "pred" / f"{video:02d}.csv").write_text(
                "int_time,int_step,int_instrument1,int_instrument2\n" + "\n".join(rows) + "\n"
            )
            continue
        steps_file, instruments_file = {
            "subfolders": (f"steps/video_{video:02d}.csv", f"instruments/video_{video:02d}.csv"),
            "flat": (f"{video:02d}.csv", f"video_{video:02d}.csv"),
        }[pred_layout]
        write_step_submission(root / "pred" / steps_file, time, np.array(pred_steps))
        if instruments:
            write_instrument_submission(
                root / "pred" / instruments_file, time, np.array(pred_slots)
            )


def assert_scores(actual: dict, expected: dict) -> None:
    assert set(actual) == KEYS
    for key in KEYS:
        if expected[key] is None:
            assert actual[key] is None, key
        else:
            assert actual[key] == pytest.approx(expected[key]), key


def eval_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], truth: Path) -> dict:
    assert (
        main(["eval", "pitvis", "--truth", str(truth), "--pred", str(tmp_path / "pred"), "--json"])
        == 0
    )
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("pred_layout", ["subfolders", "flat", "multitask"])
def test_json_report_matches_hand_worked_values(
    pred_layout: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, pred_layout=pred_layout)
    report = eval_json(tmp_path, capsys, tmp_path / "truth")
    assert set(report) == KEYS | {"per_video"}
    assert set(report["per_video"]) == {"01", "02", "03"}
    for video, expected in EXPECTED.items():
        assert_scores(report["per_video"][video], expected)
    assert_scores({key: report[key] for key in KEYS}, EXPECTED_MEAN)


def test_steps_only_submission_reports_null_instruments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path, instruments=False)
    # The annotations folder itself works as --truth too.
    report = eval_json(tmp_path, capsys, tmp_path / "truth" / "annotations")
    assert report["step_score"] == pytest.approx(EXPECTED_MEAN["step_score"])
    assert report["instrument_f1"] is None and report["instrument_f1_official"] is None
    assert all(scores["instrument_f1"] is None for scores in report["per_video"].values())


def test_table_lists_each_video_and_the_mean(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path)
    assert (
        main(
            ["eval", "pitvis", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred")]
        )
        == 0
    )
    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines if line[:1] in "0m"}
    assert set(rows) == {"01", "02", "03", "mean"}
    assert rows["01"] == ["0.9111", "0.8222", "1.0000", "0.7333", "0.5333", "0.7222", "0.8222"]
    assert rows["03"] == ["n/a"] * 3 + ["0.9474"] * 2 + ["n/a"] * 2
    assert rows["mean"][0] == f"{EXPECTED_MEAN['step_score']:.4f}"
    assert rows["mean"][4] == "0.8269"


def test_predictions_without_annotations_are_ignored_with_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path)
    write_step_submission(
        tmp_path / "pred" / "steps" / "video_09.csv", np.arange(2), np.array([1, 1])
    )
    assert (
        main(
            [
                "eval",
                "pitvis",
                "--truth",
                str(tmp_path / "truth"),
                "--pred",
                str(tmp_path / "pred"),
                "--json",
            ]
        )
        == 0
    )
    captured = capsys.readouterr()
    assert "video(s) 9" in captured.err and "ignored" in captured.err
    assert set(json.loads(captured.out)["per_video"]) == {"01", "02", "03"}


def break_missing_truth(root: Path) -> str:
    (root / "truth").rename(root / "elsewhere")
    return "no such folder"


def break_missing_pred(root: Path) -> str:
    (root / "pred").rename(root / "elsewhere")
    return "no such folder"


def break_no_annotations(root: Path) -> str:
    for path in (root / "truth" / "annotations").iterdir():
        path.unlink()
    return "no annotations_NN.csv files"


def break_missing_prediction(root: Path) -> str:
    (root / "pred" / "steps" / "video_02.csv").unlink()
    return "no step prediction for annotated video 2 (expected 02.csv or video_02.csv"


def break_prediction_code(root: Path) -> str:
    (root / "pred" / "steps" / "video_01.csv").write_text("int_time,int_step\n0,1\n1,15\n")
    return "video_01.csv: int_step 15 is not a PitVis code"


def break_prediction_length(root: Path) -> str:
    write_step_submission(
        root / "pred" / "steps" / "video_01.csv", np.arange(4), np.array([1, 1, 2, 2])
    )
    return "video_01.csv: 4 rows but annotations_01.csv has 5"


def break_prediction_time(root: Path) -> str:
    write_instrument_submission(
        root / "pred" / "instruments" / "video_02.csv",
        np.array([0, 1, 3, 4]),
        np.zeros((4, 2), np.int64),
    )
    return "video_02.csv: int_time 3 at row 3 where annotations_02.csv has 2"


def break_truth_columns(root: Path) -> str:
    (root / "truth" / "annotations" / "annotations_03.csv").write_text("int_time,int_step\n0,1\n")
    return "annotations_03.csv: expected columns"


def break_prediction_header(root: Path) -> str:
    (root / "pred" / "steps" / "video_03.csv").write_text("time,phase\n0,1\n")
    return "video_03.csv: header time,phase is neither"


BREAKS = [
    break_missing_truth,
    break_missing_pred,
    break_no_annotations,
    break_missing_prediction,
    break_prediction_code,
    break_prediction_length,
    break_prediction_time,
    break_truth_columns,
    break_prediction_header,
]


@pytest.mark.parametrize("damage", BREAKS, ids=[b.__name__[6:] for b in BREAKS])
def test_bad_input_is_one_line_and_exit_2(
    damage, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_case(tmp_path)
    problem = damage(tmp_path)
    code = main(
        ["eval", "pitvis", "--truth", str(tmp_path / "truth"), "--pred", str(tmp_path / "pred")]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("orstream: error: ")
    assert problem in captured.err


def test_installed_command_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, project_root: Path
) -> None:
    write_case(tmp_path)
    (tmp_path / "pred" / "instruments" / "video_01.csv").write_text(
        "int_time,int_instrument1,int_instrument2\n0,zero,-2\n"
    )
    result = subprocess.run(
        [
            project_root / ".venv/bin/orstream",
            "eval",
            "pitvis",
            "--truth",
            tmp_path / "truth",
            "--pred",
            tmp_path / "pred",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"orstream: error: {tmp_path / 'pred' / 'instruments' / 'video_01.csv'}, line 2: "
        "int_instrument1 is 'zero', not an integer"
    ]
