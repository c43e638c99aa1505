"""``orstream tokens add``: a new bearer token for the gRPC API, printed once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from orstream.access.tokens import ROLES

    parser.add_argument("--file", type=Path, required=True, help="tokens file (YAML of hashes)")
    parser.add_argument("--name", required=True, help="who the token is for, e.g. or3-display")
    parser.add_argument("--role", required=True, choices=ROLES, help="what the token may do")


def run(args: argparse.Namespace) -> int:
    from orstream.access.tokens import add_token

    token = add_token(args.file, args.name, args.role)
    print(token)
    print(
        f"token for {args.name} ({args.role}) added to {args.file}: this is the only time it is "
        "shown",
        file=sys.stderr,
    )
    return 0
