"""PitVis CSVs from online results: one row per second, gaps carry the last prediction."""

from pathlib import Path

from orstream.edge.operators.pitvis_writer import PitvisResultsWriter, video_number_of
from orstream.pitvis.csv_files import read_instrument_submission, read_step_submission
from orstream.results import FrameResult, InstrumentResult, StepResult


def _result(pts_s: float, step: int, slots: tuple[int, int]) -> FrameResult:
    return FrameResult(
        stream_id="cam",
        index=int(pts_s * 24),
        pts_ns=round((100 + pts_s) * 1e9),
        capture_ns=0,
        produced_ns=0,
        models=("m@1",),
        step=StepResult(step, 0.8),
        instruments=InstrumentResult(slots, ()),
    )


def test_seconds_without_a_result_repeat_the_previous_one(tmp_path: Path) -> None:
    writer = PitvisResultsWriter(tmp_path, video=7)
    writer.add(_result(0.0, -1, (-1, -2)))
    writer.add(_result(1.02, 1, (16, -2)))
    writer.add(_result(4.0, 2, (16, 3)))  # seconds 2 and 3 were skipped by a slow model
    paths = writer.write()
    assert paths is not None
    time, steps = read_step_submission(tmp_path / "steps" / "video_07.csv")
    assert time.tolist() == [0, 1, 2, 3, 4]
    assert steps.tolist() == [-1, 1, 1, 1, 2]
    _, slots = read_instrument_submission(tmp_path / "instruments" / "video_07.csv")
    assert slots.tolist() == [[-1, -2], [16, -2], [16, -2], [16, -2], [16, 3]]


def test_nothing_inferred_writes_nothing(tmp_path: Path) -> None:
    assert PitvisResultsWriter(tmp_path, 1).write() is None
    assert not any(tmp_path.iterdir())


def test_video_number_from_the_source_name() -> None:
    assert video_number_of("file:///data/videos/video_07.mp4") == 7
    assert video_number_of("rtsp://cam/live") == 1
