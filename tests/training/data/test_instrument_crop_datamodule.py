"""The instrument classifier's data: crops files read, normalised, augmented across the shaft."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orstream.errors import OrstreamError
from orstream.segmentation.instrument_crop import CROP_SIZE, Crops, write_crops
from orstream.training.data.instrument_crop_datamodule import CropDataset, InstrumentCropDataModule


def crops_file(path: Path, seeds: list[int], count: int = 8) -> Path:
    """A crops file of random crops of the given cases."""
    rng = np.random.default_rng(len(seeds))
    images = rng.integers(0, 256, (count, CROP_SIZE, CROP_SIZE, 3), dtype=np.uint8)
    labels = rng.integers(0, 19, count)
    write_crops(path, Crops(images, labels, np.resize(np.array(seeds), count), {"seeds": seeds}))
    return path


def test_the_files_load_and_their_source_is_described(tmp_path: Path) -> None:
    data = InstrumentCropDataModule(
        str(crops_file(tmp_path / "t.npz", [1, 2])), str(crops_file(tmp_path / "v.npz", [3]))
    )
    data.setup("fit")
    described = data.describe()
    assert described["train_seeds"] == [1, 2] and described["val_seeds"] == [3]
    assert described["train_crops"] == described["val_crops"] == 8
    images, labels, _ = next(iter(data.train_dataloader()))
    assert images.shape == (8, 3, CROP_SIZE, CROP_SIZE) and labels.dtype == torch.int64


def test_train_and_validation_may_not_share_a_case(tmp_path: Path) -> None:
    data = InstrumentCropDataModule(
        str(crops_file(tmp_path / "t.npz", [1, 2])), str(crops_file(tmp_path / "v.npz", [2]))
    )
    with pytest.raises(OrstreamError, match=r"share phantom cases \[2\]"):
        data.setup("fit")


def test_training_crops_are_normalised_and_flipped_across_the_shaft_only() -> None:
    image = np.zeros((1, CROP_SIZE, CROP_SIZE, 3), np.uint8)
    image[0, :10, 40:] = 255  # a bright patch top right
    crops = Crops(image, np.array([4]), np.array([1]), {})
    plain, label, index = CropDataset(crops, train=False)[0]
    assert int(label) == 4 and int(index) == 0 and plain.shape == (3, CROP_SIZE, CROP_SIZE)
    assert float(plain.min()) == -1.0 and float(plain.max()) == 1.0
    torch.manual_seed(0)
    seen = {bool(CropDataset(crops, train=True)[0][0][:, :10, 40:].mean() > 0) for _ in range(20)}
    assert seen == {True, False}  # flipped top to bottom half of the time ...
    for _ in range(10):
        flipped, _, _ = CropDataset(crops, train=True)[0]
        assert float(flipped[:, :, :30].max()) < 0  # ... never left to right
