"""Tip crops: the working end of an instrument, shaft to the right, at the instrument's scale."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.segmentation.instrument_crop import (
    CROP_SIZE,
    TIP_AT,
    Crops,
    read_crops,
    tip_crop,
    write_crops,
)


def instrument(width: int, angle_deg: float, size: tuple[int, int] = (360, 640)) -> tuple:
    """A frame with a grey shaft from the rim towards the centre ending in a red tip, its mask."""
    height, frame_width = size
    frame = np.zeros((height, frame_width, 3), np.uint8)
    mask = np.zeros((height, frame_width), np.uint8)
    centre = np.array([frame_width / 2, height / 2])
    direction = np.array([np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))])
    tip = centre + 20 * direction
    rim = centre + 400 * direction
    cv2.line(frame, tuple(int(v) for v in tip), tuple(int(v) for v in rim), (128, 128, 128), width)
    cv2.line(mask, tuple(int(v) for v in tip), tuple(int(v) for v in rim), 1, width)
    cv2.circle(frame, tuple(int(v) for v in tip), width, (255, 0, 0), -1)
    cv2.circle(mask, tuple(int(v) for v in tip), width, 1, -1)
    return frame, mask.astype(bool)


def red_column(crop: np.ndarray) -> float:
    """Mean x of the crop's red (tip) pixels, as a fraction of its side."""
    red = (crop[..., 0] > 150) & (crop[..., 1] < 60)
    return float(np.nonzero(red)[1].mean()) / CROP_SIZE


@pytest.mark.parametrize("angle", [0.0, 90.0, 200.0, 315.0])
def test_the_tip_sits_left_and_the_shaft_runs_right_whatever_the_angle(angle: float) -> None:
    frame, mask = instrument(12, angle)
    crop = tip_crop(frame, mask)
    assert crop is not None and crop.shape == (CROP_SIZE, CROP_SIZE, 3) and crop.dtype == np.uint8
    assert abs(red_column(crop) - TIP_AT) < 0.1
    grey = (crop[..., 1] > 60) & (crop[..., 0] < 200)
    columns = np.nonzero(grey)[1]
    assert columns.size and np.median(columns) > CROP_SIZE / 2  # the shaft: right of the tip
    rows = np.nonzero(grey)[0]
    assert abs(np.median(rows) - CROP_SIZE / 2) < 4  # and along the middle


def test_a_near_and_a_far_instrument_give_crops_of_one_scale() -> None:
    thin = tip_crop(*instrument(8, 30.0))
    thick = tip_crop(*instrument(16, 30.0))
    assert thin is not None and thick is not None
    thin_red = np.count_nonzero((thin[..., 0] > 150) & (thin[..., 1] < 60))
    thick_red = np.count_nonzero((thick[..., 0] > 150) & (thick[..., 1] < 60))
    assert thick_red == pytest.approx(thin_red, rel=0.35)


def test_pixels_outside_the_mask_are_dimmed_and_a_small_mask_gives_a_crop_too() -> None:
    frame, mask = instrument(12, 0.0)
    frame[~mask] = 200  # a bright background
    crop = tip_crop(frame, mask)
    assert crop is not None
    assert crop[2, 2].max() <= 60  # a corner: outside the mask
    small = cv2.resize(mask.astype(np.uint8), (160, 90), interpolation=cv2.INTER_AREA) > 0
    scaled = tip_crop(frame, small)  # a mask at the segmenter's input size
    assert scaled is not None and abs(red_column(scaled) - red_column(crop)) < 0.1


def test_a_mask_of_a_few_pixels_gives_no_crop() -> None:
    frame = np.zeros((90, 160, 3), np.uint8)
    mask = np.zeros((90, 160), bool)
    mask[40:43, 40:43] = True
    assert tip_crop(frame, mask) is None


def test_crops_files_round_trip_and_bad_ones_are_one_line(tmp_path: Path) -> None:
    crops = Crops(
        np.zeros((3, CROP_SIZE, CROP_SIZE, 3), np.uint8),
        np.array([0, 4, 18]),
        np.array([7, 7, 8]),
        {"seeds": [7, 8]},
    )
    path = tmp_path / "crops.npz"
    write_crops(path, crops)
    again = read_crops(path)
    assert again.labels.tolist() == [0, 4, 18] and again.seeds.tolist() == [7, 7, 8]
    assert again.source == {"seeds": [7, 8]} and again.images.shape == crops.images.shape
    with pytest.raises(OrstreamError, match="not found"):
        read_crops(tmp_path / "none.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(OrstreamError, match="not a crops file"):
        read_crops(tmp_path / "bad.npz")
    np.savez(
        tmp_path / "small.npz",
        images=np.zeros((1, 8, 8, 3), np.uint8),
        labels=[0],
        seeds=[1],
        source=np.array("{}"),
    )
    with pytest.raises(OrstreamError, match="uint8"):
        read_crops(tmp_path / "small.npz")
