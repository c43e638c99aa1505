"""``orstream train patch`` and ``orstream train slide`` on two gloo CPU processes are the
one-process runs of the same global batches (``ddp_comparison.assert_same_run``), on a phantom
whose tile and feature caches the two ranks of the first run write at once."""

from pathlib import Path

import pytest
from ddp_comparison import assert_same_run
from test_slide_training import CONFIGS, TINY_PATCH, _train

from orstream.slides.phantom.dataset_writer import write_slide_dataset

COMMON = ["data.val_every=8", "trainer.max_epochs=2", "trainer.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Eight small slides: 1-7 train, 8 is held out (and validated by both ranks, since
    Lightning pads a rank's share with repeats)."""
    root = tmp_path_factory.mktemp("slides")
    write_slide_dataset(root, 8, seed=3, size=2048)
    return root


def test_the_patch_encoder_trains_on_two_processes(phantom: Path, tmp_path: Path) -> None:
    overrides = [
        # Group norm and no turns or flips: a step depends on its global batch alone (batch
        # norm's statistics and the augmentations would be each rank's own).
        "model.model_kwargs={backbone: test_efficientnet_gn, feature_dim: 32, tile: 64}",
        f"data.root={phantom}",
        "data.samples_per_epoch=64",  # 2 global batches of 32 an epoch
        "data.augment=false",
        *COMMON,
    ]
    assert_same_run("patch", CONFIGS / "patch_phantom.yaml", overrides, 16, tmp_path)


def test_the_slide_encoder_trains_on_two_processes(phantom: Path, tmp_path: Path) -> None:
    runs = tmp_path / "patch"
    assert _train("patch", phantom, runs, [*TINY_PATCH, "data.val_every=8"]) == 0
    overrides = [
        "model.model_kwargs={feature_dim: 32, hidden: 16, dropout: 0.0}",
        f"data.root={phantom}",
        f"data.patch_checkpoint={runs / 'patch' / 'version_0' / 'checkpoints' / 'last.ckpt'}",
        "data.tile_keep=1.0",  # whole bags: no rank draws its own share of tiles
        *COMMON,
    ]
    # The attention scores' bias adds to every tile's score alike (softmax ignores it); the
    # other attention weights start with gradients near rounding level, and Adam's first steps
    # move them by a share of the learning rate (1e-3) that the rounding decides.
    score_bias = {"model.attend_w.bias": slice(None)}
    # 7 training slides: a global batch of 4, then one of 3 that the ranks share 2 + 1.
    assert_same_run(
        "slide",
        CONFIGS / "slide_phantom.yaml",
        overrides,
        2,
        tmp_path / "slide",
        score_bias,
        weight_atol=2e-4,
    )
