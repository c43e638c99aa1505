"""A DDP run of ``orstream train`` against one process given the same global batch.

Two gloo CPU processes with ``batch_size`` B each and one process with 2B must draw the same
global batches, log the same training losses step by step, validate to the same metrics and
end with the same weights: the runs differ only in how many processes share each batch.
"""

import csv
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from test_distributed_training import train_on_two_processes

from orstream.cli import main

COMMON = ["trainer.enable_model_summary=false", "trainer.enable_progress_bar=false"]


def train_on_one_process(
    task: str, config: Path, overrides: list[str], tmp_path: Path
) -> tuple[dict[str, Any], Path]:
    """Runs ``orstream train TASK`` in this process on one CPU; (record, version folder)."""
    runs, record = tmp_path / "runs", tmp_path / "record"
    code = main(
        [
            "train",
            task,
            "--config",
            str(config),
            *overrides,
            *COMMON,
            "trainer.accelerator=cpu",
            "trainer.devices=1",
            "--",
            f"--trainer.logger.init_args.save_dir={runs}",
            f"--trainer.logger.init_args.name={task}",
            "--trainer.callbacks+=ddp_recorder.RecordShares",
            f"--trainer.callbacks.out={record}",
        ]
    )
    assert code == 0
    (version,) = (runs / task).iterdir()
    return json.loads((record / "rank0.json").read_text()), version


def logged(version: Path, name: str) -> list[float]:
    """Every value of column ``name`` in the run's metrics.csv, in order."""
    with (version / "metrics.csv").open(newline="") as handle:
        return [float(row[name]) for row in csv.DictReader(handle) if row.get(name)]


def assert_same_run(
    task: str,
    config: Path,
    overrides: list[str],
    batch_size: int,
    tmp_path: Path,
    gradient_free: dict[str, slice] | None = None,
    weight_atol: float = 1e-5,
) -> tuple[Path, Path]:
    """Trains on two processes at ``batch_size`` and on one at twice it, and checks that both
    runs are the same run; (two-process version folder, one-process version folder).

    ``gradient_free`` names weights (and their rows) that no loss has a gradient for: Adam
    turns their rounding-level gradients into steps of the learning rate's size, in different
    directions in the two runs, so they are not compared. ``weight_atol`` bounds how far the
    other final weights may differ.
    """
    ranks, two, _ = train_on_two_processes(
        task, config, [*overrides, f"data.batch_size={batch_size}"], tmp_path / "two"
    )
    alone, one = train_on_one_process(
        task, config, [*overrides, f"data.batch_size={2 * batch_size}"], tmp_path / "one"
    )
    # The same global batches: the one process's batch is rank 0's share, then rank 1's.
    assert len(alone["epochs"]) == len(ranks[0]["epochs"]) >= 1
    for epoch, whole in enumerate(alone["epochs"]):
        shares = [r["epochs"][epoch] for r in ranks]
        assert len(whole) == len(shares[0]) + len(shares[1])
        for start in range(0, len(whole), 2 * batch_size):
            step = start // 2
            glued = shares[0][step : step + batch_size] + shares[1][step : step + batch_size]
            assert whole[start : start + 2 * batch_size] == glued
    losses = logged(two, "train_loss")
    assert len(losses) >= 2 and losses == pytest.approx(logged(one, "train_loss"), rel=1e-4)
    assert ranks[0]["val_metrics"] == pytest.approx(alone["val_metrics"], abs=1e-5)
    weights = [
        torch.load(v / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
        for v in (two, one)
    ]
    assert weights[0].keys() == weights[1].keys()
    for weight in weights:
        for name, rows in (gradient_free or {}).items():
            weight[name][rows] = 0
    for name, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][name], rtol=1e-4, atol=weight_atol, msg=name)
    return two, one
