"""Crops for the instrument classifier: labelled finds of the live segmenter on phantom cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orstream.edge.models.shipped import SHIPPED_SEGMENTER
from orstream.errors import OrstreamError
from orstream.instrument_crop import CROP_SIZE
from orstream.training.instrument_crop_datamodule import (
    CropDataset,
    Crops,
    InstrumentCropDataModule,
    cached_crops,
    parse_seeds,
    render_crops,
)


def test_seeds_take_numbers_and_ranges() -> None:
    assert parse_seeds("5,7,9-11") == [5, 7, 9, 10, 11]
    for bad in ("", "a-3", "4-x"):
        with pytest.raises(OrstreamError, match="seeds"):
            parse_seeds(bad)
    with pytest.raises(OrstreamError, match="share cases"):
        InstrumentCropDataModule(train_seeds="1-3", val_seeds="3")


def test_finds_are_labelled_by_the_true_masks_and_truth_adds_crops() -> None:
    crops = render_crops(SHIPPED_SEGMENTER, [5], 12, 2.0, (180, 320), truth_copies=0)
    with_truth = render_crops(SHIPPED_SEGMENTER, [5], 12, 2.0, (180, 320), truth_copies=2)
    assert crops.images.shape[1:] == (CROP_SIZE, CROP_SIZE, 3) and crops.images.dtype == np.uint8
    assert set(crops.seeds.tolist()) == {5}
    assert (crops.labels == 0).any() and (crops.labels > 0).any()  # tissue and instruments
    assert crops.labels.max() <= 18
    # Truth crops come on top of the same finds: two per instrument in every sampled frame.
    extra = len(with_truth) - len(crops)
    assert extra > 0 and extra % 2 == 0
    assert (with_truth.labels == 0).sum() == (crops.labels == 0).sum()  # truth is never tissue


def test_crops_are_made_once_per_setting(tmp_path: Path) -> None:
    made = []

    def make() -> Crops:
        made.append(1)
        return Crops(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 3]), np.array([1, 1]))

    first = cached_crops(tmp_path, {"seeds": [1]}, make)
    again = cached_crops(tmp_path, {"seeds": [1]}, make)
    other = cached_crops(tmp_path, {"seeds": [2]}, make)
    assert len(made) == 2 and len(list(tmp_path.glob("*.npz"))) == 2
    np.testing.assert_array_equal(first.labels, again.labels)
    assert len(other) == 2


def test_training_crops_are_normalised_and_flipped_across_the_shaft_only() -> None:
    image = np.zeros((1, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    image[0, :10, 40:] = 255  # a bright patch top right
    crops = Crops(image, np.array([4]), np.array([1]))
    plain, label = CropDataset(crops, train=False)[0]
    assert int(label) == 4 and plain.shape == (3, CROP_SIZE, CROP_SIZE)
    assert float(plain.min()) == -1.0 and float(plain.max()) == 1.0
    torch.manual_seed(0)
    seen = {bool(CropDataset(crops, train=True)[0][0][:, :10, 40:].mean() > 0) for _ in range(20)}
    assert seen == {True, False}  # flipped top to bottom half of the time ...
    for _ in range(10):
        flipped, _ = CropDataset(crops, train=True)[0]
        assert float(flipped[:, :, :30].max()) < 0  # ... never left to right
