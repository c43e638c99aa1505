"""Segmentation masks drawn on real phantom frames: fill, outline, label, staleness, edge cases."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import cv2
import numpy as np
import pytest
from test_overlay import FRESH, changed, frames

from orstream.edge.overlay import MasksAnnotator, Overlay, OverlayContext, TimelineAnnotator
from orstream.edge.overlay.drawing import Box
from orstream.edge.overlay.layout import layout_for
from orstream.edge.overlay.mask_window import decode_window
from orstream.edge.overlay.masks import label_box, mask_label, outline_thickness, place_labels
from orstream.edge.overlay.palette import (
    MASK_OPACITY,
    PROMPTED_CODE,
    SEGMENT_COLOURS,
    STEP_COLOURS,
    UNKNOWN_SEGMENT,
    segment_colour,
)
from orstream.edge.overlay.style import style_for
from orstream.labels import SEGMENTATION_CLASSES
from orstream.results import FrameResult, SegmentationResult, SegmentMask
from orstream.segmentation.mask_rle import MaskRle, decode_mask, encode_mask

__all__ = ["frames"]  # the phantom frames fixture, shared with test_overlay

SUCTION, SELLA = 16, 101


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return (0, 0, 0, 0)
    return int(cols.min()), int(rows.min()), int(cols.max()) + 1, int(rows.max()) + 1


def ring(height: int, width: int, centre: tuple[float, float], radius: float) -> np.ndarray:
    """A thick ring (a disk with a hole) at fractions of the frame: an object with two outlines."""
    mask = np.zeros((height, width), np.uint8)
    x, y = round(centre[0] * width), round(centre[1] * height)
    cv2.circle(mask, (x, y), round(radius * height), 1, -1)
    cv2.circle(mask, (x, y), round(radius * height / 3), 0, -1)
    return mask.astype(bool)


def shaft(height: int, width: int) -> np.ndarray:
    """A slanted instrument shaft reaching in from the right."""
    mask = np.zeros((height, width), np.uint8)
    points = np.array([[0.55, 0.45], [0.9, 0.7], [0.9, 0.78], [0.53, 0.5]]) * (width, height)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def segment(mask: np.ndarray, code: int, score: float = 0.9) -> SegmentMask:
    return SegmentMask(
        code=code,
        name=SEGMENTATION_CLASSES.get(code, ""),
        score=score,
        mask=encode_mask(mask),
        box=tight_box(mask),
    )


def masks_result(*masks: SegmentMask) -> FrameResult:
    return FrameResult(
        stream_id="cam0",
        index=238,
        pts_ns=9_920_000_000,
        capture_ns=1_000,
        produced_ns=1_000 + 150_000_000,
        models=("imis_segmenter@1",),
        segmentation=SegmentationResult(masks),
    )


def with_masks(*masks: SegmentMask, stale: bool = False) -> OverlayContext:
    return dataclasses.replace(FRESH, segmentation=masks_result(*masks), segmentation_stale=stale)


def draw(image: np.ndarray, context: OverlayContext) -> np.ndarray:
    return Overlay([MasksAnnotator()]).draw(image, context)


def region(box: Box | tuple[int, int, int, int], shape: tuple[int, ...]) -> np.ndarray:
    x0, y0, x1, y1 = box
    inside = np.zeros(shape[:2], bool)
    inside[max(y0, 0) : y1, max(x0, 0) : x1] = True
    return inside


def grown(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel).astype(bool)


def shrunk(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.erode(mask.astype(np.uint8), kernel).astype(bool)


def tags_of(masks: Sequence[SegmentMask], image: np.ndarray) -> list[np.ndarray]:
    """Where the labels of ``masks`` (most confident first) go, one region each, as the
    overlay places them: clear of the panels."""
    height, width = image.shape[:2]
    labels = [(mask_label(mask), Box(*mask.box)) for mask in masks]
    panels = layout_for(height, width).panels
    return [
        region(tag or (0, 0, 0, 0), image.shape)
        for tag in place_labels(labels, style_for(height), height, width, panels)
    ]


def tag_of(mask: SegmentMask, image: np.ndarray) -> np.ndarray:
    return tags_of([mask], image)[0]


@pytest.mark.parametrize("height", [720, 1080])
def test_fill_tints_the_mask_towards_its_class_colour_and_nothing_outside_its_box(
    frames: dict[int, np.ndarray], height: int
) -> None:
    image = frames[height]
    width = image.shape[1]
    objects = ring(height, width, (0.4, 0.55), 0.18), shaft(height, width)
    masks = segment(objects[0], SELLA, 0.8), segment(objects[1], SUCTION, 0.95)
    drawn = draw(image, with_masks(*masks))
    edge = outline_thickness(style_for(height))
    tags = np.any(tags_of(masks, image), axis=0)
    allowed = tags.copy()
    for pixels, mask in zip(objects, masks, strict=True):
        colour = np.array(segment_colour(mask.code), float)
        core = shrunk(pixels, edge + 1) & ~tags
        before = image[core].astype(float)
        after = drawn[core].astype(float)
        expected = (1 - MASK_OPACITY) * before + MASK_OPACITY * colour
        assert np.abs(after - expected).max() <= 1.0
        closer = np.linalg.norm(after - colour, axis=1) < np.linalg.norm(before - colour, axis=1)
        assert closer.mean() > 0.99
        # Inside the box but away from the object (the ring's hole, beside the shaft): untouched.
        clear = region(mask.box, image.shape) & ~grown(pixels, edge + 1) & ~tags
        assert clear.any() and not changed(image, drawn)[clear].any()
        allowed |= region(mask.box, image.shape)
    assert changed(image, drawn).any()
    assert not changed(image, drawn)[~allowed].any()


@pytest.mark.parametrize("height", [720, 1080])
def test_outline_is_solid_class_colour_and_differs_from_the_fill(
    frames: dict[int, np.ndarray], height: int
) -> None:
    image = frames[height]
    pixels = ring(height, image.shape[1], (0.45, 0.5), 0.2)
    mask = segment(pixels, SELLA)
    drawn = draw(image, with_masks(mask))
    colour = np.array(segment_colour(SELLA), np.uint8)
    boundary = pixels & ~shrunk(pixels, 1) & ~tag_of(mask, image)
    solid = np.all(drawn == colour, axis=2)
    assert solid[boundary].mean() > 0.98  # the outer edge and the hole's edge
    fill = shrunk(pixels, outline_thickness(style_for(height)) + 1) & ~tag_of(mask, image)
    assert not solid[fill].any()
    assert np.abs(drawn[boundary].astype(int).mean(0) - drawn[fill].astype(int).mean(0)).max() > 20


def test_label_names_the_class_and_score_above_the_box(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    pixels = ring(720, 1280, (0.5, 0.5), 0.15)
    mask = segment(pixels, SUCTION, 0.914)
    assert mask_label(mask) == "Suction 91%"
    assert mask_label(dataclasses.replace(mask, code=PROMPTED_CODE, name="")) == "Prompt 91%"
    drawn = draw(image, with_masks(mask))
    tag = tag_of(mask, image)
    x0, y0, _, _ = mask.box
    rows, cols = np.nonzero(tag)
    assert rows.max() < y0 and cols.min() == x0  # resting on the box's top-left corner
    solid = np.all(drawn == np.array(segment_colour(SUCTION), np.uint8), axis=2)
    assert 0.3 < solid[tag].mean() < 1.0  # a tag in the class colour with text on it


def test_label_of_a_mask_at_the_top_edge_stays_in_the_frame() -> None:
    style = style_for(720)
    tag = label_box("Pituitary rongeurs 88%", Box(1250, 0, 1280, 40), style, 1280)
    assert tag.y0 == 0 and tag.x1 <= 1280 and tag.x0 < 1250 and tag.height > 0


def test_labels_of_neighbouring_masks_do_not_cover_each_other(
    frames: dict[int, np.ndarray],
) -> None:
    image = frames[720]
    left = np.zeros((720, 1280), bool)
    right = left.copy()
    left[200:400, 500:560] = True
    right[200:400, 570:640] = True
    masks = segment(left, 8, 0.9), segment(right, SUCTION, 0.8)
    first, second = tags_of(masks, image)
    assert first.any() and second.any() and not (first & second).any()
    assert np.array_equal(first, tag_of(masks[0], image))  # the most confident keeps its place
    drawn = draw(image, with_masks(*masks))
    for tag, mask in zip((first, second), masks, strict=True):
        solid = np.all(drawn == np.array(segment_colour(mask.code), np.uint8), axis=2)
        assert solid[tag].mean() > 0.3


@pytest.mark.parametrize("height", [720, 1080])
def test_labels_never_cover_a_panel(frames: dict[int, np.ndarray], height: int) -> None:
    image = frames[height]
    width = image.shape[1]
    layout = layout_for(height, width)
    step, instruments = layout.step.box, layout.instruments.box(3)
    # Masks whose tags would rest on the step panel, the instruments panel and the timeline.
    corners = [
        (step.x0 + 10, step.y1 - 5),
        (instruments.x0 + 5, instruments.y1 - 5),
        (width // 3, layout.timeline.box.y0 + 2),
    ]
    masks = []
    for index, (x, y) in enumerate(corners):
        pixels = np.zeros((height, width), bool)
        pixels[y : y + 60, x : x + 80] = True
        masks.append(segment(pixels, (SUCTION, 8, SELLA)[index], 0.9 - 0.1 * index))
    tags = tags_of(masks, image)
    for tag in tags:
        assert tag.any()  # each found a free place
        for panel in layout.panels:
            assert not (tag & region(panel, image.shape)).any()
    assert not (tags[0] & tags[1]).any() and not (tags[1] & tags[2]).any()


def test_the_most_confident_mask_is_drawn_on_top(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    disk = ring(720, 1280, (0.5, 0.5), 0.2)
    first, second = segment(disk, SUCTION, 0.95), segment(disk, SELLA, 0.6)
    drawn = draw(image, with_masks(first, second))
    boundary = disk & ~shrunk(disk, 1) & ~tag_of(first, image)
    on_top = np.all(drawn == np.array(segment_colour(SUCTION), np.uint8), axis=2)
    assert on_top[boundary].mean() > 0.98


@pytest.mark.parametrize("height", [720, 1080])
def test_stale_masks_are_not_drawn(frames: dict[int, np.ndarray], height: int) -> None:
    image = frames[height]
    mask = segment(shaft(height, image.shape[1]), SUCTION)
    assert changed(image, draw(image, with_masks(mask))).any()
    assert np.array_equal(draw(image, with_masks(mask, stale=True)), image)


def test_empty_and_degenerate_masks_draw_nothing_and_never_raise(
    frames: dict[int, np.ndarray],
) -> None:
    image = frames[720]
    empty = segment(np.zeros((720, 1280), bool), SUCTION)
    assert empty.box == (0, 0, 0, 0) and len(empty.mask.counts) == 1
    no_pixels = SegmentMask(SELLA, "sella", 0.5, MaskRle(0, 0, ()), (0, 0, 0, 0))
    wrong_box = dataclasses.replace(
        segment(ring(720, 1280, (0.5, 0.5), 0.1), SELLA), box=(0, 0, 9, 9)
    )
    off_frame = dataclasses.replace(empty, box=(2000, 900, 2100, 1000))
    for context in (
        with_masks(empty),
        with_masks(no_pixels),
        with_masks(wrong_box),
        with_masks(off_frame),
        with_masks(),
        dataclasses.replace(
            FRESH, segmentation=dataclasses.replace(masks_result(), segmentation=None)
        ),
    ):
        assert np.array_equal(draw(image, context), image)


def test_a_mask_of_the_source_size_is_scaled_to_the_drawn_frame(
    frames: dict[int, np.ndarray],
) -> None:
    small = ring(720, 1280, (0.4, 0.5), 0.2)
    mask = segment(small, SELLA)
    image = frames[1080]
    drawn = draw(image, with_masks(mask))
    large = cv2.resize(small.view(np.uint8), (1920, 1080), interpolation=cv2.INTER_NEAREST)
    core = shrunk(large.astype(bool), 6)
    assert changed(image, drawn)[core].all()
    x0, y0, x1, y1 = (round(v * 1.5) for v in mask.box)
    far = ~region((x0 - 4, y0 - 60, x1 + 4, y1 + 4), image.shape)
    assert not changed(image, drawn)[far].any()


def test_a_new_segmentation_result_replaces_the_decoded_one(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    annotator = MasksAnnotator()
    overlay = Overlay([annotator])
    left = segment(ring(720, 1280, (0.3, 0.5), 0.1), SUCTION)
    right = segment(ring(720, 1280, (0.7, 0.5), 0.1), SUCTION)
    first = overlay.draw(image, with_masks(left))
    assert np.array_equal(overlay.draw(image, with_masks(left)), first)
    second = overlay.draw(image, with_masks(right))
    assert np.array_equal(second, draw(image, with_masks(right)))
    assert not changed(image, second)[region(left.box, image.shape)].any()


def test_default_overlay_without_segmentation_draws_as_before(
    frames: dict[int, np.ndarray],
) -> None:
    image = frames[720]
    default = Overlay.default()
    without_masks = Overlay([a for a in default.annotators if not isinstance(a, MasksAnnotator)])
    assert len(without_masks.annotators) == len(default.annotators) - 1
    for context in (FRESH, dataclasses.replace(FRESH, stale=True, no_signal=True)):
        assert np.array_equal(default.draw(image, context), without_masks.draw(image, context))


def test_default_overlay_draws_masks_under_the_panels(frames: dict[int, np.ndarray]) -> None:
    image = frames[720]
    # A mask across the bottom of the frame, under the timeline bar.
    pixels = np.zeros((720, 1280), bool)
    pixels[600:, 100:1180] = True
    context = with_masks(segment(pixels, SELLA))
    drawn = Overlay.default().draw(image, context)
    bar = layout_for(720, 1280).timeline.bar
    assert changed(image, drawn)[610:630, 400:800].all()
    timeline_only = Overlay([TimelineAnnotator()]).draw(image, context)
    inner = np.s_[bar.y0 : bar.y1, bar.x0 : bar.x0 + 100]
    assert np.array_equal(drawn[inner], timeline_only[inner])


def test_every_segmentation_class_has_its_own_colour() -> None:
    codes = {PROMPTED_CODE, *SEGMENTATION_CLASSES}
    assert set(SEGMENT_COLOURS) == codes
    assert len(set(SEGMENT_COLOURS.values())) == len(codes)
    assert UNKNOWN_SEGMENT not in SEGMENT_COLOURS.values()
    assert segment_colour(102) == UNKNOWN_SEGMENT
    assert segment_colour(SUCTION) != STEP_COLOURS.get(SUCTION)


def test_decoding_a_window_matches_the_full_decode() -> None:
    rng = np.random.default_rng(7)
    for _ in range(500):
        height, width = (int(v) for v in rng.integers(0, 14, 2))
        pixels = rng.random((height, width)) < rng.random()
        rle = encode_mask(pixels)
        x0, x1 = sorted(int(v) for v in rng.integers(-3, width + 4, 2))
        y0, y1 = sorted(int(v) for v in rng.integers(-3, height + 4, 2))
        window = decode_window(rle, Box(x0, y0, x1, y1))
        full = decode_mask(rle)
        cx0, cx1 = np.clip([x0, x1], 0, width)
        cy0, cy1 = np.clip([y0, y1], 0, height)
        assert window.dtype == bool
        assert np.array_equal(window, full[cy0:cy1, cx0:cx1])
