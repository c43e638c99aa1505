"""The privacy gate: frames the recognizer calls out of patient, and frames before its first
result, never reach a sink that leaves the device; the OR display keeps the picture.

Each leaving frame is judged by the results on both sides of it (the gate holds frames until
the next result), so the case's brief out-of-patient moments (3-5 s and 5-7 s here, 2 s each)
are withheld from their first frame, not only once the smoothed step has caught up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.edge.overlay.privacy import is_private, withheld
from orstream.errors import OrstreamError
from orstream.labels import OUT_OF_PATIENT
from orstream.results import FrameResult, StepResult
from orstream.streams.frame import Frame
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer
from orstream.streams.phantom.writer import PhantomSpec, write_dataset

SEED, SECONDS, FPS = 23, 60, 12.0
SETTLED_S = 4.0
"""In-patient frames this far from a step change are judged: the recognizer has settled."""


class Content:
    """A sink that keeps, per frame, how much of the middle of the picture has detail."""

    name = "content"

    def __init__(self) -> None:
        self.detail: dict[int, float] = {}

    def write(self, frame: Frame) -> None:
        image = np.asarray(frame.image, dtype=np.float32)
        height, width = image.shape[:2]
        # The scene's middle band, above the banner and the panels' corners.
        band = image[height // 6 : height // 3, width // 4 : 3 * width // 4]
        self.detail[frame.index] = float(band.std())

    def close(self) -> None:
        pass


def result(code: int | None) -> FrameResult:
    step = None if code is None else StepResult(code, 0.9)
    return FrameResult("or1", 0, 0, 0, 0, (), step=step)


def test_what_is_private() -> None:
    assert is_private(None, stale=False)  # no answer yet: fail closed
    assert is_private(result(3), stale=True)  # an old answer is no answer
    assert is_private(result(OUT_OF_PATIENT), stale=False)
    assert is_private(result(None), stale=False)
    assert not is_private(result(3), stale=False)
    own = FrameResult("or1", 0, 0, 0, 0, (), step=StepResult(3, 0.5, out_of_patient=0.6))
    assert is_private(own, stale=False)  # the smoothed step has not followed yet
    unsure = FrameResult("or1", 0, 0, 0, 0, (), step=StepResult(3, 0.5, out_of_patient=0.4))
    assert not is_private(unsure, stale=False)
    scene = np.random.default_rng(0).integers(0, 256, (180, 320, 3), dtype=np.uint8)
    blank = withheld(scene, "blank")
    assert blank.shape == scene.shape and (blank.max(axis=2) > 0).mean() < 0.05  # the banner
    blurred = withheld(scene, "blur")
    assert float(blurred[10:40, 10:100].std()) < 0.3 * float(scene[10:40, 10:100].std())


def test_out_of_patient_frames_never_leave_the_device(tmp_path: Path) -> None:
    write_dataset(PhantomSpec(1, SECONDS, seed=SEED, width=640, height=360, fps=FPS), tmp_path)
    steps = CaseRenderer(SEED, 1, SECONDS, get_difficulty("normal"), 640, 360, FPS).plan.segments
    changes = [segment.start for segment in steps]
    config = parse_config(
        {
            "source": {"uri": str(tmp_path / "videos" / "video_01.mp4"), "stream_id": "or1"},
            "model": {"package": str(SHIPPED_PACKAGE)},
            "privacy": {"mode": "blank"},
            # Judged here: the recognizer's out-of-patient calls, not how a loaded test machine
            # keeps time (stale results are private too: test_what_is_private).
            "overlay": {"stale_after_ms": 5000},
            "grpc": {"enabled": False},
        },
        "test",
    )
    leaving, local = Content(), Content()
    app = EdgeApp(
        config,
        sinks={
            "or1": [
                SinkSpec("recording", lambda w, h, fps: leaving, leaves=True),
                SinkSpec("display", lambda w, h, fps: local),
            ]
        },
    )
    app.run()
    assert len(leaving.detail) == len(local.detail) == round(SECONDS * FPS)
    withheld_at = {index / FPS: detail < 5 for index, detail in leaving.detail.items()}
    shown_at = {index / FPS: detail > 5 for index, detail in local.detail.items()}
    assert all(shown_at.values())  # the display always keeps the picture
    assert withheld_at[0.0]  # before any result: fail closed
    outside = [s for s in steps if s.step == OUT_OF_PATIENT]
    assert len(outside) >= 3 and outside[-1].end == SECONDS  # brief moments, and the end
    for segment in outside:  # every frame of every out-of-patient period
        assert all(w for t, w in withheld_at.items() if segment.start <= t < segment.end)
    inside = [
        w
        for t, w in withheld_at.items()
        if next(s.step for s in steps if s.start <= t < s.end) != OUT_OF_PATIENT
        and min(abs(t - change) for change in changes) >= SETTLED_S
    ]
    assert sum(not w for w in inside) >= 0.9 * len(inside)  # the surgery is recorded
    gate = app.streams["or1"].privacy
    assert gate is not None and gate.frames_withheld == sum(withheld_at.values())


def test_privacy_needs_a_recognizer() -> None:
    with pytest.raises(OrstreamError, match="privacy needs a recognizer"):
        parse_config({"source": {"uri": "a.mp4"}, "privacy": {"mode": "blur"}}, "test")
