"""``orstream train`` under DDP: two CPU processes (gloo), launched as a user would.

Each run records, per rank, the training samples it drew per epoch and its validation metrics
(``ddp_recorder.RecordShares``). The ranks' shares must be disjoint and cover the epoch, the run
must leave one set of outputs, and every rank's metrics must equal what rank 0 logged and what
one process validating the final weights on all the held-out data computes.
"""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
from project_paths import PROJECT_ROOT
from test_instrument_crop_datamodule import crops_file
from test_pitvis_datamodule import write_dataset
from test_segmenter_datamodule import add_disc_anatomy, make_phantom
from test_train_command import CLASSIFIER_CONFIG, SEGMENTER_CONFIG, TINY_SEGMENTER

from orstream.training.data.instrument_crop_datamodule import InstrumentCropDataModule
from orstream.training.data.pitvis_datamodule import PitVisDataModule
from orstream.training.data.segmenter_datamodule import SegmenterDataModule
from orstream.training.modules.lit_instrument_classifier import LitInstrumentClassifier
from orstream.training.modules.lit_segmenter import LitSegmenter
from orstream.training.modules.lit_workflow import METRIC_NAMES, LitWorkflow

CONFIG = PROJECT_ROOT / "training" / "configs" / "workflow_phantom.yaml"
DDP = ["trainer.strategy=ddp", "trainer.devices=2", "trainer.accelerator=cpu"]


def train_on_two_processes(
    task: str, config: Path, overrides: list[str], tmp_path: Path
) -> tuple[list[dict[str, Any]], Path, dict[str, str]]:
    """Runs ``orstream train TASK`` under DDP; (per-rank records, version folder, summary)."""
    runs, record = tmp_path / "runs", tmp_path / "record"
    command = [
        str(Path(sys.executable).with_name("orstream")),
        "train",
        task,
        "--config",
        str(config),
        *overrides,
        "trainer.enable_model_summary=false",
        "trainer.enable_progress_bar=false",
        *DDP,
        "--",
        f"--trainer.logger.init_args.save_dir={runs}",
        f"--trainer.logger.init_args.name={task}",
        "--trainer.callbacks+=ddp_recorder.RecordShares",
        f"--trainer.callbacks.out={record}",
    ]
    path = os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((record / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    assert [r["torch_seed"] for r in ranks] == [0, 1]  # the configs' seed + rank: own draws
    # One run folder, one best and one last checkpoint, one metrics file, one summary: rank 0's.
    (version,) = (runs / task).iterdir()
    checkpoints = sorted(path.name for path in (version / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 2 and checkpoints[0].startswith("best-")
    assert checkpoints[1] == "last.ckpt"
    assert done.stdout.count("best checkpoint: ") == 1
    summary = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert Path(summary["last checkpoint"]) == version / "checkpoints" / "last.ckpt"
    return ranks, version, summary


def assert_shares_cover_each_epoch(ranks: list[dict[str, Any]], samples: int) -> None:
    """Each epoch the ranks take every sample once between them; a sample in variant v comes
    as ``sample + samples * v`` (see orstream.training.distributed.batches)."""
    for first, second in zip(ranks[0]["epochs"], ranks[1]["epochs"], strict=True):
        first, second = [i % samples for i in first], [i % samples for i in second]
        assert not set(first) & set(second)  # disjoint ...
        assert sorted(first + second) == list(range(samples))  # ... and complete


def assert_metrics_synced(
    ranks: list[dict[str, Any]],
    version: Path,
    alone: L.LightningModule,
    data: L.LightningDataModule,
) -> None:
    """Equal on both ranks, equal to rank 0's last logged row, equal to one process's."""
    metrics = ranks[0]["val_metrics"]
    assert metrics and ranks[1]["val_metrics"] == metrics
    with (version / "metrics.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row.get(next(iter(metrics)))]
    for name, value in metrics.items():
        assert float(rows[-1][name]) == pytest.approx(value, abs=1e-6)
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.validate(alone, datamodule=data, verbose=False)
    assert alone.val_metrics == pytest.approx(metrics, abs=1e-9)


def test_the_workflow_recognizer_trains_on_two_processes(tmp_path: Path) -> None:
    train_videos, val_videos = [1, 2, 3, 4], [5, 6, 7]  # 3 val videos: one rank gets a repeat
    root = write_dataset(tmp_path / "data", train_videos + val_videos)
    overrides = [
        f"data.root={root}",
        f"data.val_videos={val_videos}",
        "data.batch_size=1",
        "data.disk_cache=false",
        "model.model_kwargs={input_size: [64, 64], channels: 16, num_layers: 2}",
        "trainer.max_epochs=2",
    ]
    ranks, version, _ = train_on_two_processes("workflow", CONFIG, overrides, tmp_path)
    assert_shares_cover_each_epoch(ranks, len(train_videos))
    drawn = [i for r in ranks for epoch in r["epochs"] for i in epoch]
    assert max(drawn) >= len(train_videos)  # the shipped config's speeds: not all at 1x
    by_epoch = [[r["epochs"][epoch] for r in ranks] for epoch in (0, 1)]
    assert by_epoch[0] != by_epoch[1]  # set_epoch reshuffled
    last = version / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 4  # 2 epochs x 2 of 2 videos
    assert set(ranks[0]["val_metrics"]) == set(METRIC_NAMES)
    module = LitWorkflow.load_from_checkpoint(last)
    data = PitVisDataModule(
        str(root),
        val_videos=val_videos,
        input_size=module.input_size,
        receptive_field=module.receptive_field,
        disk_cache=False,
    )
    assert_metrics_synced(ranks, version, module, data)


def test_the_segmenter_trains_on_two_processes(tmp_path: Path) -> None:
    root = make_phantom(tmp_path / "phantom")
    add_disc_anatomy(root)
    overrides = [
        f"data.root={root}",
        *TINY_SEGMENTER,
        "data.samples_per_epoch=8",
        "data.val_max_targets=5",  # odd: one rank validates a repeat
        "data.disk_cache=false",
    ]
    ranks, version, _ = train_on_two_processes("segmenter", SEGMENTER_CONFIG, overrides, tmp_path)
    first, second = ranks[0]["epochs"][0], ranks[1]["epochs"][0]
    assert len(first) == len(second) == 4 and not set(first) & set(second)
    last = version / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2  # 8 samples, 2 x 2 a step
    module = LitSegmenter.load_from_checkpoint(last)
    data = SegmenterDataModule(
        str(root),
        input_size=module.input_size,
        mask_size=module.mask_size,
        classes=module.classes,
        val_max_targets=5,
        disk_cache=False,
    )
    assert_metrics_synced(ranks, version, module, data)


def test_the_instrument_classifier_trains_on_two_processes(tmp_path: Path) -> None:
    train = crops_file(tmp_path / "train.npz", [5, 6], count=12)
    val = crops_file(tmp_path / "val.npz", [7], count=5)  # odd: one rank validates a repeat
    overrides = [
        "model.model_kwargs={width: 4}",
        f"data.train={train}",
        f"data.val={val}",
        "data.batch_size=3",
        "trainer.max_epochs=1",
    ]
    ranks, version, _ = train_on_two_processes("classifier", CLASSIFIER_CONFIG, overrides, tmp_path)
    assert_shares_cover_each_epoch(ranks, 12)
    last = version / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=False)["global_step"] == 2  # 12 crops, 2 x 3 a step
    module = LitInstrumentClassifier.load_from_checkpoint(last)
    assert_metrics_synced(ranks, version, module, InstrumentCropDataModule(str(train), str(val)))
