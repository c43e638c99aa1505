"""The connection every ``orstream client`` command makes: address, deadline, clear errors.

Imports grpc inside the functions, so the command modules stay light at load time.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from orstream.errors import OrstreamError

if TYPE_CHECKING:
    from orstream.proto.orstream.v1.edge_pb2_grpc import EdgeServiceStub

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 5.0


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--address`` and ``--timeout``, shared by every client command."""
    parser.add_argument(
        "--address",
        default=DEFAULT_ADDRESS,
        metavar="HOST:PORT",
        help=f"the edge runtime's gRPC address (default {DEFAULT_ADDRESS})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"give up when the server does not answer within this time "
        f"(default {DEFAULT_TIMEOUT_S:g})",
    )


@contextmanager
def edge_stub(address: str, timeout_s: float) -> Iterator[EdgeServiceStub]:
    """An ``EdgeService`` stub on a channel that reached the server within ``timeout_s``.

    Raises:
        OrstreamError: when the server cannot be reached in time, or a call inside the block
            fails (one line with the gRPC status and the server's message).
    """
    import grpc

    from orstream.proto.orstream.v1.edge_pb2_grpc import EdgeServiceStub

    channel = grpc.insecure_channel(address)
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise OrstreamError(
                f"cannot reach an orstream edge server at {address} within {timeout_s:g} s"
            ) from None
        try:
            yield EdgeServiceStub(channel)
        except grpc.RpcError as error:
            raise OrstreamError(
                f"{address}: {error.code().name}: {error.details() or 'no details'}"
            ) from None
    finally:
        channel.close()
