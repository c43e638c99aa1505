"""``orstream client subscribe``: print an edge runtime's live results, one line each."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.handoffs import HANDOFF_KIND, HandOffItem
from orstream.labels import INSTRUMENTS
from orstream.results import KINDS, FrameResult


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client subscribe``."""
    add_connection_arguments(parser)
    parser.add_argument(
        "--stream",
        action="append",
        default=[],
        metavar="ID",
        help="only this stream (repeat for several; default: every stream)",
    )
    parser.add_argument(
        "--kind",
        action="append",
        default=[],
        choices=(*KINDS, HANDOFF_KIND),
        help="only results of this kind (repeat for several; default: every kind but "
        "segmentation and handoff, the edge's hand-offs to the job server)",
    )
    parser.add_argument(
        "--count", type=int, metavar="N", help="stop after N results (default: until Ctrl-C)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object per result")


def run(args: argparse.Namespace) -> int:
    """Subscribe and print each result as it arrives, until --count, Ctrl-C or the server ends."""
    from orstream.client.handoff_command import handoff_as_dict, handoff_line
    from orstream.proto.convert import subscribe_event_from_proto, subscribe_request_to_proto

    request = subscribe_request_to_proto(args.stream, args.kind)
    received = 0
    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        responses = stub.Subscribe(request)
        try:
            for response in responses:
                result, dropped = subscribe_event_from_proto(response)
                if isinstance(result, HandOffItem):
                    record = handoff_as_dict(result)
                    line = json.dumps(record) if args.json else f"handoff {handoff_line(result)}"
                elif args.json:
                    line = json.dumps(result_record(result, dropped))
                else:
                    line = format_result(result, dropped)
                print(line, flush=True)
                received += 1
                if args.count is not None and received >= args.count:
                    return 0
        finally:
            responses.cancel()
    print(f"orstream: the server ended the subscription after {received} results", file=sys.stderr)
    return 0


def format_result(result: FrameResult, dropped: int) -> str:
    """One readable line: stream, index, pts, step and confidence, instruments, latency."""
    parts = [f"{result.stream_id} #{result.index} pts {result.pts_ns / 1e9:.3f} s"]
    if result.step is not None:
        step = result.step
        parts.append(f"step {step.code} {step.name} {step.confidence:.2f}")
    if result.instruments is not None:
        seen = ", ".join(
            f"{INSTRUMENTS[code]} {probability:.2f}"
            for code, probability in result.instruments.present
        )
        parts.append(f"instruments {seen or 'none'}")
    parts.append(f"latency {result.latency_ms:.1f} ms")
    if result.stale:
        parts.append("stale")
    if dropped:
        parts.append(f"{dropped} dropped")
    return " | ".join(parts)


def result_record(result: FrameResult, dropped: int) -> dict[str, Any]:
    """The JSON object ``--json`` prints for a result."""
    return {
        "stream_id": result.stream_id,
        "index": result.index,
        "pts_ns": result.pts_ns,
        "capture_ns": result.capture_ns,
        "produced_ns": result.produced_ns,
        "latency_ms": result.latency_ms,
        "models": list(result.models),
        "step": None
        if result.step is None
        else {
            "code": result.step.code,
            "name": result.step.name,
            "confidence": result.step.confidence,
        },
        "instruments": None
        if result.instruments is None
        else {
            "slots": list(result.instruments.slots),
            "present": [
                {"code": code, "name": INSTRUMENTS[code], "probability": probability}
                for code, probability in result.instruments.present
            ],
        },
        "stale": result.stale,
        "dropped": dropped,
    }
