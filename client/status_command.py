"""``orstream client status``: a running edge runtime's sources, models, latencies and drops."""

from __future__ import annotations

import argparse
import math
from collections.abc import Sequence

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.latency import LatencySummary
from orstream.status import ModelStatus, RuntimeStatus


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client status``."""
    add_connection_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Ask the server for its status and print it as tables."""
    from orstream.proto.convert import status_from_proto, status_request_to_proto

    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        status = status_from_proto(stub.GetStatus(status_request_to_proto(), timeout=args.timeout))
    print("\n".join(format_status(status, args.address)))
    return 0


def format_status(status: RuntimeStatus, address: str) -> list[str]:
    """The lines ``orstream client status`` prints."""
    return [
        f"orstream edge at {address}, up {status.uptime_s:.1f} s",
        f"video frames: {status.video_frames_in} in, {status.video_frames_out} out",
        f"frame to result: {status.frame_to_result.describe()}",
        "",
        "sources",
        *_table(
            ("stream", "state", "fps", "frames in", "uri", "error"),
            [
                (s.stream_id, s.state, f"{s.fps:.1f}", str(s.frames_in), s.uri, s.error)
                for s in status.sources
            ],
        ),
        "",
        "models",
        *_table(
            ("model", "stream", "backend", "rate Hz", "state", "inferred", "error"),
            [
                (
                    f"{m.name}@{m.version}",
                    m.stream_id,
                    m.backend,
                    f"{m.rate_hz:g}",
                    m.state,
                    str(m.inferred),
                    m.error,
                )
                for m in status.models
            ],
        ),
        *_backend_reasons(status.models),
        "",
        "stages",
        *_table(
            ("stage", "processed", "dropped", "p50 ms", "p99 ms", "p99.9 ms", "max ms"),
            [
                (s.name, str(s.processed), str(s.dropped), *_percentiles(s.latency))
                for s in status.stages
            ],
        ),
    ]


def _backend_reasons(models: Sequence[ModelStatus]) -> list[str]:
    """Why each model runs where it does, one line each (too long for the table)."""
    reasons = [
        f"  {m.name}@{m.version} on {m.stream_id}: {m.backend_reason}"
        for m in models
        if m.backend_reason
    ]
    return ["", "backend choice", *reasons] if reasons else []


def _percentiles(summary: LatencySummary) -> tuple[str, str, str, str]:
    values = (summary.p50, summary.p99, summary.p999, summary.max)
    p50, p99, p999, top = ("-" if math.isnan(v) else f"{v:.1f}" for v in values)
    return p50, p99, p999, top


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns, two spaces apart, indented under their section title."""
    if not rows:
        return ["  none"]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *rows, strict=True)]
    lines = []
    for row in (headers, *rows):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append(("  " + "  ".join(cells)).rstrip())
    return lines
