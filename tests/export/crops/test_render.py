"""``orstream export crops``: labelled tip crops of the shipped segmenter's finds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orstream.cli import main
from orstream.edge.models.shipped import SHIPPED_SEGMENTER
from orstream.errors import OrstreamError
from orstream.export.crops.render import parse_seeds, render_crops
from orstream.segmentation.instrument_crop import CROP_SIZE, read_crops


def test_seeds_take_numbers_and_ranges() -> None:
    assert parse_seeds("5,7,9-11") == [5, 7, 9, 10, 11]
    for bad in ("", "a-3", "4-x"):
        with pytest.raises(OrstreamError, match="seeds"):
            parse_seeds(bad)


def test_finds_are_labelled_by_the_true_masks_and_truth_adds_crops() -> None:
    crops = render_crops(SHIPPED_SEGMENTER, [5], 12, 2.0, (180, 320), truth_copies=0)
    with_truth = render_crops(SHIPPED_SEGMENTER, [5], 12, 2.0, (180, 320), truth_copies=2)
    assert crops.images.shape[1:] == (CROP_SIZE, CROP_SIZE, 3) and crops.images.dtype == np.uint8
    assert set(crops.seeds.tolist()) == {5}
    assert (crops.labels == 0).any() and (crops.labels > 0).any()  # tissue and instruments
    assert crops.labels.max() <= 18
    assert crops.source["seeds"] == [5] and str(crops.source["segmenter"]).startswith("imis")
    # Truth crops come on top of the same finds: two per instrument in every sampled frame.
    extra = len(with_truth) - len(crops)
    assert extra > 0 and extra % 2 == 0
    assert (with_truth.labels == 0).sum() == (crops.labels == 0).sum()  # truth is never tissue


def test_the_command_writes_a_crops_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "val.npz"
    args = ["export", "crops", "--seeds", "5", "--seconds", "6", "--height", "180"]
    assert main([*args, "--out", str(out)]) == 0
    crops = read_crops(out)
    assert str(out) in capsys.readouterr().out and len(crops) > 0
    assert crops.source["size"] == [180, 320] and crops.source["truth_copies"] == 0
    assert main([*args, "--out", str(tmp_path / "missing" / "x.npz")]) == 2
    assert "does not exist" in capsys.readouterr().err
