"""``orstream client timeline``: the step segments of one stream so far."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.results import step_name
from orstream.step_timeline import StepSegment


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client timeline``."""
    add_connection_arguments(parser)
    parser.add_argument("--stream", default="cam0", metavar="ID", help="the stream (default cam0)")


def run(args: argparse.Namespace) -> int:
    """Ask the server for the stream's step segments and print them, oldest first."""
    from orstream.proto.convert import timeline_from_proto, timeline_request_to_proto

    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        response = stub.GetTimeline(timeline_request_to_proto(args.stream), timeout=args.timeout)
    stream_id, segments = timeline_from_proto(response)
    print("\n".join(format_timeline(stream_id, segments)))
    return 0


def format_timeline(stream_id: str, segments: Sequence[StepSegment]) -> list[str]:
    """A heading and one line per segment: start, end and duration, step, frame range."""
    lines = [f"stream {stream_id}: {len(segments)} step segments"]
    for s in segments:
        lines.append(
            f"  {s.start_pts_ns / 1e9:9.3f} s - {s.end_pts_ns / 1e9:9.3f} s "
            f"({s.duration_s:8.3f} s)  step {s.code:>2} {step_name(s.code):<25} "
            f"frames {s.start_index}-{s.end_index}"
        )
    return lines
