"""``orstream client health``: is an edge runtime or a job server SERVING?

Both serve ``grpc.health.v1``: the edge goes NOT_SERVING when no stream delivers or a model
failed, and reports each stream as ``stream/<id>``; both go NOT_SERVING before they stop. Health
takes no token, so monitors and container health checks (the images' ``HEALTHCHECK`` runs this
command) need no credentials. One question, one line; exit 0 for SERVING and 1 for anything
else, including no answer within ``--timeout``, which is what such checks test.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from orstream.client.connection import DEFAULT_ADDRESS, make_channel
from orstream.status import stream_health_name

DEFAULT_TIMEOUT_S = 3.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``orstream client health``."""
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        metavar="HOST:PORT",
        help=f"the edge runtime's or job server's gRPC address (default {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"unhealthy when no answer comes within this time (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="connect over TLS, trusting this CA (the server's --tls-cert must chain to it)",
    )
    which = parser.add_mutually_exclusive_group()
    which.add_argument(
        "--service", default="", metavar="NAME", help="a health service name (default: overall)"
    )
    which.add_argument("--stream", metavar="ID", help="one stream of an edge runtime")


def run(args: argparse.Namespace) -> int:
    """Ask once and print ``ADDRESS SERVICE: STATE``; 0 for SERVING, else 1."""
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    service = stream_health_name(args.stream) if args.stream is not None else args.service
    shown = f"{args.address} {service or '(overall)'}"
    with make_channel(args.address, args.tls_ca) as channel:
        request = health_pb2.HealthCheckRequest(service=service)
        try:
            answer = health_pb2_grpc.HealthStub(channel).Check(request, timeout=args.timeout)
        except grpc.RpcError as error:
            print(
                f"{shown}: {error.code().name}: {error.details() or 'no answer'}", file=sys.stderr
            )
            return 1
    state = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
    print(f"{shown}: {state}")
    return 0 if answer.status == health_pb2.HealthCheckResponse.SERVING else 1
