"""``orstream client search``: the moments of a stream's recent video that match a text.

The edge's video-text model keeps the embedding of every clip of each stream (never the
frames); a search embeds the text there and answers the best moments, a clip apart.
"""

from __future__ import annotations

import argparse
import json

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.errors import OrstreamError
from orstream.video_search import DEFAULT_LIMIT, MAX_LIMIT, SearchAnswer, SearchRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client search``."""
    add_connection_arguments(parser)
    parser.add_argument("text", help='what to look for, e.g. "the suction near the sella"')
    parser.add_argument(
        "--stream", default="", metavar="ID", help="the stream (may be left out with one stream)"
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="look back this far in the stream (default: everything the edge keeps)",
    )
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"moments to show at most, 1..{MAX_LIMIT} (default {DEFAULT_LIMIT})",
    )
    parser.add_argument("--json", action="store_true", help="print the answer as one JSON object")


def run(args: argparse.Namespace) -> int:
    """Check the request, send it, print the moments best first."""
    from orstream.proto.convert import search_answer_from_proto, search_request_to_proto

    try:
        request = SearchRequest(args.text, args.stream, args.seconds, args.limit)
    except ValueError as error:
        raise OrstreamError(str(error)) from None
    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        response = stub.Search(search_request_to_proto(request), timeout=args.timeout)
    answer = search_answer_from_proto(response)
    if args.json:
        print(json.dumps(answer_record(answer)))
    else:
        print("\n".join(format_answer(args.text, answer)))
    return 0


def answer_record(answer: SearchAnswer) -> dict[str, object]:
    """The answer as plain JSON values (times in seconds of the stream)."""
    return {
        "stream_id": answer.stream_id,
        "model": answer.model,
        "searched": answer.searched,
        "latency_ms": answer.latency_ms,
        "moments": [
            {
                "index": m.index,
                "start_s": m.start_pts_ns / 1e9,
                "end_s": m.pts_ns / 1e9,
                "score": m.score,
            }
            for m in answer.moments
        ],
    }


def format_answer(text: str, answer: SearchAnswer) -> list[str]:
    """A heading and one line per moment: its span in the stream, frame and score."""
    lines = [
        f'stream {answer.stream_id}: "{text}" over {answer.searched} clips '
        f"({answer.model}, {answer.latency_ms:.1f} ms)"
    ]
    if not answer.moments:
        lines.append("  no clips kept yet")
    for rank, m in enumerate(answer.moments, 1):
        lines.append(
            f"  {rank:>2}. {m.start_pts_ns / 1e9:9.1f} s - {m.pts_ns / 1e9:9.1f} s  "
            f"frame {m.index:<7} score {m.score:+.3f}"
        )
    return lines
