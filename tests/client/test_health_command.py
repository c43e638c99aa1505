"""``orstream client health`` against a real ``grpc.health.v1`` service on loopback: the exit
status container health checks and monitors read."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent import futures

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from orstream.cli import main

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def served() -> Iterator[tuple[health.HealthServicer, str, grpc.Server]]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}", server
    server.stop(None)


def test_serving_exits_0_and_anything_else_1(
    served: tuple[health.HealthServicer, str, grpc.Server], capsys: pytest.CaptureFixture[str]
) -> None:
    servicer, address, _ = served
    servicer.set("", SERVING)
    assert main(["client", "health", "--address", address]) == 0
    assert capsys.readouterr().out == f"{address} (overall): SERVING\n"
    servicer.set("", NOT_SERVING)
    assert main(["client", "health", "--address", address]) == 1
    assert "NOT_SERVING" in capsys.readouterr().out


def test_one_stream_or_service_is_asked_by_name(
    served: tuple[health.HealthServicer, str, grpc.Server], capsys: pytest.CaptureFixture[str]
) -> None:
    servicer, address, _ = served
    servicer.set("", SERVING)
    servicer.set("stream/endo", NOT_SERVING)
    servicer.set("orstream.v1.ServerService", SERVING)
    assert main(["client", "health", "--address", address, "--stream", "endo"]) == 1
    assert capsys.readouterr().out == f"{address} stream/endo: NOT_SERVING\n"
    service = ["--service", "orstream.v1.ServerService"]
    assert main(["client", "health", "--address", address, *service]) == 0
    assert main(["client", "health", "--address", address, "--stream", "nope"]) == 1
    assert "NOT_FOUND" in capsys.readouterr().err


def test_a_server_that_is_gone_is_unhealthy_in_one_line(
    served: tuple[health.HealthServicer, str, grpc.Server], capsys: pytest.CaptureFixture[str]
) -> None:
    servicer, address, server = served
    servicer.set("", SERVING)
    server.stop(None)
    assert main(["client", "health", "--address", address, "--timeout", "2"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"{address} (overall): UNAVAILABLE") and err.count("\n") == 1
