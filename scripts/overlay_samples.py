"""Render sample operating-room overlays on phantom frames at 720p and 1080p, and time them.

Writes one PNG per situation and resolution (a step with two instruments, no instrument in
view, out of patient, a stale result, no signal, before the first result, a long procedure's
timeline) into a folder, then prints the per-frame cost of ``Overlay.default().draw``.

    .venv/bin/python scripts/overlay_samples.py /tmp/overlay_samples
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from orstream.edge.overlay import Overlay, OverlayContext
from orstream.labels import OUT_OF_PATIENT, STEPS
from orstream.latency import LatencySummary
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.step_timeline import StepSegment, StepTimeline
from orstream.streams.phantom.source import PhantomSource

RESOLUTIONS = ((1280, 720), (1920, 1080))
SECONDS = 60
FPS = 24.0
LATENCY_MS = 84.0
Sample = tuple[np.ndarray, OverlayContext]


def _say(message: str) -> None:
    print(f"overlay samples: {message}", file=sys.stderr, flush=True)


def _result(index: int, pts_ns: int, step: int, instruments: tuple[int, ...]) -> FrameResult:
    """A confident result for a frame showing ``step`` and ``instruments``."""
    present = tuple(zip(instruments, (0.94, 0.71), strict=False))
    padded = (*instruments, 0, -2)
    slots = (padded[0], padded[1]) if step != OUT_OF_PATIENT else (-1, -2)
    return FrameResult(
        stream_id="phantom",
        index=index,
        pts_ns=pts_ns,
        capture_ns=pts_ns,
        produced_ns=pts_ns + round(LATENCY_MS * 1e6),
        models=("pitvis_workflow@1",),
        step=StepResult(step, 0.97 if step == OUT_OF_PATIENT else 0.88),
        instruments=InstrumentResult(slots, present),
    )


def _live(result: FrameResult, timeline: tuple[StepSegment, ...]) -> OverlayContext:
    """The context of the frame a fresh result was inferred on."""
    return OverlayContext(
        result=result,
        result_age_ms=LATENCY_MS,
        timeline=timeline,
        frame_pts_ns=result.pts_ns,
        fps=FPS,
        latency_ms=LATENCY_MS,
    )


def _timeline(results: list[FrameResult]) -> tuple[StepSegment, ...]:
    timeline = StepTimeline("phantom")
    for result in results:
        timeline.add(result)
    return timeline.segments()


def _long_procedure(seed: int) -> tuple[StepSegment, ...]:
    """A 2-hour procedure's timeline, one result per second: the PitVis steps in order with long
    stretches, brief flickers to neighbouring steps and out-of-patient breaks."""
    rng = np.random.default_rng(seed)
    codes: list[int] = []
    for code in STEPS:
        codes += [code] * int(rng.integers(120, 900))
        for _ in range(int(rng.integers(0, 4))):
            codes += [int(np.clip(code + rng.choice([-1, 1]), 1, 14))] * int(rng.integers(5, 40))
            codes += [code] * int(rng.integers(30, 240))
        if rng.random() < 0.3:
            codes += [OUT_OF_PATIENT] * int(rng.integers(30, 200))
    return _timeline(
        [_result(round(s * FPS), s * 1_000_000_000, code, ()) for s, code in enumerate(codes)]
    )


def _samples(source: PhantomSource, seed: int) -> dict[str, Sample]:
    """Every sample situation: its frame and the overlay's context for it."""
    # One result per second, as the workflow model runs, from what each second's frame shows.
    results = []
    for index in range(0, source.frame_count, round(source.fps)):
        shown = source.renderer.render(index)
        results.append(_result(index, source.pts_ns(index), shown.step, shown.instruments))

    def first(step_inside: bool, instruments: int = 0) -> int:
        """Position of the first result after the start inside or outside the patient (inside:
        with that many instruments)."""
        for at, result in enumerate(results[2:], start=2):
            assert result.step is not None and result.instruments is not None
            if step_inside != (result.step.code != OUT_OF_PATIENT):
                continue
            if not step_inside or len(result.instruments.present) == instruments:
                return at
        raise RuntimeError("the phantom case has no frame for every sample; try another seed")

    samples: dict[str, Sample] = {}
    for name, at in (
        ("step_two_instruments", first(True, instruments=2)),
        ("no_instrument", first(True, instruments=0)),
        ("out_of_patient", first(False)),
    ):
        result = results[at]
        image = source.renderer.render(result.index).image
        samples[name] = (image, _live(result, _timeline(results[: at + 1])))

    image, normal = samples["step_two_instruments"]
    assert normal.result is not None
    late = normal.result.index + round(1.8 * source.fps)
    samples["stale"] = (
        source.renderer.render(late).image,
        dataclasses.replace(
            normal, stale=True, result_age_ms=1800 + LATENCY_MS, frame_pts_ns=source.pts_ns(late)
        ),
    )
    samples["no_signal"] = (
        np.zeros_like(image),
        dataclasses.replace(
            normal,
            stale=True,
            no_signal=True,
            result_age_ms=4200.0,
            frame_pts_ns=normal.frame_pts_ns + 4_200_000_000,
            fps=0.0,
        ),
    )
    samples["starting"] = (image, OverlayContext(frame_pts_ns=normal.frame_pts_ns, fps=FPS))
    long = _long_procedure(seed)
    now = long[-1]
    samples["long_timeline"] = (
        image,
        _live(
            dataclasses.replace(
                normal.result,
                index=now.end_index,
                pts_ns=now.end_pts_ns,
                step=StepResult(now.code, 0.88),
            ),
            long,
        ),
    )
    return samples


def _time_draw(overlay: Overlay, samples: list[Sample], frames: int) -> LatencySummary:
    """Per-frame cost of drawing the overlay, cycling through the samples."""
    costs = []
    for frame in range(frames):
        image, context = samples[frame % len(samples)]
        started = time.perf_counter()
        overlay.draw(image, context)
        costs.append((time.perf_counter() - started) * 1e3)
    return LatencySummary.of(costs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder for the PNGs (created if missing)")
    parser.add_argument("--seed", type=int, default=5, help="phantom seed")
    parser.add_argument("--frames", type=int, default=500, help="frames to time per resolution")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    overlay = Overlay.default()
    for width, height in RESOLUTIONS:
        _say(f"rendering a {SECONDS} s phantom case at {width}x{height} (seed {args.seed})")
        source = PhantomSource(
            seed=args.seed, seconds=SECONDS, width=width, height=height, paced=False
        )
        samples = _samples(source, args.seed)
        for name, (image, context) in samples.items():
            path = args.out / f"{name}_{height}p.png"
            cv2.imwrite(str(path), cv2.cvtColor(overlay.draw(image, context), cv2.COLOR_RGB2BGR))
        _say(f"wrote {len(samples)} samples at {height}p into {args.out}")
        cost = _time_draw(overlay, list(samples.values()), args.frames)
        print(f"{height}p Overlay.default().draw: {cost.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
