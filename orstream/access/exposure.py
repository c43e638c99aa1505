"""The rule every orstream gRPC server follows: loopback may run without protection; any other
address needs TLS and tokens unless the user explicitly makes it insecure."""

from __future__ import annotations


def is_loopback(address: str) -> bool:
    """Whether ``HOST:PORT`` listens on this machine only."""
    host = address.rsplit(":", 1)[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")


def exposure_problem(address: str, *, tls: bool, tokens: bool, insecure: bool) -> str | None:
    """Why serving ``address`` so would be unsafe (None: it is allowed).

    Args:
        address: ``HOST:PORT`` to serve on.
        tls: a certificate and key are given.
        tokens: a tokens file is given.
        insecure: the user asked to serve without protection anyway.
    """
    if (tls and tokens) or insecure or is_loopback(address):
        return None
    return (
        f"grpc address {address} is reachable from other machines: give TLS "
        "(--tls-cert, --tls-key) and --tokens, or --insecure to serve it unprotected"
    )
