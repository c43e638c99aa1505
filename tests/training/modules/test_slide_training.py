"""``orstream train patch`` then ``orstream train slide`` on a tiny phantom: outputs, caches,
metrics in the checkpoints, and one-line errors for bad settings."""

from pathlib import Path

import pytest
import torch
from project_paths import PROJECT_ROOT

from orstream.cli import main
from orstream.slides.phantom.dataset_writer import write_slide_dataset
from orstream.slides.phantom.tissue_classes import TissueClass
from orstream.training.data.slide_tiles import Tiling, load_slide_tiles, read_labels
from orstream.training.registry import create_model

CONFIGS = PROJECT_ROOT / "training" / "configs"
TINY_PATCH = [
    "model.model_kwargs={backbone: mobilenetv3_small_050, feature_dim: 32, tile: 64}",
    "trainer.max_epochs=1",
    "data.samples_per_epoch=64",
    "data.batch_size=32",
    "trainer.log_every_n_steps=1",
]
TINY_SLIDE = [
    "model.model_kwargs={feature_dim: 32, hidden: 16}",
    "trainer.max_epochs=1",
    "data.batch_size=2",
    "trainer.log_every_n_steps=1",
]


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("slides")
    write_slide_dataset(root, 4, seed=3, size=2048)
    return root


@pytest.fixture(scope="module")
def patch_checkpoint(phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    runs = tmp_path_factory.mktemp("runs")
    code = _train("patch", phantom, runs, TINY_PATCH)
    assert code == 0
    (last,) = runs.glob("patch/version_0/checkpoints/last.ckpt")
    return last


def _train(name: str, root: Path, runs: Path, overrides: list[str]) -> int:
    config = CONFIGS / f"{name}_phantom.yaml"
    return main(
        [
            "train",
            name,
            "--config",
            str(config),
            f"data.root={root}",
            *overrides,
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
        ]
    )


def test_the_patch_stage_writes_a_checkpoint_with_tile_accuracy(
    phantom: Path, patch_checkpoint: Path
) -> None:
    saved = torch.load(patch_checkpoint, weights_only=False)
    assert 0.0 <= saved["orstream"]["metrics"]["val_tile_accuracy"] <= 1.0
    assert saved["orstream"]["data"]["tile"] == 64  # linked from the model
    params = saved["hyper_parameters"]  # the registry rebuilds the module from these alone
    encoder = create_model(params["model_name"], **params["model_kwargs"])
    encoder.load_state_dict({k.removeprefix("model."): v for k, v in saved["state_dict"].items()})
    assert saved["orstream"]["data"]["val_slides"] == ["slide_004"]
    for label in read_labels(phantom):  # tiles take their mask's majority class
        classes = load_slide_tiles(phantom, label, Tiling(1.0, 64, 0.5)).classes
        assert (classes == TissueClass.TUMOUR).any() == (label.subtype > 0)
        assert (classes == TissueClass.STROMA).any()
    assert len(list((phantom / "cache" / "tiles-1-64-0.5").glob("slide_*.npz"))) == 4
    assert (patch_checkpoint.parent / "loss_curve.png").is_file()


def test_the_slide_stage_trains_on_cached_features_and_reports_slide_metrics(
    phantom: Path, patch_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _train(
        "slide", phantom, tmp_path, [f"data.patch_checkpoint={patch_checkpoint}", *TINY_SLIDE]
    )
    assert code == 0
    printed = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    assert 0.0 <= float(printed["best val_score"]) <= 1.0
    saved = torch.load(Path(printed["last checkpoint"]), weights_only=False)
    metrics = saved["orstream"]["metrics"]
    assert {"val_slide_accuracy", "val_tile_accuracy", "val_fraction_mae"} <= set(metrics)
    assert saved["orstream"]["data"]["tile"] == 64  # the patch encoder's tiling
    (features,) = (phantom / "cache" / "tiles-1-64-0.5").glob("features-*")
    assert len(list(features.glob("slide_*.npz"))) == 4


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["data.patch_checkpoint=/nowhere.ckpt"], "data.patch_checkpoint /nowhere.ckpt: not found"),
        (["data.val_every=5"], "4 slide(s) with val_every 5 leave no held-out slide"),
        (
            ["model.model_kwargs={feature_dim: 64, hidden: 16}"],
            "its features are 32-d, the slide model reads 64-d",
        ),
    ],
)
def test_bad_slide_settings_are_one_line(
    phantom: Path,
    patch_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    overrides: list[str],
    message: str,
) -> None:
    settings = [f"data.patch_checkpoint={patch_checkpoint}", *TINY_SLIDE, *overrides]
    assert _train("slide", phantom, tmp_path, settings) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("orstream: error: ") and message in error


def test_a_folder_without_slides_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _train("patch", tmp_path, tmp_path / "runs", TINY_PATCH) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        error
        == f"orstream: error: {tmp_path}: no labels.csv (write slides with orstream slide phantom)"
    )
