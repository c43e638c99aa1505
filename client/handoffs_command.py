"""``orstream client handoffs``: the items of an edge's outbox, or one of them.

Without an item, the most recent items first, one line each (``--state waiting``: those the
server has not taken yet); with ``ITEM``, that item, with its job's result (``--json``: as
JSON).
"""

from __future__ import annotations

import argparse
import json

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.handoffs import HANDOFF_STATES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client handoffs``."""
    add_connection_arguments(parser)
    parser.add_argument("item", nargs="?", metavar="ITEM", help="show this item only")
    parser.add_argument("--state", choices=HANDOFF_STATES, default="", help="only this state")
    parser.add_argument("--limit", type=int, default=0, metavar="N", help="at most N (default 100)")
    parser.add_argument("--json", action="store_true", help="one JSON object per item")


def run(args: argparse.Namespace) -> int:
    """Print the items."""
    from orstream.client.handoff_command import handoff_as_dict, handoff_line
    from orstream.proto.convert import handoff_from_proto, handoff_list_from_proto
    from orstream.proto.orstream.v1 import edge_pb2

    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        if args.item is not None:
            answer = stub.GetHandOff(edge_pb2.GetHandOffRequest(id=args.item), timeout=args.timeout)
            items = [handoff_from_proto(answer)]
        else:
            request = edge_pb2.ListHandOffsRequest(state=args.state, limit=max(args.limit, 0))
            items = handoff_list_from_proto(stub.ListHandOffs(request, timeout=args.timeout))
    for item in items:
        print(json.dumps(handoff_as_dict(item)) if args.json else handoff_line(item))
    return 0
