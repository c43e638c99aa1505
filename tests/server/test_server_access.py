"""The job service's access control, the edge's own: a bearer token of the method's role
(viewer reads, operator also submits and cancels), TLS, and no unprotected non-loopback
address unless asked for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tls_certificates import make_pki

from orstream.access.tokens import add_token
from orstream.cli import main
from orstream.client.server_client import ServerClient
from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import server_pb2, server_pb2_grpc
from orstream.server.job_server import JobServer, ServerSettings

Start = Callable[..., tuple[JobServer, str]]


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("auth") / "tokens.yaml"
    return path, {role: add_token(path, f"{role}-one", role) for role in ("viewer", "operator")}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_calls_need_a_token_of_their_methods_role(
    start_server: Start, video: Path, tokens: tuple[Path, dict[str, str]]
) -> None:
    _, address = start_server(tokens=tokens[0])
    given = tokens[1]
    for token in (None, "not-a-token"):
        with ServerClient(address, token=token) as client:
            with pytest.raises(OrstreamError, match="UNAUTHENTICATED"):
                client.list()
            with pytest.raises(OrstreamError, match="UNAUTHENTICATED"):
                client.submit("probe", [video])
            with pytest.raises(OrstreamError, match="UNAUTHENTICATED"):
                list(client.watch("0" * 32))
    with ServerClient(address, token=given["operator"]) as client:
        job_id, _ = client.submit("probe", [video], key="auth-1")
    with ServerClient(address, token=given["viewer"]) as client:
        assert [job.id for job in client.list()] == [job_id]
        assert list(client.watch(job_id))[-1].state == "succeeded"
        with pytest.raises(OrstreamError, match=r"PERMISSION_DENIED.*needs operator"):
            client.submit("probe", [video], key="auth-2")
        with pytest.raises(OrstreamError, match="PERMISSION_DENIED"):
            client.cancel(job_id)
        assert len(client.list()) == 1  # the refused submission made no job
    with grpc.insecure_channel(address) as channel:  # health stays open
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=""), timeout=5
        )
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_tls_serves_clients_that_trust_the_ca_only(
    start_server: Start, video: Path, pki: Path, tokens: tuple[Path, dict[str, str]]
) -> None:
    _, address = start_server(
        tls_cert=pki / "server.pem", tls_key=pki / "server.key", tokens=tokens[0]
    )
    token = tokens[1]["operator"]
    with ServerClient(address, token=token, tls_ca=pki / "ca.pem") as client:
        job_id, _ = client.submit("probe", [video])
        assert list(client.watch(job_id))[-1].state == "succeeded"
    with grpc.insecure_channel(address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            server_pb2_grpc.ServerServiceStub(channel).ListJobs(
                server_pb2.ListJobsRequest(), timeout=3
            )
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_the_client_command_passes_its_token_and_ca(
    start_server: Start,
    video: Path,
    pki: Path,
    tokens: tuple[Path, dict[str, str]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, address = start_server(
        tls_cert=pki / "server.pem", tls_key=pki / "server.key", tokens=tokens[0]
    )
    token_file = tmp_path / "operator.token"
    token_file.write_text(tokens[1]["operator"] + "\n")
    secured = (
        "--address",
        address,
        "--tls-ca",
        str(pki / "ca.pem"),
        "--token-file",
        str(token_file),
    )
    assert main(["client", "server", "submit", "probe", "--input", str(video), *secured]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["client", "server", "watch", job_id, *secured]) == 0
    no_token = ("--address", address, "--tls-ca", str(pki / "ca.pem"))
    assert main(["client", "server", "list", *no_token]) != 0
    assert "UNAUTHENTICATED" in capsys.readouterr().err


def test_a_non_loopback_address_needs_tls_and_tokens_or_insecure(
    tmp_path: Path, pki: Path, tokens: tuple[Path, dict[str, str]]
) -> None:
    with pytest.raises(OrstreamError, match="reachable from other machines"):
        ServerSettings(store=tmp_path, address="0.0.0.0:6000")
    with pytest.raises(OrstreamError, match="reachable from other machines"):  # TLS alone
        ServerSettings(
            store=tmp_path,
            address="0.0.0.0:6000",
            tls_cert=pki / "server.pem",
            tls_key=pki / "server.key",
        )
    assert ServerSettings(
        store=tmp_path,
        address="0.0.0.0:6000",
        tls_cert=pki / "server.pem",
        tls_key=pki / "server.key",
        tokens=tokens[0],
    )
    assert ServerSettings(store=tmp_path, address="0.0.0.0:6000", insecure=True).insecure
    with pytest.raises(OrstreamError, match="together"):
        ServerSettings(store=tmp_path, tls_cert=pki / "server.pem")
