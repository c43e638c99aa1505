"""Phantom frames: circular view, determinism, masks that match labels, distinct looks."""

import hashlib

import cv2
import numpy as np
import pytest

from orstream.labels import OUT_OF_PATIENT
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.instruments import (
    INSTRUMENT_PAINTERS,
    SHAFT_RADIUS,
    draw_instrument,
)
from orstream.streams.phantom.noise import grid_coords
from orstream.streams.phantom.renderer import CaseRenderer
from orstream.streams.phantom.scenes import SELLA, Canvas, Scene, build_scene, make_case_style

W, H, FPS = 160, 90, 24.0
SELLAR_STEPS = frozenset(range(4, 13))
"""Sphenoid sinus clearance to dural sealant: the steps that look at the sella."""


def renderer(
    seed: int = 5, video: int = 1, seconds: int = 240, difficulty: str = "normal"
) -> CaseRenderer:
    return CaseRenderer(seed, video, seconds, get_difficulty(difficulty), W, H, FPS)


@pytest.fixture(scope="module")
def case() -> CaseRenderer:
    return renderer()


def digest(image: np.ndarray) -> str:
    return hashlib.sha256(image.tobytes()).hexdigest()


def test_circular_field_of_view_on_black(case: CaseRenderer) -> None:
    view = case.view
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot(xx + 0.5 - view.cx, yy + 0.5 - view.cy)
    for second in (0, 30, 100, 200):
        image = case.render(int(second * FPS)).image
        assert image.shape == (H, W, 3) and image.dtype == np.uint8
        assert image[r > view.radius + 1.5].max() == 0
        assert image[r < 0.6 * view.radius].mean() > 25


def test_same_seed_same_frames_in_any_order(case: CaseRenderer) -> None:
    indices = [0, 500, 2000, 4000, 5700]
    forward = [digest(case.render(i).image) for i in indices]
    again = renderer()
    backward = [digest(again.render(i).image) for i in reversed(indices)][::-1]
    assert forward == backward
    other = renderer(seed=6)
    assert [digest(other.render(i).image) for i in indices] != forward


def test_masks_and_labels_agree(case: CaseRenderer) -> None:
    view = case.view
    yy, xx = np.mgrid[0:H, 0:W]
    outside = np.hypot(xx + 0.5 - view.cx, yy + 0.5 - view.cy) > view.radius
    seen_two = seen_one = 0
    for index in range(0, case.frame_count, 6):
        mask = np.zeros((H, W), np.uint8)
        shown = case.render(index, mask=mask)
        codes, counts = np.unique(mask[mask > 0], return_counts=True)
        visible = {int(c) for c, n in zip(codes, counts, strict=True) if n >= case.visible_pixels}
        assert visible == set(shown.instruments)
        assert not mask[outside].any()
        if shown.step == OUT_OF_PATIENT:
            assert not mask.any() and shown.slots == (-1, -2)
        seen_one += len(shown.instruments) == 1
        seen_two += len(shown.instruments) == 2
        if len(shown.instruments) == 2:
            assert shown.slots == shown.instruments
        if not shown.instruments and shown.step != OUT_OF_PATIENT:
            assert shown.slots == (0, -2)
    assert seen_one and seen_two


def test_out_of_patient_looks_like_a_room_not_tissue(case: CaseRenderer) -> None:
    def redness(second: int) -> float:
        image = case.render(int(second * FPS)).image.astype(np.float64)
        inside = image.sum(axis=2) > 30
        return float(image[..., 0][inside].mean() / image[..., 1][inside].mean())

    plan = case.plan
    outside = [s for s in plan.segments if s.step == OUT_OF_PATIENT and not s.pause]
    inside = [s for s in plan.segments if s.step in (1, 4, 9)]
    room = [redness(s.start + (s.end - s.start) // 2) for s in outside]
    tissue = [redness(s.start + (s.end - s.start) // 2) for s in inside]
    assert max(room) < 1.15 < min(tissue)


def test_instruments_look_distinct() -> None:
    sprites = {
        code: draw_instrument(code, 0, 200.0, 1).rgba.astype(np.float64)
        for code in INSTRUMENT_PAINTERS
    }
    assert len(sprites) == 18
    # Compare the working ends (the tip and a few shaft widths behind it), where they differ
    # in outline, material and shading; the shafts behind are alike on purpose.
    ends = {code: rgba[:, : int(9.5 * SHAFT_RADIUS * 200.0)] for code, rgba in sprites.items()}
    for a in ends:
        for b in ends:
            if a < b:
                union = (ends[a][..., 3] > 0) | (ends[b][..., 3] > 0)
                difference = np.abs(ends[a] - ends[b])[union].mean()
                assert difference > 25.0, (a, b, difference)


def test_jawed_instruments_open_and_close() -> None:
    for code in (1, 3, 4, 10, 11):
        closed = draw_instrument(code, 0, 200.0, 1).rgba[..., 3]
        opened = draw_instrument(code, 2, 200.0, 1).rgba[..., 3]
        assert np.abs(closed.astype(int) - opened.astype(int)).sum() > 0


def step_features(image: np.ndarray) -> np.ndarray:
    small = cv2.resize(image, (8, 8), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [12, 6], [0, 180, 0, 256]).ravel()
    return np.concatenate([small.ravel(), 4 * hist / hist.sum()])


def test_each_step_has_a_visual_signature() -> None:
    """Even a nearest-neighbour on 8x8 thumbnails recognises steps of an unseen case."""
    cases = []
    for video in range(1, 5):
        r = renderer(seed=11, video=video, seconds=200, difficulty="easy")
        frames = [r.render(int(t * FPS)) for t in range(r.plan.seconds)]
        kept = [f for f in frames if f.step != OUT_OF_PATIENT]
        cases.append(
            (np.array([step_features(f.image) for f in kept]), np.array([f.step for f in kept]))
        )
    scores = []
    for held_out in range(len(cases)):
        train_x = np.concatenate([c[0] for k, c in enumerate(cases) if k != held_out])
        train_y = np.concatenate([c[1] for k, c in enumerate(cases) if k != held_out])
        test_x, test_y = cases[held_out]
        nearest = ((test_x[:, None, :] - train_x[None]) ** 2).sum(-1).argmin(1)
        scores.append(float((train_y[nearest] == test_y).mean()))
    assert np.mean(scores) > 0.45  # 14 steps: chance is about 0.07


def field_of_view(case: CaseRenderer) -> np.ndarray:
    view = case.view
    yy, xx = np.mgrid[0 : view.height, 0 : view.width]
    return np.hypot(xx + 0.5 - view.cx, yy + 0.5 - view.cy) < view.radius


def test_scenes_label_the_sella_in_the_sellar_steps() -> None:
    style = make_case_style(np.random.default_rng(1), get_difficulty("normal"))
    for name in [f"step_{k:02d}" for k in range(1, 15)] + ["room"]:
        scene = build_scene(name, 162, np.random.default_rng(2), style, get_difficulty("normal"))
        assert scene.anatomy.shape == (162, 162) and scene.anatomy.dtype == np.uint8
        assert set(np.unique(scene.anatomy).tolist()) <= {0, SELLA}
        sellar = name != "room" and int(name[-2:]) in SELLAR_STEPS
        assert scene.has_anatomy == sellar, name
        if sellar:
            # The sella is a part of the view, never all of it.
            assert 0.005 < (scene.anatomy == SELLA).mean() < 0.5, name


def test_opaque_materials_hide_the_sella_and_thin_ones_keep_it() -> None:
    canvas = Canvas(64, np.random.default_rng(0))
    x, y = grid_coords(64)
    bone = (np.full(3, 0.9, np.float32), 0.5, 0.2)
    canvas.lay(np.ones((64, 64), np.float32), *bone)
    assert not canvas.anatomy.any()
    canvas.lay((np.hypot(x, y) < 0.5).astype(np.float32), *bone, anatomy=SELLA)
    sella = canvas.anatomy == SELLA
    assert sella.sum() > 100
    left = (x < 0).astype(np.float32)
    canvas.lay(0.9 * left, np.array([0.5, 0.0, 0.0], np.float32), 0.5, 1.0)  # blood
    assert not canvas.anatomy[x < 0].any() and (canvas.anatomy[x > 0] == SELLA).any()
    right = (x > 0).astype(np.float32)
    canvas.lay(right, np.ones(3, np.float32), 0.7, 0.1, anatomy=None)  # dust
    canvas.lay(0.4 * right, np.array([0.5, 0.0, 0.0], np.float32), 0.5, 1.0)  # a faint smear
    assert np.array_equal(canvas.anatomy == SELLA, sella & (x > 0))


def test_anatomy_masks_show_the_sella_in_sellar_steps_only(case: CaseRenderer) -> None:
    inside = field_of_view(case)
    sellar = with_sella = 0
    for index in range(0, case.frame_count, round(FPS)):
        mask = np.zeros((H, W), np.uint8)
        anatomy = np.zeros((H, W), np.uint8)
        shown = case.render(index, mask=mask, anatomy=anatomy)
        assert set(np.unique(anatomy).tolist()) <= {0, SELLA}
        assert not anatomy[mask > 0].any() and not anatomy[~inside].any()
        if shown.step in SELLAR_STEPS:
            sellar += 1
            with_sella += bool(anatomy.any())
        else:
            assert not anatomy.any(), shown.step
    assert sellar > 20 and with_sella > 0.7 * sellar


def test_anatomy_masks_line_up_with_the_image() -> None:
    """Paint the sella green and the rest red: the labels must land on the green pixels."""
    w, h = 320, 180
    case = CaseRenderer(5, 1, 240, get_difficulty("easy"), w, h, FPS)
    inside = field_of_view(case)
    checked = 0
    for name, scene in list(case.scenes.items()):
        if not scene.has_anatomy:
            continue
        surface = scene.surface.copy()
        surface[..., :3] = (200, 30, 30)
        surface[scene.anatomy == SELLA, :3] = (30, 200, 30)
        case.scenes[name] = Scene(name, surface, scene.light, scene.look, scene.anatomy)
    for segment in case.plan.segments:
        if segment.step not in SELLAR_STEPS:
            continue
        index = round((segment.start + segment.end) / 2 * FPS)
        mask = np.zeros((h, w), np.uint8)
        anatomy = np.zeros((h, w), np.uint8)
        image = case.render(index, mask=mask, anatomy=anatomy).image.astype(np.int64)
        red, green = image[..., 0], image[..., 1]
        seen = inside & (mask == 0)
        looks_sella = seen & (green > red + 20)
        looks_other = seen & (red > green + 20)
        if looks_sella.sum() > 50:
            assert (anatomy[looks_sella] == SELLA).mean() > 0.99
            checked += 1
        assert (anatomy[looks_other] == 0).mean() > 0.99
    assert checked >= 5


def test_labels_leave_the_image_alone_and_repeat(case: CaseRenderer) -> None:
    indices = [s.start * round(FPS) + 30 for s in case.plan.segments if s.step in SELLAR_STEPS]
    anatomies = []
    for index in indices:
        mask = np.zeros((H, W), np.uint8)
        anatomy = np.zeros((H, W), np.uint8)
        labelled = digest(case.render(index, mask=mask, anatomy=anatomy).image)
        assert labelled == digest(case.render(index).image)
        alone = np.zeros((H, W), np.uint8)
        case.render(index, anatomy=alone)
        assert np.array_equal(alone, anatomy)
        anatomies.append(anatomy)
    assert any(a.any() for a in anatomies)
    again = renderer()
    for index, anatomy in reversed(list(zip(indices, anatomies, strict=True))):
        repeat = np.zeros((H, W), np.uint8)
        again.render(index, anatomy=repeat)
        assert np.array_equal(repeat, anatomy)
