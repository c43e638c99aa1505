"""``orstream client prompts``: change the text prompts the edge names zero-shot steps by.

Each ``--set CODE=TEXT`` replaces one step's prompt (``-1`` is out of patient); the steps not
named keep theirs; ``--reset`` goes back to the package's first. The edge answers every step's
prompt now in force. Needs a token of the operator role where the edge asks for tokens.
"""

from __future__ import annotations

import argparse
import json

from orstream.client.connection import add_connection_arguments, edge_stub, read_token
from orstream.errors import OrstreamError
from orstream.results import step_name
from orstream.video_search import PromptChange


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client prompts``."""
    add_connection_arguments(parser)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="CODE=TEXT",
        help='a step\'s new prompt, e.g. 5="the sella is opened with a drill" (repeat for more)',
    )
    parser.add_argument(
        "--reset", action="store_true", help="back to the package's prompts (before any --set)"
    )
    parser.add_argument("--json", action="store_true", help="print the prompts as JSON")


def parse_set(text: str) -> tuple[int, str]:
    """``"5=the sella"`` -> (5, "the sella").

    Raises:
        OrstreamError: no ``=``, or a code that is not a number.
    """
    code, equals, prompt = text.partition("=")
    try:
        number = int(code)
    except ValueError:
        number = None
    if not equals or number is None:
        raise OrstreamError(f"--set {text!r}: give CODE=TEXT, e.g. 5=the sella is opened")
    return number, prompt


def run(args: argparse.Namespace) -> int:
    """Send the change and print every step's prompt now in force."""
    from orstream.proto.convert import prompt_change_to_proto, prompts_from_proto

    pairs = [parse_set(text) for text in args.set]
    codes = [code for code, _ in pairs]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise OrstreamError(f"--set names step {twice[0]} more than once")
    try:
        change = PromptChange(dict(pairs), reset=args.reset)
    except ValueError as error:
        raise OrstreamError(f"{error} (give --set CODE=TEXT or --reset)") from None
    with edge_stub(args.address, args.timeout, read_token(args.token_file), args.tls_ca) as stub:
        response = stub.SetPrompts(prompt_change_to_proto(change), timeout=args.timeout)
    prompts = prompts_from_proto(response)
    if args.json:
        print(json.dumps({str(code): text for code, text in prompts.items()}))
    else:
        for code, text in prompts.items():
            mark = "*" if code in change.prompts else " "
            print(f"{mark}{code:>3} {step_name(code):<27} {text}")
    return 0
