"""The connection every ``orstream client`` command makes: address, deadline, clear errors.

Imports grpc inside the functions, so the command modules stay light at load time.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from orstream.errors import OrstreamError

if TYPE_CHECKING:
    import grpc

    from orstream.proto.orstream.v1.edge_pb2_grpc import EdgeServiceStub

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_TIMEOUT_S = 5.0


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """``--address``, ``--timeout`` and ``--token-file``, shared by every client command."""
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
    add_credential_arguments(parser)


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    """``--tls-ca`` and ``--token-file``: how a client proves itself to any orstream server."""
    parser.add_argument(
        "--tls-ca",
        type=Path,
        metavar="PEM",
        help="connect over TLS, trusting this CA (the server's --tls-cert must chain to it)",
    )
    parser.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="a file holding the bearer token (from orstream tokens add) to call with",
    )


def read_token(path: Path | None) -> str | None:
    """The token in ``path`` (its first line), or None without a path.

    Raises:
        OrstreamError: the file is missing or empty.
    """
    if path is None:
        return None
    if not path.is_file():
        raise OrstreamError(f"{path}: token file not found")
    token = path.read_text(encoding="utf-8").strip().split("\n", 1)[0].strip()
    if not token:
        raise OrstreamError(f"{path}: the token file is empty")
    return token


@contextmanager
def edge_stub(
    address: str, timeout_s: float, token: str | None = None, tls_ca: Path | None = None
) -> Iterator[EdgeServiceStub]:
    """An ``EdgeService`` stub on a channel that reached the server within ``timeout_s``;
    with a ``token`` every call carries it as ``authorization: Bearer TOKEN``; with ``tls_ca``
    the channel is TLS, trusting that CA.

    Raises:
        OrstreamError: when the server cannot be reached in time, or a call inside the block
            fails (one line with the gRPC status and the server's message).
    """
    import grpc

    from orstream.proto.orstream.v1.edge_pb2_grpc import EdgeServiceStub

    channel = open_channel(address, timeout_s, tls_ca, "an orstream edge server")
    try:
        try:
            if token is None:
                yield EdgeServiceStub(channel)
            else:
                from orstream.client.bearer import BearerToken

                yield EdgeServiceStub(grpc.intercept_channel(channel, BearerToken(token)))
        except grpc.RpcError as error:
            raise OrstreamError(
                f"{address}: {error.code().name}: {error.details() or 'no details'}"
            ) from None
    finally:
        channel.close()


def open_channel(
    address: str, timeout_s: float, tls_ca: Path | None = None, what: str = "an orstream server"
) -> grpc.Channel:
    """A channel to ``address`` that reached the server within ``timeout_s`` (TLS trusting
    ``tls_ca`` when given).

    Raises:
        OrstreamError: the CA file is missing, or ``what`` cannot be reached in time.
    """
    import grpc

    channel = make_channel(address, tls_ca)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        channel.close()
        raise OrstreamError(f"cannot reach {what} at {address} within {timeout_s:g} s") from None
    return channel


def make_channel(address: str, tls_ca: Path | None = None) -> grpc.Channel:
    """A channel to ``address`` (TLS trusting ``tls_ca`` when given), not yet connected.

    Raises:
        OrstreamError: the CA file is missing.
    """
    import grpc

    if tls_ca is None:
        return grpc.insecure_channel(address)
    if not tls_ca.is_file():
        raise OrstreamError(f"{tls_ca}: CA file not found")
    credentials = grpc.ssl_channel_credentials(root_certificates=tls_ca.read_bytes())
    return grpc.secure_channel(address, credentials)
