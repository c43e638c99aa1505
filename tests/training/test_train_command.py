"""``orstream train workflow`` / ``segmenter``: the shipped configs, outputs, one-line errors."""

from pathlib import Path

import pytest
import torch
from project_paths import PROJECT_ROOT
from test_instrument_crop_datamodule import crops_file
from test_pitvis_datamodule import write_dataset
from test_segmenter_datamodule import add_disc_anatomy, make_phantom

from orstream.cli import main
from orstream.labels import INSTRUMENTS

CONFIG = PROJECT_ROOT / "training" / "configs" / "workflow_phantom.yaml"
TINY = [
    "model.model_kwargs={input_size: [64, 64], channels: 16, num_layers: 2}",
    "trainer.max_epochs=2",
    "data.batch_size=1",
    "trainer.enable_model_summary=false",
]


def test_trains_from_the_shipped_config_and_reports_its_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dataset(tmp_path / "data", [1, 2, 3])
    runs = tmp_path / "runs"
    code = main(
        [
            "train",
            "workflow",
            "--config",
            str(CONFIG),
            f"data.root={root}",
            "data.val_videos=[2]",
            *TINY,
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
        ]
    )
    assert code == 0
    printed = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    best, last, curve = (
        Path(printed[key]) for key in ("best checkpoint", "last checkpoint", "loss curve")
    )
    assert best.parent == last.parent == curve.parent
    assert best.parent.is_relative_to(runs) and best.name.startswith("best-")
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.0 <= float(printed["best val_step_score"]) <= 1.0
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 4  # the final weights: 2 epochs x 2 training videos
    assert saved["hyper_parameters"]["model_kwargs"]["input_size"] == [64, 64]
    assert saved["orstream"]["data"]["val_videos"] == [2]
    assert saved["orstream"]["data"]["input_size"] == [64, 64]  # linked from the model
    assert (best.parent.parent / "metrics.csv").is_file()


def test_resumes_a_run_where_its_checkpoint_left_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_dataset(tmp_path / "data", [1, 2, 3])
    common = ["--config", str(CONFIG), f"data.root={root}", "data.val_videos=[2]", *TINY]
    logs = ["--", f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}"]
    assert main(["train", "workflow", *common, "trainer.max_epochs=1", *logs]) == 0
    first = Path(
        dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)[
            "last checkpoint"
        ]
    )
    stopped = torch.load(first, weights_only=False)
    assert stopped["global_step"] == 2 and stopped["epoch"] == 1
    code = main(
        ["train", "workflow", "--resume", str(first), *common, "trainer.max_epochs=3", *logs]
    )
    assert code == 0
    second = Path(
        dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line)[
            "last checkpoint"
        ]
    )
    resumed = torch.load(second, weights_only=False)
    assert resumed["global_step"] == 6 and resumed["epoch"] == 3  # 2 more epochs of 2 videos
    schedule = resumed["lr_schedulers"][0]
    assert schedule["last_epoch"] == stopped["lr_schedulers"][0]["last_epoch"] + 2
    missing = tmp_path / "nowhere.ckpt"
    assert main(["train", "workflow", "--resume", str(missing), *common]) == 2
    assert "checkpoint to resume not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("config_text", "overrides", "message"),
    [
        (None, [], "config file not found"),
        ("model:\n  nope: 1\n", ["data.root=x"], "does not accept option 'nope'"),
        ("model: [\n", [], "Problems parsing config"),
        ("{}\n", [], "data.root"),
        ("{}\n", ["data.root"], "is not key=value"),
        ("{}\n", ["data.root=x", "model.model_kwargs={backbone: no_such_net}"], "no_such_net"),
    ],
)
def test_bad_configs_are_one_line_and_exit_2(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    config_text: str | None,
    overrides: list[str],
    message: str,
) -> None:
    config = tmp_path / "config.yaml"
    if config_text is not None:
        config.write_text(config_text)
    assert main(["train", "workflow", "--config", str(config), *overrides]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert error[-1].startswith("orstream: error: ")
    assert message in error[-1]
    assert str(config) in error[-1] or "key=value" in message


def test_a_missing_dataset_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "train",
            "workflow",
            "--config",
            str(CONFIG),
            f"data.root={tmp_path / 'nowhere'}",
            *TINY,
            "--",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        ]
    )
    assert code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"orstream: error: {tmp_path / 'nowhere'}: dataset root not found"
    )


SEGMENTER_CONFIG = CONFIG.parent / "segmenter_phantom.yaml"
TINY_SEGMENTER = [
    "model.model_kwargs={input_size: [48, 80], embed_dim: 32, num_heads: 2, mlp_dim: 64,"
    " backbone_args: {depth: 2, embed_dim: 48, num_heads: 2}}",
    "model.click_rounds=1",
    "trainer.max_epochs=1",
    "data.batch_size=2",
    "data.samples_per_epoch=4",
    "data.val_max_targets=6",
    "trainer.enable_model_summary=false",
]


def test_trains_the_segmenter_from_its_shipped_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = make_phantom(tmp_path / "phantom")
    add_disc_anatomy(root)
    runs = tmp_path / "runs"
    code = main(
        [
            "train",
            "segmenter",
            "--config",
            str(SEGMENTER_CONFIG),
            f"data.root={root}",
            *TINY_SEGMENTER,
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
        ]
    )
    assert code == 0
    printed = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    best, last, curve = (
        Path(printed[key]) for key in ("best checkpoint", "last checkpoint", "loss curve")
    )
    assert best.parent == last.parent == curve.parent
    assert best.parent.is_relative_to(runs / "segmenter") and best.name.startswith("best-")
    assert curve.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 0.0 <= float(printed["best val_dice"]) <= 1.0
    saved = torch.load(last, weights_only=False)
    assert saved["global_step"] == 2  # 4 samples in batches of 2
    hyper = saved["hyper_parameters"]
    assert hyper["model_name"] == "imis_segmenter"
    assert hyper["model_kwargs"]["input_size"] == [48, 80]
    assert hyper["classes"] == [*INSTRUMENTS.values(), "sella"]
    # Only the segmenter's weights: no MiniLM parameters, no class text embeddings.
    assert all(key.startswith("model.") for key in saved["state_dict"])
    assert not any(
        "word_embeddings" in key or "text" in key.split(".")[1] for key in saved["state_dict"]
    )
    data = saved["orstream"]["data"]
    assert data["input_size"] == [48, 80]  # linked from the model
    assert data["classes"] == hyper["classes"]
    assert sum(data["val_targets"].values()) == 6
    header = (best.parent.parent / "metrics.csv").read_text().splitlines()[0].split(",")
    for name in (
        "val_dice",
        "val_dice_box",
        "val_dice_points",
        "val_dice_text",
        "train_loss_epoch",
    ):
        assert name in header


def test_a_bad_segmenter_class_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "segmenter",
            "--config",
            str(SEGMENTER_CONFIG),
            f"data.root={tmp_path}",
            "model.classes=[suction, scalpel]",
        ]
    )
    assert code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("orstream: error: classes must be distinct names of bipolar_forceps")
    assert error.endswith("got ['suction', 'scalpel']")


CLASSIFIER_CONFIG = PROJECT_ROOT / "training" / "configs" / "instrument_classifier.yaml"


def test_trains_the_classifier_from_its_shipped_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    train = crops_file(tmp_path / "train.npz", [5, 6], count=12)
    val = crops_file(tmp_path / "val.npz", [7], count=6)
    code = main(
        [
            "train",
            "classifier",
            "--config",
            str(CLASSIFIER_CONFIG),
            "model.model_kwargs={width: 4}",
            f"data.train={train}",
            f"data.val={val}",
            "data.batch_size=4",
            "trainer.max_epochs=1",
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
        ]
    )
    assert code == 0
    printed = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    assert 0.0 <= float(printed["best val_accuracy"]) <= 1.0
    saved = torch.load(Path(printed["last checkpoint"]), weights_only=False)
    assert saved["global_step"] == 3  # 12 crops in batches of 4
    assert saved["hyper_parameters"]["model_name"] == "instrument_classifier"
    data = saved["orstream"]["data"]
    assert data["train_seeds"] == [5, 6] and data["val_seeds"] == [7]
    assert data["train_crops"] == 12 and data["val_crops"] == 6
    assert "val_accuracy" in saved["orstream"]["metrics"]


def test_a_missing_crops_file_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "train",
            "classifier",
            "--config",
            str(CLASSIFIER_CONFIG),
            f"data.train={tmp_path / 'none.npz'}",
            f"data.val={tmp_path / 'none.npz'}",
        ]
    )
    assert code == 2
    assert "crops file not found" in capsys.readouterr().err.strip().splitlines()[-1]


VIDEOTEXT_CONFIG = PROJECT_ROOT / "training" / "configs" / "videotext_phantom.yaml"


def test_trains_the_video_text_model_from_its_shipped_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    root = tmp_path / "phantom"
    write_dataset(PhantomSpec(3, 30, seed=61, width=160, height=96, fps=4.0), root)
    code = main(
        [
            "train",
            "videotext",
            "--config",
            str(VIDEOTEXT_CONFIG),
            "model.model_kwargs={input_size: [48, 80], width: 32, layers: 1, max_frames: 4}",
            f"data.root={root}",
            "data.train_videos=1-2",
            "data.val_videos=3",
            "data.silent_videos=2",
            "data.frames_per_clip=4",
            "data.batch_size=4",
            "data.cache_dir=null",
            # Whole step runs only: with 4 s windows too, segments would crowd out the few
            # narrated clips of two 30 s cases.
            "data.segment_window_s=null",
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=1",
            "--",
            f"--trainer.logger.init_args.save_dir={tmp_path / 'runs'}",
        ]
    )
    assert code == 0
    printed = dict(
        line.split(": ", 1) for line in capsys.readouterr().out.splitlines() if ": " in line
    )
    assert 0.0 <= float(printed["best val_t2v_r5"]) <= 1.0
    saved = torch.load(Path(printed["last checkpoint"]), weights_only=False)
    assert saved["hyper_parameters"]["model_name"] == "ophclip_small"
    assert saved["orstream"]["data"]["silent_videos"] == [2]
    # Every part of the loss ran: narrated clips, segments, silent clips by retrieval, and
    # segments against every step description.
    header = Path(printed["metrics"]).read_text().splitlines()[0].split(",")
    assert {"train_fine", "train_coarse", "train_retrieval", "train_prompts"} <= set(header)
    assert set(saved["orstream"]["metrics"]) == {
        "val_t2v_r1",
        "val_t2v_r5",
        "val_v2t_r1",
        "val_v2t_r5",
        "val_zeroshot_step_acc",
    }
