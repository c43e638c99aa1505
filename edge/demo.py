"""The demo's work: phantom case -> online workflow inference -> PitVis CSVs -> score."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from orstream.edge.backends import create_backend
from orstream.edge.workflow_runner import WorkflowRunner
from orstream.errors import OrstreamError
from orstream.eval_command import evaluate_pitvis, format_table
from orstream.latency import LatencySummary
from orstream.model_package import load_package
from orstream.pitvis_csv import (
    INSTRUMENTS_FOLDER,
    STEPS_FOLDER,
    read_annotations,
    write_instrument_submission,
    write_step_submission,
)
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.pyav_source import PyAVSource

VIDEO = 1


def _say(message: str) -> None:
    print(f"demo: {message}", file=sys.stderr, flush=True)


def _phantom_seeds(data: Mapping[str, object]) -> set[int]:
    """Seeds of the phantom datasets a model was trained and validated on, as its card records."""
    seeds = set()
    for key in ("phantom", "val_phantom"):
        meta = data.get(key)
        if isinstance(meta, dict) and isinstance(meta.get("seed"), int):
            seeds.add(meta["seed"])
    return seeds


def run_demo(
    out: Path, model: Path, seconds: int, seed: int, backend_name: str, summary: bool
) -> dict[str, object]:
    """Run the demo into ``out``; prints the report and returns the summary it describes."""
    started = time.monotonic()
    package = load_package(model)
    if seed in _phantom_seeds(package.card.training.data):
        raise OrstreamError(f"phantom seed {seed} made the training data of {model}; use another")
    backend = create_backend([backend_name], package)
    runner = WorkflowRunner(backend, package.card)

    phantom = out / "phantom"
    _say(f"rendering a {seconds} s phantom case (seed {seed}) into {phantom}")
    write_dataset(
        PhantomSpec(cases=1, seconds=seconds, seed=seed, first_video=VIDEO),
        phantom,
        overwrite=False,
    )
    truth = read_annotations(phantom / "annotations" / f"annotations_{VIDEO:02d}.csv")

    source = PyAVSource(phantom / "videos" / f"video_{VIDEO:02d}.mp4", stream_id="phantom")
    sample_step = source.info.fps / package.card.clip.fps
    wanted = {round(i * sample_step): i for i in range(len(truth.time))}
    steps = np.empty(len(truth.time), np.int64)
    slots = np.empty((len(truth.time), 2), np.int64)
    latency_ms = []
    _say(f"running {model.name} ({backend.name}) online over {len(wanted)} samples")
    for frame in source.frames(set(wanted)):
        prediction = runner(frame.image, frame.discontinuity)
        latency_ms.append((time.monotonic_ns() - frame.capture_ns) / 1e6)
        steps[wanted[frame.index]] = prediction.step
        slots[wanted[frame.index]] = prediction.instruments

    predictions = out / "predictions"
    name = f"video_{VIDEO:02d}.csv"
    write_step_submission(predictions / STEPS_FOLDER / name, truth.time, steps)
    write_instrument_submission(predictions / INSTRUMENTS_FOLDER / name, truth.time, slots)
    report = evaluate_pitvis(phantom, predictions)
    latency = LatencySummary.of(latency_ms)
    print(format_table(report))
    print(
        f"step score {report.mean['step_score']:.3f} (online, {len(wanted)} samples at "
        f"{package.card.clip.fps:g} fps); inference latency {latency.describe()}; "
        f"wall {time.monotonic() - started:.0f} s"
    )
    result: dict[str, object] = {
        "step_score": report.mean["step_score"],
        "step_f1": report.mean["step_f1"],
        "step_edit": report.mean["step_edit"],
        "instrument_f1": report.mean["instrument_f1"],
        "latency_ms": latency.as_dict(),
        "samples": len(wanted),
        "model": str(model),
        "seed": seed,
        "seconds": seconds,
    }
    if summary:
        (out / "summary.json").write_text(json.dumps(result, indent=2) + "\n")
        _say(f"wrote {out / 'summary.json'}")
    return result
