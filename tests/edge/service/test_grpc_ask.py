"""Ask over the edge's gRPC API, to a real job server answering with a tiny vision-language
package: the answer streams back piece by piece through the outbox; while the server is down
the question waits and the asker is told; bad questions, unknown streams, all-private clips and
an edge without a server are refused clearly; ``orstream client ask`` prints the answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from edge_samples import channel_to, free_port, sample_status
from handoff_samples import RED, ServerOnPort, coloured, desk_with_frames, sender_for, wait_for
from vlm_checkpoints import tiny_vlm_package

from orstream.cli import main
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.handoffs import AnswerPiece, AskRequest, HandOffItem
from orstream.proto.convert import ask_event_from_proto, ask_request_to_proto
from orstream.proto.orstream.v1.edge_pb2_grpc import EdgeServiceStub
from orstream.server.kinds.vlm import VlmKind, VlmSettings


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vlm_package(tmp_path_factory.mktemp("ask_model"))


@pytest.fixture
def edge(
    tmp_path: Path, package: Path
) -> Iterator[tuple[EdgeGrpcServer, HandOffDesk, ServerOnPort]]:
    """An edge serving stream ``or1`` (2 s judged in patient) whose outbox sends to a job
    server with the vlm kind; the job server is not started."""
    job_server = ServerOnPort(tmp_path / "server", free_port(), VlmKind(VlmSettings(package)))
    desk = desk_with_frames(tmp_path / "outbox", seconds=2.0)
    desk.sender = sender_for(
        desk.store, job_server.address, desk.followers.changed, desk.followers.partial
    )
    server = EdgeGrpcServer(ResultHub(), sample_status, address="127.0.0.1:0", handoffs=desk)
    server.start()
    desk.start()
    yield server, desk, job_server
    server.stop(0.5)
    desk.close()
    job_server.stop()


def ask(
    server: EdgeGrpcServer, request: AskRequest, on_item: object = None
) -> tuple[list[HandOffItem], list[AnswerPiece]]:
    """The events of one Ask call, to the item's end."""
    items: list[HandOffItem] = []
    pieces: list[AnswerPiece] = []
    with channel_to(server) as channel:
        for message in EdgeServiceStub(channel).Ask(ask_request_to_proto(request), timeout=60):
            event = ask_event_from_proto(message)
            if isinstance(event, AnswerPiece):
                pieces.append(event)
            else:
                items.append(event)
                if callable(on_item):
                    on_item(event)
    return items, pieces


def test_the_answer_streams_back_through_the_outbox(
    edge: tuple[EdgeGrpcServer, HandOffDesk, ServerOnPort],
) -> None:
    server, desk, job_server = edge
    job_server.start()
    items, pieces = ask(server, AskRequest("What is seen?", seconds=1.0, max_new_tokens=8))
    assert items[0].state == "waiting" and items[0].frames == 10 and items[0].kind == "vlm"
    final = items[-1]
    assert final.state == "succeeded" and final.result is not None
    assert pieces and {p.attempt for p in pieces} == {1}
    assert "".join(p.text for p in pieces) == final.result["text"]
    assert 1 <= final.result["tokens"] <= 8
    assert desk.get(final.id) == final  # the item keeps the answer for a later GetHandOff


def test_a_question_waits_while_the_server_is_down_and_the_asker_is_told(
    edge: tuple[EdgeGrpcServer, HandOffDesk, ServerOnPort],
) -> None:
    server, _, job_server = edge

    def start_after_a_failed_try(item: HandOffItem) -> None:
        if item.sends >= 1 and item.last_error and job_server.server is None:
            job_server.start()

    items, pieces = ask(
        server, AskRequest("What is seen?", max_new_tokens=4), start_after_a_failed_try
    )
    told = [item for item in items if item.state == "waiting" and item.last_error]
    assert told and "cannot reach the job server" in told[0].last_error
    assert items[-1].state == "succeeded" and pieces


def test_bad_questions_and_streams_are_refused(
    edge: tuple[EdgeGrpcServer, HandOffDesk, ServerOnPort],
) -> None:
    server, desk, _ = edge
    private = desk.add_stream("or2")
    for index in range(10):
        private.add(coloured(index, RED), private=True)
    for request, code, words in (
        (AskRequest(""), grpc.StatusCode.INVALID_ARGUMENT, "the question is empty"),
        (AskRequest("why? " * 200), grpc.StatusCode.INVALID_ARGUMENT, "at most 500"),
        (AskRequest("a\x1bb"), grpc.StatusCode.INVALID_ARGUMENT, "control characters"),
        (AskRequest("why?", "or9"), grpc.StatusCode.NOT_FOUND, "no stream"),
        (AskRequest("why?", "or2", 1.0), grpc.StatusCode.FAILED_PRECONDITION, "are private"),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            ask(server, request)
        assert refused.value.code() == code and words in str(refused.value.details())
    assert len(desk.recent()) == 0  # nothing was put in the outbox


def test_client_ask_prints_the_answer_and_refuses_in_one_line(
    edge: tuple[EdgeGrpcServer, HandOffDesk, ServerOnPort],
    capsys: pytest.CaptureFixture[str],
) -> None:
    server, desk, job_server = edge
    job_server.start()
    address = f"127.0.0.1:{server.port}"
    assert (
        main(["client", "ask", "What is seen?", "--address", address, "--max-new-tokens", "6"]) == 0
    )
    printed = capsys.readouterr()
    (item,) = desk.recent()
    assert item.result is not None and item.state == "succeeded"
    visible = item.result["text"]
    for tag in ("<think>", "</think>", "<answer>", "</answer>"):
        visible = visible.replace(tag, "")
    assert printed.out.replace("reasoning: ", "").replace("answer: ", "").replace(
        "\n", ""
    ) == visible.replace("\n", "")
    assert f"asked: item {item.id}" in printed.err
    assert main(["client", "ask", " ", "--address", address]) == 2
    error = capsys.readouterr().err.strip()
    assert "INVALID_ARGUMENT" in error and "the question is empty" in error and "\n" not in error


def test_an_edge_without_a_server_refuses_to_ask(tmp_path: Path) -> None:
    server = EdgeGrpcServer(ResultHub(), sample_status, address="127.0.0.1:0")
    server.start()
    try:
        with pytest.raises(grpc.RpcError) as refused:
            ask(server, AskRequest("why?"))
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "--server HOST:PORT" in str(refused.value.details())
    finally:
        server.stop(0.5)


def test_an_asker_who_leaves_mid_answer_finds_the_answer_kept(
    edge: tuple[EdgeGrpcServer, HandOffDesk, ServerOnPort],
) -> None:
    server, desk, job_server = edge
    job_server.start()
    with channel_to(server) as channel:
        call = EdgeServiceStub(channel).Ask(
            ask_request_to_proto(AskRequest("What is seen?", max_new_tokens=8)), timeout=60
        )
        item_id = ""
        for message in call:
            event = ask_event_from_proto(message)
            if isinstance(event, HandOffItem):
                item_id = event.id
            else:
                call.cancel()  # the asker goes away at the first piece of the answer
                break
    wait_for(lambda: desk.get(item_id).final, what="the item's end")
    kept = desk.get(item_id)
    assert kept.state == "succeeded" and kept.result is not None and kept.result["tokens"] >= 1
    # The call's follower is let go once gRPC has ended the cancelled call on its own thread,
    # which may come after the item's end.
    wait_for(lambda: desk.followers.followed == 0, what="the call's follower let go")
