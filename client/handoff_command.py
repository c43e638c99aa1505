"""``orstream client handoff``: hand the last seconds of a stream to the job server.

    orstream client handoff probe --stream endo --seconds 20
    orstream client handoff probe --seconds 20 --param window_s=2 --wait --json

The edge writes the clip (without its private frames) to its outbox and answers the item at
once; it sends the item to its job server itself, retrying while the server is away. The item's
id is printed; ``--wait`` follows the item to its end instead (exit 0 when its job succeeded,
1 otherwise). A full outbox, or a window whose every frame is private, is one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.errors import OrstreamError
from orstream.handoffs import HANDOFF_KIND, HandOffItem, HandOffRequest


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client handoff``."""
    add_connection_arguments(parser)
    parser.add_argument("kind", metavar="KIND", help="the server job kind, e.g. probe")
    parser.add_argument("--stream", default="", metavar="ID", help="the stream (default: the one)")
    parser.add_argument(
        "--seconds",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds of the stream to hand off, ending now (default: the edge's)",
    )
    parser.add_argument(
        "--param", action="append", default=[], metavar="NAME=VALUE", help="a kind's parameter"
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow the item until its job ends; print each change"
    )
    parser.add_argument("--json", action="store_true", help="print the item as JSON")


def run(args: argparse.Namespace) -> int:
    """Ask for the hand-off; print its item, or follow it with ``--wait``."""
    from orstream.proto.convert import (
        handoff_from_proto,
        handoff_request_to_proto,
        subscribe_event_from_proto,
        subscribe_request_to_proto,
    )

    request = HandOffRequest(args.kind, args.stream, args.seconds, _params(args.param))
    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        if not args.wait:
            item = handoff_from_proto(
                stub.HandOff(handoff_request_to_proto(request), timeout=args.timeout)
            )
            print(json.dumps(handoff_as_dict(item)) if args.json else item.id)
            return 0
        # Subscribed before asking, so no change of the item can pass unseen.
        updates = stub.Subscribe(subscribe_request_to_proto((), (HANDOFF_KIND,)))
        try:
            updates.initial_metadata()
            item = handoff_from_proto(
                stub.HandOff(handoff_request_to_proto(request), timeout=args.timeout)
            )
            _show(item, args.json)
            for message in updates:
                event, _ = subscribe_event_from_proto(message)
                if isinstance(event, HandOffItem) and event.id == item.id:
                    item = event
                    _show(item, args.json)
                    if item.final:
                        return 0 if item.state == "succeeded" else 1
        finally:
            updates.cancel()
    raise OrstreamError(f"the edge ended the subscription before hand-off {item.id} ended")


def _show(item: HandOffItem, as_json: bool) -> None:
    print(json.dumps(handoff_as_dict(item)) if as_json else handoff_line(item), flush=True)


def handoff_line(item: HandOffItem) -> str:
    """One readable line about an item: id, stream, kind, state, job and what it is doing."""
    parts = [f"{item.id} {item.stream_id} {item.kind} {item.state}"]
    if item.frames or item.withheld_frames:
        parts.append(f"{item.frames} frames ({item.withheld_frames} private left out)")
    if item.job_id:
        parts.append(f"job {item.job_id} {item.job_state} {item.progress:.0%}".rstrip())
    if item.last_error and not item.final:
        parts.append(f"sends {item.sends}, last: {item.last_error}")
    if item.error:
        parts.append(f"error: {item.error}")
    if item.result is not None:
        parts.append(f"result: {json.dumps(item.result)}")
    return " | ".join(parts)


def handoff_as_dict(item: HandOffItem) -> dict[str, Any]:
    """An item as ``--json`` prints it."""
    return {
        "id": item.id,
        "stream_id": item.stream_id,
        "kind": item.kind,
        "seconds": item.seconds,
        "params": dict(item.params),
        "origin": item.origin,
        "idempotency_key": item.idempotency_key,
        "state": item.state,
        "frames": item.frames,
        "withheld_frames": item.withheld_frames,
        "clip_bytes": item.clip_bytes,
        "sends": item.sends,
        "last_error": item.last_error,
        "job_id": item.job_id,
        "job_state": item.job_state,
        "job_attempts": item.job_attempts,
        "progress": item.progress,
        "progress_message": item.progress_message,
        "result": None if item.result is None else dict(item.result),
        "error": item.error,
        "created_s": item.created_s,
        "accepted_s": item.accepted_s,
        "finished_s": item.finished_s,
    }


def _params(items: list[str]) -> dict[str, str]:
    """``NAME=VALUE`` options as a dict.

    Raises:
        OrstreamError: one has no ``=``.
    """
    params = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise OrstreamError(f"--param {item!r}: needs NAME=VALUE")
        params[name] = value
    return params
