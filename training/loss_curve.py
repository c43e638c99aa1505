"""Plot a training run's losses and validation score from its CSVLogger metrics file."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CurveLabels:
    """What a run's curve shows: its title, the loss axis, and the score metric and its axis."""

    title: str = "orstream workflow training"
    loss: str = "loss (step CE + instrument BCE, summed over stages)"
    score_metric: str = "val_step_score"
    score: str = "PitVis step score (online, held out)"


def read_epoch_series(metrics_csv: Path) -> dict[str, list[tuple[int, float]]]:
    """Column name -> [(epoch, value)] for every numeric value CSVLogger logged."""
    series: dict[str, list[tuple[int, float]]] = {}
    with metrics_csv.open(newline="") as handle:
        for row in csv.DictReader(handle):
            epoch = row.get("epoch")
            if not epoch:
                continue
            for name, text in row.items():
                if name in ("epoch", "step") or not text:
                    continue
                value = float(text)
                if not math.isnan(value):
                    series.setdefault(name, []).append((int(float(epoch)), value))
    return series


def plot_loss_curve(metrics_csv: Path, out: Path, labels: CurveLabels | None = None) -> Path:
    """Write a PNG of train/val loss per epoch and the validation score to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = labels or CurveLabels()
    series = read_epoch_series(metrics_csv)
    figure, loss_axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, label in (("train_loss_epoch", "train loss"), ("val_loss", "val loss")):
        if name in series:
            epochs, values = zip(*series[name], strict=True)
            loss_axis.plot(epochs, values, marker="o", markersize=3, label=label)
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel(labels.loss)
    loss_axis.set_yscale("log")
    handles, names = loss_axis.get_legend_handles_labels()
    if labels.score_metric in series:
        score_axis = loss_axis.twinx()
        epochs, values = zip(*series[labels.score_metric], strict=True)
        score_axis.plot(
            epochs,
            values,
            color="tab:green",
            marker="s",
            markersize=3,
            label=labels.score_metric,
        )
        score_axis.set_ylabel(labels.score)
        score_axis.set_ylim(0.0, 1.0)
        more_handles, more_names = score_axis.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    loss_axis.legend(handles, names, loc="center right")
    loss_axis.set_title(labels.title)
    loss_axis.grid(alpha=0.3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
