"""Bearer tokens on the gRPC API: each method refuses a missing token and a role too low;
health stays open."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from edge_samples import channel_to, sample_status
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orstream.access.tokens import Tokens, add_token
from orstream.client.bearer import BearerToken
from orstream.client.connection import edge_stub
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc

CALLS = {
    "GetStatus": lambda stub: stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=5),
    "GetTimeline": lambda stub: stub.GetTimeline(
        edge_pb2.GetTimelineRequest(stream_id="cam0"), timeout=5
    ),
    "Subscribe": lambda stub: next(stub.Subscribe(edge_pb2.SubscribeRequest(), timeout=0.5)),
    "Prompt": lambda stub: stub.Prompt(edge_pb2.PromptRequest(), timeout=5),
    "Search": lambda stub: stub.Search(edge_pb2.SearchRequest(text="suction"), timeout=5),
    "SetPrompts": lambda stub: stub.SetPrompts(edge_pb2.SetPromptsRequest(reset=True), timeout=5),
}
"""Each method, called so that it answers at once once past the token check."""
ALLOWED_FAILURES = {
    grpc.StatusCode.NOT_FOUND,  # no timeline yet
    grpc.StatusCode.DEADLINE_EXCEEDED,  # no result published to a subscriber
    grpc.StatusCode.FAILED_PRECONDITION,  # no segmenter to prompt, no video-text model
}
OPERATOR_METHODS = {"Prompt", "SetPrompts"}


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("auth") / "tokens.yaml"
    given = {role: add_token(path, f"{role}-one", role) for role in ("viewer", "operator")}
    return path, given


@pytest.fixture(scope="module")
def server(tokens: tuple[Path, dict[str, str]]) -> Iterator[EdgeGrpcServer]:
    server = EdgeGrpcServer(
        ResultHub(), sample_status, "127.0.0.1:0", tokens=Tokens.load(tokens[0])
    )
    server.start()
    server.set_serving(True)
    yield server
    server.stop(0.5)


def stub_with(server: EdgeGrpcServer, token: str | None) -> tuple[grpc.Channel, object]:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    if token is not None:
        channel = grpc.intercept_channel(channel, BearerToken(token))
    return channel, edge_pb2_grpc.EdgeServiceStub(channel)


def code_of(call: object, stub: object) -> grpc.StatusCode:
    try:
        call(stub)  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.mark.parametrize("method", list(CALLS))
def test_each_method_needs_a_token_of_its_role(
    server: EdgeGrpcServer, tokens: tuple[Path, dict[str, str]], method: str
) -> None:
    call = CALLS[method]
    for token in (None, "wrong-token"):
        channel, stub = stub_with(server, token)
        with channel:
            assert code_of(call, stub) == grpc.StatusCode.UNAUTHENTICATED
    channel, stub = stub_with(server, tokens[1]["viewer"])
    with channel:
        code = code_of(call, stub)
    if method in OPERATOR_METHODS:
        assert code == grpc.StatusCode.PERMISSION_DENIED
    else:
        assert code in {grpc.StatusCode.OK} | ALLOWED_FAILURES
    channel, stub = stub_with(server, tokens[1]["operator"])
    with channel:
        assert code_of(call, stub) in {grpc.StatusCode.OK} | ALLOWED_FAILURES


def test_health_needs_no_token(server: EdgeGrpcServer) -> None:
    with channel_to(server) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=5
        )
    assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_the_client_sends_its_token_file(
    server: EdgeGrpcServer, tokens: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    address = f"127.0.0.1:{server.port}"
    with edge_stub(address, 5, tokens[1]["viewer"]) as stub:
        assert len(stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=5).sources) >= 1
    with pytest.raises(OrstreamError, match="UNAUTHENTICATED"), edge_stub(address, 5) as stub:
        stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=5)


def test_one_principal_holds_at_most_its_share_of_the_subscriptions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "tokens.yaml"
    greedy, other = add_token(path, "greedy", "viewer"), add_token(path, "other", "viewer")
    server = EdgeGrpcServer(
        ResultHub(),
        sample_status,
        "127.0.0.1:0",
        tokens=Tokens.load(path),
        max_subscribers=16,
        max_subscribers_per_client=2,
    )
    server.start()
    greedy_channel, greedy_stub = stub_with(server, greedy)
    other_channel, other_stub = stub_with(server, other)
    try:
        held = [greedy_stub.Subscribe(edge_pb2.SubscribeRequest()) for _ in range(2)]  # type: ignore[attr-defined]
        for call in held:
            call.initial_metadata()
        with pytest.raises(grpc.RpcError) as refused:
            next(greedy_stub.Subscribe(edge_pb2.SubscribeRequest(), timeout=5))  # type: ignore[attr-defined]
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "for this client" in str(refused.value.details())
        # Another principal still gets its own, from the same machine.
        theirs = other_stub.Subscribe(edge_pb2.SubscribeRequest())  # type: ignore[attr-defined]
        theirs.initial_metadata()
        held[0].cancel()  # a slot given back is a slot to take again
        time.sleep(0.7)
        again = greedy_stub.Subscribe(edge_pb2.SubscribeRequest())  # type: ignore[attr-defined]
        again.initial_metadata()
        for call in (held[1], theirs, again):
            call.cancel()
    finally:
        greedy_channel.close()
        other_channel.close()
        server.stop(0.5)
