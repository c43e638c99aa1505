"""PitVis CSV files: exact round trips, and one clear line for every kind of bad file."""

from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENTS, STEPS
from orstream.pitvis.csv_files import (
    Annotations,
    find_annotation_files,
    find_prediction_files,
    read_annotations,
    read_instrument_submission,
    read_step_submission,
    write_annotations,
    write_instrument_submission,
    write_label_maps,
    write_step_submission,
)

HEADER = "int_video,int_time,int_step,int_instrument1,int_instrument2"


def sample_annotations(video: int = 3) -> Annotations:
    return Annotations(
        video=video,
        time=np.arange(5, dtype=np.int64),
        step=np.array([-1, 1, 1, 2, 14]),
        instruments=np.array([[-1, -1], [0, -2], [1, -2], [1, 18], [5, -2]]),
    )


def test_annotations_round_trip_in_pitvis_column_order(tmp_path: Path) -> None:
    path = tmp_path / "annotations" / "annotations_03.csv"
    write_annotations(path, sample_annotations())
    lines = path.read_text().splitlines()
    assert lines[0] == HEADER
    assert lines[4] == "3,3,2,1,18"
    read = read_annotations(path)
    expected = sample_annotations()
    assert read.video == 3
    for name in ("time", "step", "instruments"):
        assert np.array_equal(getattr(read, name), getattr(expected, name))
        assert getattr(read, name).dtype == np.int64


def test_columns_in_another_order_and_a_bom_are_read(tmp_path: Path) -> None:
    path = tmp_path / "annotations_07.csv"
    path.write_text(
        "\ufeffint_time, int_step,int_video,int_instrument2,int_instrument1\n"
        "0,4,7,-2,3\n1,5,7,2,3\n\n",
        encoding="utf-8",
    )
    read = read_annotations(path)
    assert read.video == 7
    assert read.step.tolist() == [4, 5]
    assert read.instruments.tolist() == [[3, -2], [3, 2]]


def test_label_maps_name_every_code(tmp_path: Path) -> None:
    write_label_maps(tmp_path)
    steps = (tmp_path / "map_steps.csv").read_text().splitlines()
    instruments = (tmp_path / "map_instruments.csv").read_text().splitlines()
    assert steps[0] == "int_step,text_step"
    assert steps[1] == "-1,out_of_patient"
    assert steps[1 + 9] == f"9,{STEPS[9]}"
    assert len(steps) == 1 + 15
    assert instruments[0] == "int_instrument,text_instrument"
    assert instruments[1:4] == [
        "-2,no_secondary_instrument",
        "-1,out_of_patient",
        "0,no_visible_instrument",
    ]
    assert instruments[-1] == f"18,{INSTRUMENTS[18]}"
    assert len(instruments) == 1 + 21


def test_submissions_round_trip(tmp_path: Path) -> None:
    time = np.array([0, 1, 2, 5])
    step = np.array([1, 1, -1, 14])
    instruments = np.array([[0, -2], [3, 4], [-1, -1], [18, -2]])
    write_step_submission(tmp_path / "steps" / "video_01.csv", time, step)
    write_instrument_submission(tmp_path / "instruments" / "01.csv", time, instruments)
    assert (tmp_path / "steps" / "video_01.csv").read_text().splitlines()[:2] == [
        "int_time,int_step",
        "0,1",
    ]
    read_time, read_step = read_step_submission(tmp_path / "steps" / "video_01.csv")
    assert read_time.tolist() == time.tolist() and read_step.tolist() == step.tolist()
    read_time, read_slots = read_instrument_submission(tmp_path / "instruments" / "01.csv")
    assert read_time.tolist() == time.tolist()
    assert read_slots.tolist() == instruments.tolist()


BAD_ANNOTATIONS = {
    "empty": ("", "empty file"),
    "header only": (HEADER + "\n", "header only, no rows"),
    "missing column": (
        "int_video,int_time,int_step,int_instrument1\n1,0,1,0\n",
        "missing int_instrument2",
    ),
    "unexpected column": (HEADER + ",extra\n1,0,1,0,-2,9\n", "unexpected extra"),
    "repeated column": (
        "int_video,int_time,int_step,int_instrument1,int_instrument2,int_step\n1,0,1,0,-2,1\n",
        "repeated columns",
    ),
    "not an integer": (HEADER + "\n1,0,1,0,-2\n1,1,2.0,0,-2\n", "line 3: int_step is '2.0'"),
    "blank value": (HEADER + "\n1,0,1,,-2\n", "int_instrument1 is '', not an integer"),
    "short row": (HEADER + "\n1,0,1,0\n", "line 2: 4 values for 5 columns"),
    "step code 0": (HEADER + "\n1,0,0,0,-2\n", "int_step 0 is not a PitVis code"),
    "step code 15": (HEADER + "\n1,0,15,0,-2\n", "int_step 15 is not a PitVis code"),
    "instrument code 19": (HEADER + "\n1,0,1,19,-2\n", "int_instrument1 19 is not a PitVis"),
    "instrument code -3": (HEADER + "\n1,0,1,0,-3\n", "int_instrument2 -3 is not a PitVis"),
    "repeated time": (
        HEADER + "\n1,0,1,0,-2\n1,1,1,0,-2\n1,1,1,0,-2\n",
        "int_time repeats (1 then 1 at line 4)",
    ),
    "time going back": (HEADER + "\n1,5,1,0,-2\n1,4,1,0,-2\n", "int_time goes back"),
    "negative time": (HEADER + "\n1,-1,1,0,-2\n", "int_time -1 is negative"),
    "mixed video": (HEADER + "\n1,0,1,0,-2\n2,1,1,0,-2\n", "mixed int_video (1 and 2 at line 3)"),
    "video not the named one": (HEADER + "\n2,0,1,0,-2\n", "int_video is 2 but the file name"),
}


@pytest.mark.parametrize("case", BAD_ANNOTATIONS)
def test_bad_annotation_files_give_one_line_naming_file_and_problem(
    case: str, tmp_path: Path
) -> None:
    text, problem = BAD_ANNOTATIONS[case]
    path = tmp_path / "annotations_01.csv"
    path.write_text(text)
    with pytest.raises(OrstreamError) as error:
        read_annotations(path)
    message = str(error.value)
    assert str(path) in message
    assert problem in message
    assert "\n" not in message


def test_missing_unreadable_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such file"):
        read_annotations(tmp_path / "annotations_01.csv")
    with pytest.raises(OrstreamError, match="not a file"):
        read_step_submission(tmp_path)
    binary = tmp_path / "01.csv"
    binary.write_bytes(b"\x00\xff\xfe\x89PNG\r\n")
    with pytest.raises(OrstreamError, match="not UTF-8"):
        read_step_submission(binary)


def test_submission_readers_check_columns_and_codes(tmp_path: Path) -> None:
    path = tmp_path / "01.csv"
    path.write_text("int_time,int_instrument1,int_instrument2\n0,1,-2\n")
    with pytest.raises(OrstreamError, match="missing int_step"):
        read_step_submission(path)
    path.write_text("int_time,int_step\n0,1\n")
    with pytest.raises(OrstreamError, match="missing int_instrument1,int_instrument2"):
        read_instrument_submission(path)
    path.write_text("int_time,int_instrument1,int_instrument2\n0,1,20\n")
    with pytest.raises(OrstreamError, match="int_instrument2 20 is not a PitVis code"):
        read_instrument_submission(path)


def test_writers_refuse_what_would_not_read_back(tmp_path: Path) -> None:
    path = tmp_path / "01.csv"
    with pytest.raises(OrstreamError, match="different lengths"):
        write_step_submission(path, np.arange(3), np.array([1, 2]))
    with pytest.raises(OrstreamError, match="int_step 0 is not a PitVis code"):
        write_step_submission(path, np.arange(2), np.array([0, 1]))
    with pytest.raises(OrstreamError, match="not integer codes"):
        write_step_submission(path, np.arange(2), np.array([1.0, 2.0]))
    with pytest.raises(OrstreamError, match=r"expected \[N, 2\]"):
        write_instrument_submission(path, np.arange(2), np.array([1, 2]))
    with pytest.raises(OrstreamError, match="int_time repeats"):
        write_annotations(
            path,
            Annotations(1, np.zeros(2, np.int64), np.ones(2, np.int64), np.zeros((2, 2), np.int64)),
        )
    assert not path.exists()


def test_annotation_files_of_a_dataset_root_or_the_folder_itself(tmp_path: Path) -> None:
    write_annotations(tmp_path / "annotations" / "annotations_02.csv", sample_annotations(2))
    write_annotations(tmp_path / "annotations" / "annotations_10.csv", sample_annotations(10))
    (tmp_path / "annotations" / "notes.csv").write_text("x\n")
    expected = {
        2: tmp_path / "annotations" / "annotations_02.csv",
        10: tmp_path / "annotations" / "annotations_10.csv",
    }
    assert find_annotation_files(tmp_path) == expected
    assert find_annotation_files(tmp_path / "annotations") == expected


def test_annotation_folder_problems(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="no such folder"):
        find_annotation_files(tmp_path / "absent")
    with pytest.raises(OrstreamError, match=r"no annotations_NN\.csv files"):
        find_annotation_files(tmp_path)
    write_annotations(tmp_path / "annotations_2.csv", sample_annotations(2))
    write_annotations(tmp_path / "annotations_02.csv", sample_annotations(2))
    with pytest.raises(OrstreamError, match="both hold video 2"):
        find_annotation_files(tmp_path)


def test_prediction_files_are_told_apart_by_header(tmp_path: Path) -> None:
    time, step, instruments = np.arange(2), np.array([1, 2]), np.array([[0, -2], [1, -2]])
    write_step_submission(tmp_path / "01.csv", time, step)
    write_instrument_submission(tmp_path / "video_01.csv", time, instruments)
    write_step_submission(tmp_path / "steps" / "video_02.csv", time, step)
    write_instrument_submission(tmp_path / "instruments" / "02.csv", time, instruments)
    (tmp_path / "summary.csv").write_text("anything\n")
    found = find_prediction_files(tmp_path)
    assert found.steps == {1: tmp_path / "01.csv", 2: tmp_path / "steps" / "video_02.csv"}
    assert found.instruments == {
        1: tmp_path / "video_01.csv",
        2: tmp_path / "instruments" / "02.csv",
    }


def test_prediction_folder_problems(tmp_path: Path) -> None:
    time, step = np.arange(2), np.array([1, 2])
    with pytest.raises(OrstreamError, match="no prediction files"):
        find_prediction_files(tmp_path)
    write_step_submission(tmp_path / "instruments" / "03.csv", time, step)
    with pytest.raises(OrstreamError, match="a steps file sitting in instruments/"):
        find_prediction_files(tmp_path)
    (tmp_path / "instruments" / "03.csv").unlink()
    write_step_submission(tmp_path / "03.csv", time, step)
    write_step_submission(tmp_path / "video_03.csv", time, step)
    with pytest.raises(OrstreamError, match="both hold steps predictions for video 3"):
        find_prediction_files(tmp_path)
    (tmp_path / "video_03.csv").write_text("time,step\n0,1\n")
    with pytest.raises(OrstreamError, match="neither a step submission"):
        find_prediction_files(tmp_path)


def test_a_multitask_submission_counts_as_both_kinds(tmp_path: Path) -> None:
    (tmp_path / "04.csv").write_text(
        "int_time,int_step,int_instrument1,int_instrument2\n0,1,5,-2\n1,2,5,7\n"
    )
    found = find_prediction_files(tmp_path)
    assert found.steps == found.instruments == {4: tmp_path / "04.csv"}
    time, step = read_step_submission(tmp_path / "04.csv")
    _, slots = read_instrument_submission(tmp_path / "04.csv")
    assert time.tolist() == [0, 1] and step.tolist() == [1, 2]
    assert slots.tolist() == [[5, -2], [5, 7]]
    write_step_submission(tmp_path / "steps" / "04.csv", time, step)
    with pytest.raises(OrstreamError, match="both hold steps predictions for video 4"):
        find_prediction_files(tmp_path)
