"""Hand-offs over the edge's gRPC API, to a real job server: HandOff answers an outbox item at
once, its changes and its job's result reach the subscribers of the kind ``handoff`` (and only
them), GetHandOff and ListHandOffs read the outbox; a full outbox is RESOURCE_EXHAUSTED (one
line and exit 2 on the command line), an all-private window FAILED_PRECONDITION."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from edge_samples import channel_to, free_port, sample_status
from handoff_samples import RED, ServerOnPort, coloured, desk_with_frames, sender_for

from orstream.cli import main
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.handoffs import HandOffItem, HandOffRequest
from orstream.proto.convert import (
    handoff_from_proto,
    handoff_list_from_proto,
    handoff_request_to_proto,
    subscribe_event_from_proto,
    subscribe_request_to_proto,
)
from orstream.proto.orstream.v1 import edge_pb2
from orstream.proto.orstream.v1.edge_pb2_grpc import EdgeServiceStub


def serve(hub: ResultHub, desk: HandOffDesk | None) -> EdgeGrpcServer:
    server = EdgeGrpcServer(hub, sample_status, address="127.0.0.1:0", handoffs=desk)
    server.start()
    return server


@pytest.fixture
def job_server(tmp_path: Path) -> Iterator[ServerOnPort]:
    on_port = ServerOnPort(tmp_path / "server", free_port())
    on_port.start()
    yield on_port
    on_port.stop()


def test_a_hand_off_is_answered_at_once_and_its_result_reaches_subscribers(
    tmp_path: Path, job_server: ServerOnPort
) -> None:
    hub = ResultHub()
    desk = desk_with_frames(tmp_path / "outbox", seconds=2.0, on_change=hub.publish_handoff)
    desk.sender = sender_for(desk.store, job_server.address, hub.publish_handoff)
    bystander = hub.subscribe()  # the default kinds: no hand-offs
    server = serve(hub, desk)
    desk.start()
    try:
        with channel_to(server) as channel:
            stub = EdgeServiceStub(channel)
            updates = stub.Subscribe(subscribe_request_to_proto((), ("handoff",)), timeout=30)
            updates.initial_metadata()
            request = HandOffRequest("probe", "", 2.0, {"window_s": "1"})
            item = handoff_from_proto(stub.HandOff(handoff_request_to_proto(request)))
            assert (item.state, item.stream_id, item.frames, item.origin) == (
                "waiting",
                "or1",
                20,
                "client",
            )
            seen: list[HandOffItem] = []
            for message in updates:
                event, _ = subscribe_event_from_proto(message)
                assert isinstance(event, HandOffItem) and event.id == item.id
                seen.append(event)
                if event.final:
                    break
            updates.cancel()
            states = [event.state for event in seen]
            assert states[0] == "waiting" and "accepted" in states and states[-1] == "succeeded"
            assert seen[-1].result is not None and seen[-1].result["frames"] == 20
            again = handoff_from_proto(stub.GetHandOff(edge_pb2.GetHandOffRequest(id=item.id)))
            assert again == seen[-1]
            listed = stub.ListHandOffs(edge_pb2.ListHandOffsRequest(state="succeeded"))
            assert [i.id for i in handoff_list_from_proto(listed)] == [item.id]
            with pytest.raises(grpc.RpcError) as unknown:
                stub.GetHandOff(edge_pb2.GetHandOffRequest(id="nope"))
            assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        assert bystander.get_event(timeout_s=0) is None
        assert job_server.jobs() == 1
    finally:
        server.stop(0.5)
        desk.close()


def test_a_full_outbox_and_an_all_private_window_are_refused_clearly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    desk = desk_with_frames(tmp_path / "outbox", seconds=2.0, max_items=1)
    desk.add_stream("or3")  # nothing judged yet
    private = desk.add_stream("or2")
    for index in range(10):
        private.add(coloured(index, RED), private=True)
    server = serve(ResultHub(), desk)
    address = f"127.0.0.1:{server.port}"
    try:
        handoff = ["client", "handoff", "probe", "--address", address, "--seconds", "1"]
        assert main([*handoff, "--stream", "or1", "--json"]) == 0
        first = json.loads(capsys.readouterr().out)
        assert (first["state"], first["frames"]) == ("waiting", 10)

        assert main([*handoff, "--stream", "or1"]) == 2
        error = capsys.readouterr().err.strip()
        assert error.startswith("orstream: error: ") and "RESOURCE_EXHAUSTED" in error
        assert "the outbox is full" in error and "\n" not in error

        with channel_to(server) as channel:
            stub = EdgeServiceStub(channel)
            for stream, code, words in (
                ("or2", grpc.StatusCode.FAILED_PRECONDITION, "are private"),
                ("or3", grpc.StatusCode.FAILED_PRECONDITION, "no judged frame yet"),
                ("or9", grpc.StatusCode.NOT_FOUND, "no stream"),
                ("", grpc.StatusCode.INVALID_ARGUMENT, "name the stream"),
            ):
                request = handoff_request_to_proto(HandOffRequest("probe", stream, 1.0))
                with pytest.raises(grpc.RpcError) as refused:
                    stub.HandOff(request)
                assert refused.value.code() == code and words in str(refused.value.details())
        assert main(["client", "handoffs", "--address", address]) == 0
        assert capsys.readouterr().out.startswith(f"{first['id']} or1 probe waiting")
    finally:
        server.stop(0.5)
        desk.close()


def test_an_edge_without_a_server_says_how_to_hand_off() -> None:
    server = serve(ResultHub(), None)
    try:
        with channel_to(server) as channel, pytest.raises(grpc.RpcError) as refused:
            EdgeServiceStub(channel).HandOff(edge_pb2.HandOffRequest(kind="probe"))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "--server" in str(refused.value.details())
    finally:
        server.stop(0.5)
