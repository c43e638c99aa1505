"""Visual tokens from the shipped packages: grid-pooled frame embeddings, region-pooled slide
tile features."""

from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.slides.slide_models import SlideModels
from orstream.vlm.visual.frame_features import FrameFeatures, pool_grid
from orstream.vlm.visual.slide_features import slide_region_features
from tests.project_paths import PROJECT_ROOT

PACKAGES = PROJECT_ROOT / "edge" / "packages"


def test_pooling_averages_each_cell_row_by_row() -> None:
    embedding = np.arange(2 * 4 * 6, dtype=np.float32).reshape(2, 4, 6)
    cells = pool_grid(embedding, (2, 3))
    assert cells.shape == (6, 2)
    assert cells[0, 0] == embedding[0, :2, :2].mean()
    assert cells[5, 1] == embedding[1, 2:, 4:].mean()


def test_frames_become_grid_tokens_of_the_segmenter_embedding() -> None:
    encoder = FrameFeatures(PACKAGES / "imis_segmenter", grid=(2, 2))
    frames = np.random.default_rng(0).integers(0, 256, (2, 90, 160, 3), dtype=np.uint8)
    tokens = encoder.encode(frames)
    assert tokens.shape == (2, 4, encoder.width) == (2, 4, 128)
    assert not np.allclose(tokens[0], tokens[1])
    with pytest.raises(OrstreamError, match="not interactive_segmentation"):
        FrameFeatures(PACKAGES / "pitvis_workflow")


def test_slide_tokens_are_region_means_and_empty_regions_zero(tmp_path: Path) -> None:
    write_slide_dataset(tmp_path, 1, seed=11, size=1024)
    models = SlideModels(threads=1)
    tokens = slide_region_features(tmp_path / "slides" / "slide_001.tiff", models, (4, 4))
    assert tokens.shape == (16, 512)
    filled = np.abs(tokens).sum(axis=1) > 0
    assert 0 < filled.sum() <= 16
