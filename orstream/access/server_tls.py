"""How orstream's gRPC servers listen: their options, and their TLS files read into credentials
with one clear error per unreadable file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import grpc

from orstream.errors import OrstreamError

MIN_PING_INTERVAL_MS = 1000
"""The most often a client may ping a connection that carries no call (keepalive): clients that
must notice a vanished peer (the edge's outbox watching a long job) ping every few seconds, and a
server that allowed less would close their connections for pinging too often."""


@dataclass(frozen=True)
class ServerTls:
    """The server's certificate and key (PEM files), and optionally the CA whose certificates
    clients must present (mutual TLS)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials from the files.

        Raises:
            OrstreamError: a file is missing or unreadable.
        """

        def read(path: Path) -> bytes:
            try:
                return path.read_bytes()
            except OSError as error:
                raise OrstreamError(f"{path}: cannot read ({error.strerror})") from None

        ca = None if self.client_ca is None else read(self.client_ca)
        return grpc.ssl_server_credentials(
            [(read(self.key), read(self.cert))],
            root_certificates=ca,
            require_client_auth=ca is not None,
        )


def add_port(server: grpc.Server, address: str, tls: ServerTls | None) -> int:
    """Listen on ``address`` (``HOST:PORT``; port 0 picks a free one): over TLS when ``tls`` is
    given, plain otherwise. Returns the port.

    Raises:
        OrstreamError: the address is in use or does not resolve, or a TLS file is unreadable.
    """
    try:
        if tls is None:
            return server.add_insecure_port(address)
        return server.add_secure_port(address, tls.credentials())
    except RuntimeError:
        raise OrstreamError(
            f"cannot listen for gRPC on {address} (address in use or not resolvable)"
        ) from None


def server_options(max_message_bytes: int) -> list[tuple[str, int]]:
    """The options every orstream gRPC server starts with."""
    return [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        # Refuse a port another server listens on instead of sharing it silently.
        ("grpc.so_reuseport", 0),
        # Let clients keep idle connections alive with pings, and check them that way.
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", MIN_PING_INTERVAL_MS),
    ]
