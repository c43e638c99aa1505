"""INT8 calibration: the range each quantized activation is given, from real frames.

Every calibration frame runs through the fp32 graph on ONNX Runtime, the temporal state
carried through each clip as on a live stream (:func:`orstream.export.precision.calibration.
calibration_runs`). A first pass finds each tensor's largest magnitude, a second builds a
histogram of its non-zero magnitudes in :data:`HISTOGRAM_BINS` bins up to it, and the range
kept is the entropy threshold of TensorRT's INT8 calibration: the clipping point whose
128-level quantisation of the histogram loses least information (Kullback-Leibler divergence),
so that a few outliers do not spread the 256 levels over values that almost never occur.
Entropy alone clips too hard where a few large values carry the signal (the recogniser's
pooled features, measured: its step logits then moved by 3.3 against 0.07 unclipped), so the
range never clips more than :data:`MAX_CLIPPED` of a tensor's values. Exact zeros are left out
of the histogram: they quantise exactly at any scale.

The ranges are kept as JSON beside the engine (:func:`write_ranges`), so rebuilding on the
same frames skips both passes.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import numpy as np
import onnx

from orstream.export.onnx.graph_probe import GraphProbe
from orstream.export.precision.calibration import Calibration, calibration_runs
from orstream.package.loading import ModelPackage

HISTOGRAM_BINS = 2048
QUANTIZED_LEVELS = 128
"""Levels of one sign in symmetric INT8: the histogram is of magnitudes."""
MAX_CLIPPED = 1e-4
"""The largest share of a tensor's non-zero values its range may clip."""
RANGES_FORMAT = 1
PROGRESS_EVERY = 64


def entropy_threshold(histogram: np.ndarray, peak: float) -> float:
    """The magnitude to clip at: the histogram's entropy threshold (module docstring).

    Args:
        histogram: counts of magnitudes in equal bins over ``[0, peak]``.
        peak: the largest magnitude seen.
    """
    counts = histogram.astype(np.float64)
    bins = len(counts)
    if peak <= 0.0 or counts.sum() == 0.0:
        return peak
    if bins <= QUANTIZED_LEVELS:
        return peak
    best_bins, best_divergence = bins, np.inf
    for kept in range(QUANTIZED_LEVELS, bins + 1):
        inside = counts[:kept]
        reference = inside.copy()
        reference[-1] += counts[kept:].sum()  # what is clipped lands on the last level
        # the 128-level quantisation of the unclipped values, each level's count spread
        # evenly over the bins it covers that held values
        present = inside > 0
        level = np.arange(kept) * QUANTIZED_LEVELS // kept
        totals = np.bincount(level, weights=inside, minlength=QUANTIZED_LEVELS)
        occupied = np.bincount(level, weights=present, minlength=QUANTIZED_LEVELS)
        expanded = np.where(present, (totals / np.maximum(occupied, 1))[level], 0.0)
        if (expanded[reference > 0] == 0).any():
            continue  # the clipped values land where the quantisation has nothing
        p = reference / reference.sum()
        q = expanded / expanded.sum()
        mask = p > 0
        divergence = float(np.sum(p[mask] * np.log(p[mask] / q[mask])))
        if divergence < best_divergence:
            best_bins, best_divergence = kept, divergence
    return (best_bins + 0.5) * peak / bins


def calibrate_ranges(
    package: ModelPackage,
    model: onnx.ModelProto,
    calibration: Calibration,
    tensors: Collection[str],
    progress: Callable[[str], None] = lambda line: None,
) -> dict[str, float]:
    """The entropy-calibrated clipping magnitude of each of ``tensors`` over ``calibration``.

    Args:
        package: the package whose card gives pre-processing and state.
        model: its fp32 graph (``model.onnx``).
        calibration: the frames, as clips.
        tensors: activations to calibrate (inputs of the quantized layers).
        progress: told of each pass.
    """
    probe = GraphProbe(model, tensors)
    names = sorted(tensors)
    peaks = dict.fromkeys(names, 0.0)
    total = calibration.frame_count
    progress(f"calibration pass 1 of 2: ranges of {len(names)} tensors")
    for count, outputs in enumerate(calibration_runs(package, calibration, probe.run), 1):
        _every(progress, count, total)
        for name in names:
            value = outputs[name]
            if value.size:
                peaks[name] = max(peaks[name], float(np.abs(value).max()))
    histograms = {name: np.zeros(HISTOGRAM_BINS, np.int64) for name in names}
    progress("calibration pass 2 of 2: histograms")
    for count, outputs in enumerate(calibration_runs(package, calibration, probe.run), 1):
        _every(progress, count, total)
        for name in names:
            magnitudes = np.abs(outputs[name][outputs[name] != 0])
            if magnitudes.size and peaks[name] > 0:
                histograms[name] += np.histogram(
                    magnitudes, bins=HISTOGRAM_BINS, range=(0.0, peaks[name])
                )[0]
    progress("calibration: entropy thresholds")
    return {name: clipping_range(histograms[name], peaks[name]) for name in names}


def _every(progress: Callable[[str], None], count: int, total: int) -> None:
    if count % PROGRESS_EVERY == 0 or count == total:
        progress(f"  {count}/{total} frames")


def clipping_range(histogram: np.ndarray, peak: float) -> float:
    """The entropy threshold, raised where it would clip more than :data:`MAX_CLIPPED`."""
    total = int(histogram.sum())
    if total == 0:
        return peak
    cumulative = np.cumsum(histogram)
    kept = min(int(np.searchsorted(cumulative, total * (1.0 - MAX_CLIPPED))) + 1, len(histogram))
    return max(entropy_threshold(histogram, peak), kept * peak / len(histogram))


def write_ranges(path: Path, ranges: Mapping[str, float], frames_sha256: str) -> None:
    """Keep calibrated ``ranges`` at ``path`` (JSON), tied to the frames they came from."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    record = {"format": RANGES_FORMAT, "frames_sha256": frames_sha256, "ranges": dict(ranges)}
    partial.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, path)


def read_ranges(
    path: Path, tensors: Collection[str], frames_sha256: str
) -> dict[str, float] | None:
    """The ranges kept at ``path`` for these frames and tensors; None when there are none
    (no file, other frames or tensors, or a file this release cannot read)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != RANGES_FORMAT:
        return None
    ranges = record.get("ranges")
    if record.get("frames_sha256") != frames_sha256 or not isinstance(ranges, dict):
        return None
    if set(ranges) != set(tensors) or not all(
        isinstance(value, int | float) and value >= 0 for value in ranges.values()
    ):
        return None
    return {name: float(value) for name, value in ranges.items()}
