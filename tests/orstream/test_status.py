"""A runtime snapshot refuses negative counts, rates and times: they can only come from a bug."""

from collections.abc import Callable

import pytest

from orstream.latency import LatencySummary
from orstream.status import ModelStatus, RuntimeStatus, SourceStatus, StageStatus

NONE = LatencySummary.of([])


def test_a_snapshot_of_an_idle_runtime_is_all_zeros() -> None:
    status = RuntimeStatus(
        sources=(SourceStatus("cam0", "phantom://", "starting", 0.0, 0),),
        models=(ModelStatus("m", "1", "cam0", "onnxruntime-cpu", 0.0, "loading", 0),),
        stages=(StageStatus("overlay", NONE, 0, 0),),
        frame_to_result=NONE,
        video_frames_in=0,
        video_frames_out=0,
        uptime_s=0.0,
    )
    assert status.sources[0].error == "" and status.models[0].backend_reason == ""


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: SourceStatus("cam0", "x", "playing", -0.5, 1), r"SourceStatus\.fps .* -0\.5"),
        (lambda: SourceStatus("cam0", "x", "playing", 1.0, -1), r"SourceStatus\.frames_in"),
        (lambda: SourceStatus("cam0", "x", "playing", float("nan"), 1), r"fps .* got nan"),
        (lambda: ModelStatus("m", "1", "c", "b", -1.0, "serving", 0), r"ModelStatus\.rate_hz"),
        (lambda: ModelStatus("m", "1", "c", "b", 1.0, "serving", -3), r"ModelStatus\.inferred"),
        (lambda: StageStatus("overlay", NONE, -1, 0), r"StageStatus\.processed"),
        (lambda: StageStatus("overlay", NONE, 0, -1), r"StageStatus\.dropped"),
        (lambda: RuntimeStatus((), (), (), NONE, -1, 0, 0.0), r"RuntimeStatus\.video_frames_in"),
        (lambda: RuntimeStatus((), (), (), NONE, 0, -1, 0.0), r"RuntimeStatus\.video_frames_out"),
        (lambda: RuntimeStatus((), (), (), NONE, 0, 0, -0.1), r"RuntimeStatus\.uptime_s"),
    ],
)
def test_negative_values_are_refused(make: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()
