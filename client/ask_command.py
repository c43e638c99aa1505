"""``orstream client ask``: ask the server tier's vision-language model about a live stream.

    orstream client ask "Which instruments are in view?" --stream or1 --seconds 8

The edge cuts the last seconds of the stream (without its private frames), hands them with the
question to its job server through the outbox, and streams the answer back as it is decoded:
printed as it arrives, the reasoning dimmed on a terminal and the answer plain. While the
server cannot be reached the question waits in the outbox, and each failed try is printed
(on stderr) so the asker knows; Ctrl-C stops waiting (the item stays in the outbox and its
answer can be read later with ``orstream client handoffs ITEM``). Exit 0 when answered, 1 when
the job failed or was cancelled or refused, 2 for a refused question (empty, too long, an
unknown stream, a clip all private) or an edge that hands nothing to a server.
"""

from __future__ import annotations

import argparse
import sys

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.errors import OrstreamError
from orstream.handoffs import AnswerPiece, AskRequest, HandOffItem


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client ask``."""
    add_connection_arguments(parser)
    parser.add_argument("question", metavar="QUESTION", help="the question, in quotes")
    parser.add_argument("--stream", default="", metavar="ID", help="the stream (default: the one)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds of the stream the question is about, ending now (default: the edge's)",
    )
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=0,
        metavar="N",
        help="the longest answer in tokens (default: the server's)",
    )
    parser.add_argument(
        "--no-reasoning", action="store_true", help="ask for the answer alone, without reasoning"
    )


def run(args: argparse.Namespace) -> int:
    """Ask, and print the answer as it streams."""
    from orstream.client.answer_printer import AnswerPrinter
    from orstream.proto.convert import ask_event_from_proto, ask_request_to_proto

    if args.max_new_tokens < 0:
        raise OrstreamError(f"--max-new-tokens {args.max_new_tokens}: not negative")
    request = AskRequest(
        args.question, args.stream, args.seconds, args.max_new_tokens, not args.no_reasoning
    )
    printer = AnswerPrinter(sys.stdout, sys.stdout.isatty())
    attempt = 0
    last: HandOffItem | None = None
    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        call = stub.Ask(ask_request_to_proto(request))
        try:
            for message in call:
                event = ask_event_from_proto(message)
                if isinstance(event, AnswerPiece):
                    if attempt and event.attempt != attempt:
                        printer.restart()
                    attempt = event.attempt
                    printer.feed(event.text)
                    continue
                if last is None:
                    print(f"asked: item {event.id}, {event.frames} frames", file=sys.stderr)
                elif event.sends != last.sends and event.last_error and not event.final:
                    print(
                        f"waiting in the outbox (try {event.sends}): {event.last_error}",
                        file=sys.stderr,
                    )
                last = event
        finally:
            call.cancel()
    printer.finish()
    if last is None or not last.final:
        raise OrstreamError("the edge ended the answer's stream before the answer was over")
    if last.state != "succeeded":
        print(f"{last.state}: {last.error or last.job_state}", file=sys.stderr)
        return 1
    return 0
