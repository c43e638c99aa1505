"""The dashboard's ``POST /api/ask`` on a real in-process web server whose desk sends to a real
job server answering with a tiny vision-language package: an operator's question streams back
as server-sent events (the item, then the answer's pieces, ending with the item's end) whose
text is the hand-off's result; a viewer is refused; bad bodies and questions, unknown streams,
all-private clips, a full outbox and an edge without a server are refused with their statuses
before anything enters the outbox; a question waits (and says so) while the server is down; a
page that goes away stops following while the item still finishes in the outbox."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edge_samples import free_port, sample_status
from handoff_samples import RED, ServerOnPort, coloured, desk_with_frames, sender_for, wait_for
from vlm_checkpoints import tiny_vlm_package

from orstream.access.tokens import Tokens, add_token
from orstream.edge.outbox.desk import HandOffDesk
from orstream.edge.service.audit import AuditLog
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.web.frame_slot import WebFrames
from orstream.edge.web.state_feed import StateFeed
from orstream.edge.web.video_prompt import VideoPrompter
from orstream.edge.web.video_viewers import VideoViewers
from orstream.edge.web.web_access import WebAccess
from orstream.edge.web.web_ask import AskRefused, WebAsks, ask_from_body
from orstream.edge.web.web_server import WebDashboard
from orstream.handoffs import AskRequest
from orstream.server.kinds.vlm import VlmKind, VlmSettings

Events = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_vlm_package(tmp_path_factory.mktemp("web_ask_model"))


@pytest.fixture(scope="module")
def tokens(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    file = tmp_path_factory.mktemp("tokens") / "tokens.yaml"
    return {
        "file": str(file),
        "viewer": add_token(file, "wall-screen", "viewer"),
        "operator": add_token(file, "scrub-nurse", "operator"),
    }


def dashboard(
    tokens: dict[str, str], desk: HandOffDesk | None, audit: AuditLog | None = None
) -> WebDashboard:
    """A dashboard serving on a free loopback port (``stop`` it)."""
    web = WebDashboard(
        "127.0.0.1:0",
        StateFeed(sample_status, ResultHub(), None),
        VideoViewers(WebFrames(("or1",)), (), 2),
        WebAccess(Tokens.load(Path(tokens["file"])), audit),
        VideoPrompter(None, 1),
        asks=WebAsks(desk),
    )
    web.start()
    return web


@pytest.fixture
def edge(
    tmp_path: Path, package: Path, tokens: dict[str, str]
) -> Iterator[tuple[WebDashboard, HandOffDesk, ServerOnPort]]:
    """A dashboard whose desk holds stream ``or1`` (2 s judged in patient) and sends to a job
    server with the vlm kind (answers of at most 8 tokens); the job server is not started.
    Its audit log is ``audit.jsonl`` in ``tmp_path``."""
    job_server = ServerOnPort(
        tmp_path / "server", free_port(), VlmKind(VlmSettings(package, default_new_tokens=8))
    )
    desk = desk_with_frames(tmp_path / "outbox", seconds=2.0, max_items=2)
    desk.sender = sender_for(
        desk.store, job_server.address, desk.followers.changed, desk.followers.partial
    )
    desk.start()
    audit = AuditLog(tmp_path / "audit.jsonl")
    web = dashboard(tokens, desk, audit)
    yield web, desk, job_server
    web.stop()
    desk.close()
    job_server.stop()
    audit.close()


def post(web: WebDashboard, token: str, body: object) -> http.client.HTTPResponse:
    """``POST /api/ask`` with a bearer token; the response unread."""
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=60)
    connection.request(
        "POST",
        "/api/ask",
        body=json.dumps(body),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    return connection.getresponse()


def read_events(response: http.client.HTTPResponse, until: Any = None) -> Events:
    """The server-sent events of a response, to its end (or until ``until(events)``)."""
    events: Events = []
    name, data = "", ""
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            name = line[len("event: ") :]
        elif line.startswith("data: "):
            data = line[len("data: ") :]
        elif not line and name:
            events.append((name, json.loads(data)))
            name, data = "", ""
            if until is not None and until(events):
                break
    return events


def test_an_operators_question_streams_the_answer_back(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort], tokens: dict[str, str]
) -> None:
    web, desk, job_server = edge
    job_server.start()
    response = post(web, tokens["operator"], {"stream": "or1", "question": "What is seen?"})
    assert response.status == 200
    assert response.getheader("Content-Type", "").startswith("text/event-stream")
    events = read_events(response)
    items = [data for name, data in events if name == "item"]
    pieces = [data for name, data in events if name == "piece"]
    assert events[0][0] == "item" and items[0]["state"] == "waiting" and items[0]["frames"] > 0
    assert events[-1][0] == "item" and items[-1]["state"] == "succeeded"
    final = desk.get(items[0]["id"])
    assert final.state == "succeeded" and final.result is not None
    assert pieces and {p["attempt"] for p in pieces} == {1}
    assert "".join(p["text"] for p in pieces) == final.result["text"]
    assert final.params["question"] == "What is seen?" and final.kind == "vlm"


def test_a_question_waits_while_the_server_is_down_and_the_page_is_told(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort], tokens: dict[str, str]
) -> None:
    web, _, job_server = edge
    response = post(web, tokens["operator"], {"stream": "or1", "question": "Why?", "seconds": 1})
    told = read_events(response, lambda events: events[-1][1].get("last_error"))
    waiting = told[-1][1]
    assert waiting["state"] == "waiting" and waiting["sends"] >= 1
    assert "cannot reach the job server" in waiting["last_error"]
    job_server.start()
    rest = read_events(response)
    assert rest[-1][0] == "item" and rest[-1][1]["state"] == "succeeded"
    assert any(name == "piece" for name, _ in rest)


def test_a_page_that_goes_away_stops_following_and_the_item_still_finishes(
    tmp_path: Path, package: Path, tokens: dict[str, str]
) -> None:
    """No sender at first, so the item waits without a change the page could fail to hear."""
    desk = desk_with_frames(tmp_path / "outbox", seconds=2.0)
    closed = threading.Event()
    ask = desk.ask

    def ask_and_watch_the_follow(request: AskRequest) -> Any:
        item, follow = ask(request)
        close = follow.close

        def close_and_tell() -> None:
            close()
            closed.set()

        follow.close = close_and_tell  # type: ignore[method-assign]
        return item, follow

    desk.ask = ask_and_watch_the_follow  # type: ignore[method-assign]
    web = dashboard(tokens, desk)
    job_server = ServerOnPort(
        tmp_path / "server", free_port(), VlmKind(VlmSettings(package, default_new_tokens=4))
    )
    try:
        response = post(web, tokens["operator"], {"stream": "or1", "question": "Why?"})
        (first,) = read_events(response, lambda events: True)
        response.close()  # the page goes away while the item waits
        assert closed.wait(10), "the follow was not closed after the page went away"
        job_server.start()
        desk.sender = sender_for(
            desk.store, job_server.address, desk.followers.changed, desk.followers.partial
        )
        desk.start()
        wait_for(lambda: desk.get(first[1]["id"]).state == "succeeded", 60, "the answer")
    finally:
        web.stop()
        desk.close()
        job_server.stop()


def test_a_viewer_may_not_ask_and_nobody_without_a_token_and_the_audit_log_says_so(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort], tokens: dict[str, str], tmp_path: Path
) -> None:
    web, desk, _ = edge
    refused = post(web, tokens["viewer"], {"stream": "or1", "question": "Why?"})
    assert refused.status == 403 and "may not ask" in json.load(refused)["error"]
    assert post(web, "not-a-token", {"stream": "or1", "question": "Why?"}).status == 401
    assert desk.recent() == []
    asked = post(web, tokens["operator"], {"stream": "or1", "question": "Why?"})
    read_events(asked, lambda events: True)
    asked.close()
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(line["action"], line["principal"], line.get("code")) for line in lines] == [
        ("auth_refused", "wall-screen", "PERMISSION_DENIED"),
        ("auth_refused", "unknown", "UNAUTHENTICATED"),
        ("prompt", "scrub-nurse", None),
    ]
    assert {line["method"] for line in lines} == {"web/api/ask"}


def test_stopping_the_edge_ends_an_open_answer_stream_at_once(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort], tokens: dict[str, str]
) -> None:
    """Within the runner's shutdown wait (2.5 s), which an answer stream left open would use up."""
    web, _, _ = edge  # the server is down: the item waits
    response = post(web, tokens["operator"], {"stream": "or1", "question": "Why?"})
    read_events(response, lambda events: True)
    asked = time.monotonic()
    web.stop()
    assert time.monotonic() - asked < 2.0
    rest = read_events(response)  # the stream has ended: reading it returns
    assert all(data["state"] == "waiting" for name, data in rest if name == "item")


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ("not an object", 400, '"question": TEXT'),
        ({"stream": "or1"}, 400, '"question": TEXT'),
        ({"stream": 1, "question": "Why?"}, 400, '"question": TEXT'),
        ({"stream": "or1", "question": "Why?", "seconds": "5"}, 400, '"seconds": S'),
        ({"stream": "or1", "question": " "}, 400, "the question is empty"),
        ({"stream": "or1", "question": "why? " * 200}, 400, "at most 500"),
        ({"stream": "or1", "question": "a\x1bb"}, 400, "control characters"),
        ({"stream": "or1", "question": "Why?", "seconds": 99}, 400, "at most 30"),
        ({"stream": "or9", "question": "Why?"}, 404, "no stream"),
        ({"stream": "or2", "question": "Why?", "seconds": 1}, 409, "are private"),
    ],
)
def test_refusals_say_why_with_their_status_and_leave_nothing(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort],
    tokens: dict[str, str],
    body: object,
    status: int,
    words: str,
) -> None:
    web, desk, _ = edge
    private = desk.add_stream("or2")
    for index in range(10):
        private.add(coloured(index, RED), private=True)
    refused = post(web, tokens["operator"], body)
    assert refused.status == status
    assert refused.getheader("Content-Type", "").startswith("application/json")
    assert words in json.load(refused)["error"]
    assert desk.recent() == []


def test_a_full_outbox_is_507(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort], tokens: dict[str, str]
) -> None:
    web, desk, _ = edge  # the outbox holds 2 items at most; the server is down
    for _ in range(2):
        accepted = post(web, tokens["operator"], {"stream": "or1", "question": "Why?"})
        read_events(accepted, lambda events: True)
        accepted.close()
    refused = post(web, tokens["operator"], {"stream": "or1", "question": "Why?"})
    assert refused.status == 507 and "outbox" in json.load(refused)["error"]
    assert len(desk.recent()) == 2


def test_an_edge_without_a_server_says_it_cannot_ask(tokens: dict[str, str]) -> None:
    web = dashboard(tokens, None)
    try:
        refused = post(web, tokens["operator"], {"stream": "or1", "question": "Why?"})
        assert refused.status == 409 and "--server HOST:PORT" in json.load(refused)["error"]
        assert state(web, tokens["operator"])["ask"] is False
    finally:
        web.stop()


def test_the_state_says_whether_asking_is_possible_and_who_looks(
    edge: tuple[WebDashboard, HandOffDesk, ServerOnPort], tokens: dict[str, str]
) -> None:
    web, _, _ = edge
    seen = state(web, tokens["viewer"])
    assert seen["ask"] is True and seen["role"] == "viewer"
    assert state(web, tokens["operator"])["role"] == "operator"


def state(web: WebDashboard, token: str) -> dict[str, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", web.port, timeout=10)
    connection.request("GET", "/api/state", headers={"Authorization": f"Bearer {token}"})
    response = connection.getresponse()
    assert response.status == 200
    return dict(json.load(response))


def test_a_body_becomes_the_desks_request() -> None:
    assert ask_from_body({"stream": "or1", "question": "Why?"}) == AskRequest("Why?", "or1")
    assert ask_from_body({"question": "Why?", "seconds": 4}) == AskRequest("Why?", "", 4.0)
    with pytest.raises(AskRefused) as refused:
        ask_from_body({"question": "Why?", "seconds": True})
    assert refused.value.status == 400
