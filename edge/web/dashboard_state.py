"""What the dashboard shows, as JSON: made from the runtime's status (the snapshot ``GetStatus``
returns), the newest result of each stream and the step timelines of the result hub (what
``GetTimeline`` returns), so the page and the gRPC API always say the same.

A stream's picture is **NO SIGNAL** while its source does not deliver (stalled, reconnecting,
ended, failed, interrupted), its AI result **stale** once it is older than the recognizer's
interval plus the overlay's ``stale_after_ms`` (the overlay's own rule), and **out of patient**
while its step is -1.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from orstream.edge.overlay.names import display_name
from orstream.edge.overlay.palette import Colour, segment_colour, step_colour
from orstream.labels import INSTRUMENTS, OUT_OF_PATIENT
from orstream.latency import LatencySummary
from orstream.results import FrameResult, step_name
from orstream.status import ModelStatus, RuntimeStatus, SourceStatus
from orstream.step_timeline import StepSegment

Json = dict[str, Any]


def hex_colour(colour: Colour) -> str:
    """``(230, 25, 75)`` -> ``"#e6194b"``."""
    return "#{:02x}{:02x}{:02x}".format(*colour)


def dashboard_state(
    status: RuntimeStatus,
    latest: Mapping[str, FrameResult],
    timeline: Callable[[str], tuple[StepSegment, ...]],
    stale_after_s: float | None,
    now_ns: int,
) -> Json:
    """The whole page's state.

    Args:
        status: the runtime's status now.
        latest: each stream's newest recognizer result.
        timeline: a stream's step segments so far (raises KeyError before its first result).
        stale_after_s: age after which a result is stale (None: no recognizer runs).
        now_ns: ``time.monotonic_ns()`` now (the clock results are stamped with).
    """
    return {
        "uptime_s": round(status.uptime_s, 1),
        "frame_to_result_ms": _latency(status.frame_to_result),
        "models": sorted({f"{m.name}@{m.version} ({m.backend})" for m in status.models}),
        "streams": [
            stream_state(
                source,
                latest.get(source.stream_id),
                _segments(timeline, source.stream_id),
                stale_after_s,
                now_ns,
                tuple(m for m in status.models if m.stream_id == source.stream_id),
            )
            for source in status.sources
        ],
    }


def stream_state(
    source: SourceStatus,
    result: FrameResult | None,
    segments: tuple[StepSegment, ...],
    stale_after_s: float | None,
    now_ns: int,
    models: tuple[ModelStatus, ...] = (),
) -> Json:
    """One stream's state (see the module for NO SIGNAL, stale and out of patient); its
    ``model_failures`` name each of the stream's ``models`` that failed and why, for the
    page's AI FAILED banner (the video keeps playing without it)."""
    step = None if result is None else result.step
    age_s = None if result is None else max(0.0, (now_ns - result.produced_ns) / 1e9)
    stale = age_s is not None and stale_after_s is not None and age_s > stale_after_s
    instruments = [] if result is None or result.instruments is None else result.instruments.present
    return {
        "id": source.stream_id,
        "state": source.state,
        "signal": source.up,
        "error": source.error,
        "fps": round(source.fps, 1),
        "frames_in": source.frames_in,
        "step": None if step is None else _step(step.code, step.confidence),
        "out_of_patient": step is not None and step.code == OUT_OF_PATIENT,
        "stale": stale or (result is not None and not source.up),
        "result_age_s": None if age_s is None else round(age_s, 2),
        "result_latency_ms": None if result is None else round(result.latency_ms, 1),
        "result_index": None if result is None else result.index,
        "model_failures": [f"{m.name}: {m.error}" for m in models if m.state == "failed"],
        "instruments": [
            {
                "code": code,
                "name": display_name(INSTRUMENTS[code]),
                "probability": round(probability, 3),
                "colour": hex_colour(segment_colour(code)),
            }
            for code, probability in instruments
        ],
        "timeline": [
            {
                "code": segment.code,
                "name": display_name(step_name(segment.code)),
                "start_s": round(segment.start_pts_ns / 1e9, 2),
                "end_s": round(segment.end_pts_ns / 1e9, 2),
                "colour": hex_colour(step_colour(segment.code)),
            }
            for segment in segments
        ],
    }


def _step(code: int, confidence: float) -> Json:
    return {
        "code": code,
        "name": display_name(step_name(code)),
        "confidence": round(confidence, 3),
        "colour": hex_colour(step_colour(code)),
    }


def _segments(
    timeline: Callable[[str], tuple[StepSegment, ...]], stream_id: str
) -> tuple[StepSegment, ...]:
    try:
        return timeline(stream_id)
    except KeyError:  # no result of the stream yet
        return ()


def _latency(summary: LatencySummary) -> Json | None:
    if summary.count == 0 or math.isnan(summary.p50):
        return None
    return {"p50": round(summary.p50, 1), "p99": round(summary.p99, 1), "count": summary.count}
