"""``orstream train workflow`` under DDP: two CPU processes (gloo), launched as a user would."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from lightning import Trainer
from project_paths import PROJECT_ROOT
from test_pitvis_datamodule import write_dataset

from orstream.training.lit_workflow import METRIC_NAMES, LitWorkflow
from orstream.training.pitvis_datamodule import PitVisDataModule

CONFIG = PROJECT_ROOT / "training" / "configs" / "workflow_phantom.yaml"
TRAIN_VIDEOS, VAL_VIDEOS = [1, 2, 3, 4], [5, 6, 7]  # 3 val videos: one rank gets a repeat


def test_workflow_trains_on_two_processes_with_synced_metrics_and_one_output(
    tmp_path: Path,
) -> None:
    root = write_dataset(tmp_path / "data", TRAIN_VIDEOS + VAL_VIDEOS)
    runs, record = tmp_path / "runs", tmp_path / "record"
    orstream = Path(sys.executable).with_name("orstream")
    command = [
        str(orstream),
        "train",
        "workflow",
        "--config",
        str(CONFIG),
        f"data.root={root}",
        f"data.val_videos={VAL_VIDEOS}",
        "data.batch_size=1",
        "data.disk_cache=false",
        "model.model_kwargs={input_size: [64, 64], channels: 16, num_layers: 2}",
        "trainer.max_epochs=2",
        "trainer.enable_model_summary=false",
        "trainer.enable_progress_bar=false",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        "--",
        f"--trainer.logger.init_args.save_dir={runs}",
        "--trainer.callbacks+=ddp_recorder.RecordShares",
        f"--trainer.callbacks.out={record}",
    ]
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]
        ),
    }
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]

    ranks = [json.loads((record / f"rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1] and {r["world_size"] for r in ranks} == {2}
    for epoch in range(2):
        shares = [r["epochs"][epoch] for r in ranks]
        assert not set(shares[0]) & set(shares[1])  # disjoint ...
        assert sorted(shares[0] + shares[1]) == list(range(len(TRAIN_VIDEOS)))  # ... and complete
    assert ranks[0]["epochs"] != ranks[1]["epochs"]

    # One run folder, one best checkpoint, one last checkpoint, one metrics file: rank 0's.
    (version,) = (runs / "workflow").iterdir()
    checkpoints = sorted(path.name for path in (version / "checkpoints").glob("*.ckpt"))
    assert len(checkpoints) == 2 and checkpoints[0].startswith("best-")
    assert checkpoints[1] == "last.ckpt"
    printed = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert Path(printed["last checkpoint"]) == version / "checkpoints" / "last.ckpt"
    assert done.stdout.count("best checkpoint: ") == 1  # the summary is printed once
    saved = torch.load(version / "checkpoints" / "last.ckpt", weights_only=False)
    assert saved["global_step"] == 4  # 2 epochs x 2 global batches of 2 videos

    # Every rank computed the same metrics over all val videos: what rank 0 logged, and what
    # one process validating the final weights on every val video computes.
    assert ranks[0]["val_metrics"] == ranks[1]["val_metrics"]
    with (version / "metrics.csv").open(newline="") as handle:
        logged = [row for row in csv.DictReader(handle) if row["val_step_score"]][-1]
    for name in METRIC_NAMES:
        assert float(logged[name]) == pytest.approx(ranks[0]["val_metrics"][name], abs=1e-6)
    module = LitWorkflow.load_from_checkpoint(version / "checkpoints" / "last.ckpt")
    data = PitVisDataModule(
        str(root),
        val_videos=VAL_VIDEOS,
        input_size=module.input_size,
        receptive_field=module.receptive_field,
        disk_cache=False,
    )
    Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False).validate(
        module, datamodule=data, verbose=False
    )
    for name in METRIC_NAMES:
        assert module.val_metrics[name] == pytest.approx(ranks[0]["val_metrics"][name], abs=1e-9)
