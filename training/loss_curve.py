"""Plot a training run's losses and validation step score from its CSVLogger metrics file."""

from __future__ import annotations

import csv
import math
from pathlib import Path


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


def plot_loss_curve(metrics_csv: Path, out: Path) -> Path:
    """Write a PNG of train/val loss per epoch and the val step score to ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    series = read_epoch_series(metrics_csv)
    figure, loss_axis = plt.subplots(figsize=(8, 4.5), dpi=100)
    for name, label in (("train_loss_epoch", "train loss"), ("val_loss", "val loss")):
        if name in series:
            epochs, values = zip(*series[name], strict=True)
            loss_axis.plot(epochs, values, marker="o", markersize=3, label=label)
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss (step CE + instrument BCE, summed over stages)")
    loss_axis.set_yscale("log")
    handles, labels = loss_axis.get_legend_handles_labels()
    if "val_step_score" in series:
        score_axis = loss_axis.twinx()
        epochs, values = zip(*series["val_step_score"], strict=True)
        score_axis.plot(
            epochs,
            values,
            color="tab:green",
            marker="s",
            markersize=3,
            label="val online step score",
        )
        score_axis.set_ylabel("PitVis step score (online, held out)")
        score_axis.set_ylim(0.0, 1.0)
        more_handles, more_labels = score_axis.get_legend_handles_labels()
        handles, labels = handles + more_handles, labels + more_labels
    loss_axis.legend(handles, labels, loc="center right")
    loss_axis.set_title("orstream workflow training")
    loss_axis.grid(alpha=0.3)
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out
