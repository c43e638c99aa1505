"""gRPC over TLS, and mutual TLS: only clients that trust the server's CA (and, with a client
CA, present a certificate of it) get through; a non-loopback address needs TLS and tokens."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from edge_samples import sample_status
from tls_certificates import make_pki

from orstream.access.server_tls import ServerTls
from orstream.client.connection import edge_stub
from orstream.edge.app.config import parse_config
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def tls_server(pki: Path, request: pytest.FixtureRequest) -> Iterator[EdgeGrpcServer]:
    client_ca = pki / "ca.pem" if getattr(request, "param", False) else None
    tls = ServerTls(pki / "server.pem", pki / "server.key", client_ca)
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0", tls=tls)
    server.start()
    yield server
    server.stop(0.5)


def status_over(channel: grpc.Channel) -> grpc.StatusCode:
    try:
        edge_pb2_grpc.EdgeServiceStub(channel).GetStatus(edge_pb2.GetStatusRequest(), timeout=3)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


def test_only_clients_that_trust_the_ca_get_through(tls_server: EdgeGrpcServer, pki: Path) -> None:
    address = f"127.0.0.1:{tls_server.port}"
    with edge_stub(address, 5, tls_ca=pki / "ca.pem") as stub:
        assert len(stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=5).sources) >= 1
    with grpc.insecure_channel(address) as channel:
        assert status_over(channel) == grpc.StatusCode.UNAVAILABLE
    other = grpc.ssl_channel_credentials((pki / "other-ca.pem").read_bytes())
    with grpc.secure_channel(address, other) as channel:
        assert status_over(channel) == grpc.StatusCode.UNAVAILABLE


@pytest.mark.parametrize("tls_server", [True], indirect=True)
def test_mutual_tls_needs_a_client_certificate_of_the_ca(
    tls_server: EdgeGrpcServer, pki: Path
) -> None:
    address = f"127.0.0.1:{tls_server.port}"
    ca = (pki / "ca.pem").read_bytes()
    with grpc.secure_channel(address, grpc.ssl_channel_credentials(ca)) as channel:
        assert status_over(channel) == grpc.StatusCode.UNAVAILABLE
    with_cert = grpc.ssl_channel_credentials(
        ca, (pki / "client.key").read_bytes(), (pki / "client.pem").read_bytes()
    )
    with grpc.secure_channel(address, with_cert) as channel:
        assert status_over(channel) == grpc.StatusCode.OK


def test_a_non_loopback_address_needs_tls_and_tokens_or_insecure(pki: Path) -> None:
    source = {"uri": "a.mp4"}
    with pytest.raises(OrstreamError, match="reachable from other machines"):
        parse_config({"source": source, "grpc": {"address": "0.0.0.0:6000"}}, "test")
    with pytest.raises(OrstreamError, match="reachable from other machines"):  # TLS alone
        parse_config(
            {
                "source": source,
                "grpc": {
                    "address": "0.0.0.0:6000",
                    "tls_cert": str(pki / "server.pem"),
                    "tls_key": str(pki / "server.key"),
                },
            },
            "test",
        )
    secured = {
        "address": "0.0.0.0:6000",
        "tls_cert": str(pki / "server.pem"),
        "tls_key": str(pki / "server.key"),
        "tokens": "tokens.yaml",
    }
    assert parse_config({"source": source, "grpc": secured}, "test").grpc.tokens is not None
    insecure = {"address": "0.0.0.0:6000", "insecure": True}
    assert parse_config({"source": source, "grpc": insecure}, "test").grpc.insecure
    for local in ("127.0.0.1:6000", "localhost:6000", "[::1]:6000"):
        assert parse_config({"source": source, "grpc": {"address": local}}, "test")
    with pytest.raises(OrstreamError, match="together"):
        parse_config({"source": source, "grpc": {"tls_cert": "c.pem"}}, "test")
