"""Operating-room overlays drawn on real phantom frames at 720p and 1080p."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from orstream.edge.overlay import (
    HudAnnotator,
    InstrumentsAnnotator,
    NoSignalMarker,
    OutOfPatientBanner,
    Overlay,
    OverlayContext,
    StaleMarker,
    StepAnnotator,
    TimelineAnnotator,
)
from orstream.edge.overlay.annotator import Annotator
from orstream.edge.overlay.layout import layout_for
from orstream.edge.overlay.names import display_name
from orstream.edge.overlay.palette import STEP_COLOURS, TRACK
from orstream.edge.overlay.timeline import clock
from orstream.labels import OUT_OF_PATIENT, STEPS
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.step_timeline import StepSegment, StepTimeline
from orstream.streams.phantom.source import PhantomSource

SECOND = 1_000_000_000


@pytest.fixture(scope="module")
def frames() -> dict[int, np.ndarray]:
    """A phantom frame inside the patient at 720p, and the same frame scaled to 1080p."""
    source = PhantomSource(seed=3, seconds=10, width=1280, height=720, paced=False)
    index = next(
        i
        for i in range(0, source.frame_count, 6)
        if source.step_at(i / source.fps) != OUT_OF_PATIENT
    )
    image = source.renderer.render(index).image
    return {720: image, 1080: cv2.resize(image, (1920, 1080), interpolation=cv2.INTER_LINEAR)}


def result(step: int | None = 5, instruments: tuple[tuple[int, float], ...] = ()) -> FrameResult:
    return FrameResult(
        stream_id="cam0",
        index=240,
        pts_ns=10 * SECOND,
        capture_ns=1_000,
        produced_ns=1_000 + 80_000_000,
        models=("pitvis_workflow@1",),
        step=None if step is None else StepResult(step, 0.87),
        instruments=InstrumentResult((16, 8), instruments),
    )


def timeline(*codes: int) -> tuple[StepSegment, ...]:
    """Ten seconds per code, one result per second."""
    steps = StepTimeline("cam0")
    second = 0
    for code in codes:
        for _ in range(10):
            steps.add(dataclasses.replace(result(code), index=second * 24, pts_ns=second * SECOND))
            second += 1
    return steps.segments()


FRESH = OverlayContext(
    result=result(5, ((16, 0.93), (8, 0.72))),
    result_age_ms=80.0,
    timeline=timeline(OUT_OF_PATIENT, 1, 2, 4, 5),
    frame_pts_ns=50 * SECOND,
    fps=24.0,
    latency_ms=80.0,
)


def changed(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    """Mask of the pixels a drawing changed."""
    return np.any(before != after, axis=2)


def bounds(mask: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the set pixels, end-exclusive."""
    rows, cols = np.nonzero(mask)
    assert rows.size, "nothing was drawn"
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def centre_disk(image: np.ndarray) -> np.ndarray:
    """The middle of the circular endoscopic field (radius 0.4 of the frame height)."""
    height, width = image.shape[:2]
    rows, cols = np.ogrid[:height, :width]
    return (cols - width / 2) ** 2 + (rows - height / 2) ** 2 <= (0.4 * height) ** 2


def drawn_by(annotator: Annotator, image: np.ndarray, context: OverlayContext) -> np.ndarray:
    return Overlay([annotator]).draw(image, context)


# Each annotator with a context that makes it draw, and the part of the frame it belongs in as
# fractions (x0, y0, x1, y1) of the width and height.
PLACES = [
    (StepAnnotator(), FRESH, (0.0, 0.0, 0.5, 0.2)),
    (InstrumentsAnnotator(), FRESH, (0.5, 0.0, 1.0, 0.25)),
    (
        OutOfPatientBanner(),
        dataclasses.replace(FRESH, result=result(OUT_OF_PATIENT)),
        (0.3, 0.0, 0.7, 0.12),
    ),
    (HudAnnotator(), FRESH, (0.7, 0.8, 1.0, 0.97)),
    (TimelineAnnotator(), FRESH, (0.0, 0.9, 1.0, 1.0)),
    (StaleMarker(), dataclasses.replace(FRESH, stale=True), (0.0, 0.1, 0.3, 0.3)),
]


@pytest.mark.parametrize("height", [720, 1080])
@pytest.mark.parametrize(
    ("annotator", "context", "place"), PLACES, ids=[type(p[0]).__name__ for p in PLACES]
)
def test_annotator_draws_in_its_place_and_leaves_the_centre_clear(
    frames: dict[int, np.ndarray],
    height: int,
    annotator: Annotator,
    context: OverlayContext,
    place: tuple[float, float, float, float],
) -> None:
    image = frames[height]
    mask = changed(image, drawn_by(annotator, image, context))
    x0, y0, x1, y1 = bounds(mask)
    width = image.shape[1]
    assert x0 >= place[0] * width and x1 <= place[2] * width, (x0, x1)
    assert y0 >= place[1] * height and y1 <= place[3] * height, (y0, y1)
    assert not mask[centre_disk(image)].any()


def test_default_overlay_keeps_the_centre_clear(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    busy = dataclasses.replace(FRESH, stale=True, result=result(OUT_OF_PATIENT, ((1, 0.9),)))
    mask = changed(image, Overlay.default().draw(image, busy))
    assert mask.mean() > 0.02
    assert not mask[centre_disk(image)].any()


@pytest.mark.parametrize("height", [720, 1080])
def test_stale_and_no_signal_markers_appear_only_when_flagged(
    frames: dict[int, np.ndarray], height: int
) -> None:
    image = frames[height]
    overlay = Overlay.default()
    fresh = overlay.draw(image, FRESH)
    for marker in (StaleMarker(), NoSignalMarker()):
        assert np.array_equal(drawn_by(marker, image, FRESH), image)

    stale = overlay.draw(image, dataclasses.replace(FRESH, stale=True, result_age_ms=1200.0))
    stale_mask = changed(fresh, stale)
    layout = layout_for(*image.shape[:2])
    assert stale_mask[layout.stale_top : layout.stale_top + 10, : image.shape[1] // 4].any()
    assert not stale_mask[centre_disk(image)].any()

    no_signal = overlay.draw(image, dataclasses.replace(FRESH, no_signal=True))
    no_signal_mask = changed(fresh, no_signal)
    # NO SIGNAL takes the middle of the picture and frames it in red.
    assert no_signal_mask[centre_disk(image)].any()
    assert no_signal_mask[image.shape[0] // 2, 0] and no_signal_mask[0, image.shape[1] // 2]
    assert not no_signal_mask[layout.stale_top : layout.stale_top + 10, 50:200].any()


def test_stale_result_loses_its_colours(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    step_colour = np.array(STEP_COLOURS[5], np.uint8)
    box = layout_for(720, 1280).step.box
    for stale, expected in ((False, True), (True, False)):
        drawn = drawn_by(StepAnnotator(), image, dataclasses.replace(FRESH, stale=stale))
        panel = drawn[box.y0 : box.y1, box.x0 : box.x1]
        assert np.all(panel == step_colour, axis=2).any() == expected


def test_text_grows_with_the_resolution(frames: dict[int, np.ndarray]) -> None:
    sizes = {}
    for height, image in frames.items():
        for annotator in (StepAnnotator(), InstrumentsAnnotator(), HudAnnotator()):
            x0, y0, x1, y1 = bounds(changed(image, drawn_by(annotator, image, FRESH)))
            sizes[height, type(annotator).__name__] = (x1 - x0, y1 - y0)
    for name in ("StepAnnotator", "InstrumentsAnnotator", "HudAnnotator"):
        (w720, h720), (w1080, h1080) = sizes[720, name], sizes[1080, name]
        assert 1.3 < w1080 / w720 < 1.7, (name, w720, w1080)
        assert 1.3 < h1080 / h720 < 1.7, (name, h720, h1080)


def test_draw_returns_a_copy_and_leaves_its_input_alone(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    original = image.copy()
    drawn = Overlay.default().draw(image, dataclasses.replace(FRESH, stale=True, no_signal=True))
    assert np.array_equal(image, original)
    assert not np.shares_memory(drawn, image)
    assert drawn.shape == image.shape and drawn.dtype == np.uint8


def test_draw_refuses_images_it_cannot_draw_on() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        Overlay.default().draw(np.zeros((720, 1280), np.uint8), FRESH)
    with pytest.raises(ValueError, match="uint8 RGB"):
        Overlay.default().draw(np.zeros((720, 1280, 3), np.float32), FRESH)


def test_a_result_without_step_or_instruments_draws_no_result_panels(
    frames: dict[int, np.ndarray],
) -> None:
    image = frames[720]
    bare = dataclasses.replace(result(None), instruments=None)
    context = OverlayContext(result=bare, frame_pts_ns=bare.pts_ns, fps=24.0, latency_ms=80.0)
    for annotator in (StepAnnotator(), InstrumentsAnnotator(), OutOfPatientBanner()):
        assert np.array_equal(drawn_by(annotator, image, context), image)
    drawn = Overlay.default().draw(image, context)
    assert changed(image, drawn).any()  # the HUD still reports the video path


def test_before_the_first_result_nothing_reads_as_a_result(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    starting = OverlayContext(frame_pts_ns=3 * SECOND, fps=24.0)
    for annotator in (InstrumentsAnnotator(), TimelineAnnotator(), OutOfPatientBanner()):
        assert np.array_equal(drawn_by(annotator, image, starting), image)
    step_panel = drawn_by(StepAnnotator(), image, starting)
    assert changed(image, step_panel).any()  # "AI starting..."
    panel = layout_for(720, 1280).step.box
    drawn = step_panel[panel.y0 : panel.y1, panel.x0 : panel.x1]
    for colour in STEP_COLOURS.values():
        assert not np.all(drawn == np.array(colour, np.uint8), axis=2).any()


def test_out_of_patient_banner_only_out_of_patient(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    for code in STEPS:
        context = dataclasses.replace(FRESH, result=result(code))
        assert np.array_equal(drawn_by(OutOfPatientBanner(), image, context), image)


def test_instrument_rows_follow_the_result(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    heights = []
    for present in (((16, 0.9),), ((16, 0.9), (8, 0.7)), ((16, 0.9), (8, 0.7), (1, 0.6))):
        context = dataclasses.replace(FRESH, result=result(5, present))
        _, top, _, bottom = bounds(changed(image, drawn_by(InstrumentsAnnotator(), image, context)))
        heights.append(bottom - top)
    assert heights[0] < heights[1] < heights[2]
    # Past max_rows the panel stops growing.
    context = dataclasses.replace(FRESH, result=result(5, ((16, 0.9), (8, 0.7), (1, 0.6))))
    two_rows = drawn_by(InstrumentsAnnotator(max_rows=2), image, context)
    _, top, _, bottom = bounds(changed(image, two_rows))
    assert bottom - top == heights[1]


def test_timeline_colours_each_step_and_leaves_the_wait_dark(
    frames: dict[int, np.ndarray],
) -> None:
    image = frames[720]
    # Steps 1 and 4 for ten seconds each, then ten seconds with no result.
    context = dataclasses.replace(FRESH, timeline=timeline(1, 4), frame_pts_ns=30 * SECOND)
    drawn = drawn_by(TimelineAnnotator(), image, context)
    bar = layout_for(720, 1280).timeline.bar
    row = drawn[bar.y0 + 1, bar.x0 : bar.x1]
    third = bar.width / 3
    # Sample each third near its start, away from the step number drawn in its middle.
    expected = (STEP_COLOURS[1], STEP_COLOURS[4], TRACK)
    for part, colour in enumerate(expected):
        x = round(part * third + 0.1 * third)
        assert tuple(row[x]) == colour, (part, tuple(row[x]), colour)


def test_timeline_of_many_segments_draws_every_step(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    codes = [code for _ in range(6) for code in STEPS]  # 84 segments
    context = dataclasses.replace(FRESH, timeline=timeline(*codes), frame_pts_ns=840 * SECOND)
    drawn = drawn_by(TimelineAnnotator(), image, context)
    bar = layout_for(720, 1280).timeline.bar
    row = drawn[bar.y0, bar.x0 : bar.x1]
    seen = {tuple(int(v) for v in pixel) for pixel in row}
    assert {STEP_COLOURS[code] for code in STEPS} <= seen


def test_every_step_has_its_own_colour() -> None:
    assert set(STEP_COLOURS) == {OUT_OF_PATIENT, *STEPS}
    assert len(set(STEP_COLOURS.values())) == len(STEP_COLOURS)


def test_small_frames_do_not_break_the_overlay() -> None:
    image = np.full((120, 160, 3), 90, np.uint8)
    everything = dataclasses.replace(FRESH, stale=True, no_signal=True, result=result(-1))
    drawn = Overlay.default().draw(image, everything)
    assert drawn.shape == image.shape and changed(image, drawn).any()


def test_names_and_clock_read_well() -> None:
    assert display_name("sellotomy") == "Sellotomy"
    assert display_name("synthetic_graft_placement") == "Synthetic graft placement"
    assert display_name(StepResult(OUT_OF_PATIENT, 1.0).name) == "Out of patient"
    assert clock(65.4) == "1:05"
    assert clock(2 * 3600 + 51 * 60 + 9) == "2:51:09"
