"""The dashboard's ask box in Debian's Chromium, headless, on a real edge whose ``server:``
section points at a job server the test runs with a tiny vision-language package: a viewer
sees the box but cannot use it; an operator types a question and presses Enter, the page says
the question waits while the server is down, and once it is up the answer shown is the
hand-off's result with its tags left out. The tiny model's random answer has no tags, so an
answer stream the test makes up (tags split across pieces, a job run again, a failure) shows
the reasoning dimmed apart from the answer, only the rerun's text, and a clear failure line."""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dashboard_pages import WAIT_MS, log_in, needs_chromium
from edge_samples import free_port
from handoff_samples import ServerOnPort
from running_edge import LONG, RunningEdge, running_edge
from vlm_checkpoints import tiny_vlm_package

from orstream.client.connection import edge_stub
from orstream.proto.convert import handoff_list_from_proto
from orstream.proto.orstream.v1 import edge_pb2
from orstream.server.kinds.vlm import VlmKind, VlmSettings
from orstream.vlm.questions.question_items import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN

pytestmark = needs_chromium
sync_api = pytest.importorskip("playwright.sync_api")

ANSWER_WAIT_MS = 90_000
"""The clip's hand-off, the server's reading of it and a tiny model's answer on a busy CPU."""
IN_PATIENT_S = 3.0
"""How long the stream has been in patient before the question: the privacy gate judges a
frame by the results either side of it (holding it up to 2 s), so the clip, which ends at the
newest judged frame, has frames that may leave a little after the step shown turns in patient."""
TAGS = (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)


@pytest.fixture
def job_server(tmp_path: Path) -> Iterator[ServerOnPort]:
    """Not started: the test starts it."""
    package = tiny_vlm_package(tmp_path / "model")
    settings = VlmSettings(package, default_new_tokens=24)
    server = ServerOnPort(tmp_path / "server", free_port(), VlmKind(settings))
    yield server
    server.stop()


def made_up_answer(*events: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events)


def item(state: str, error: str = "") -> tuple[str, dict[str, Any]]:
    return "item", {"id": "x", "state": state, "sends": 1, "last_error": "", "error": error,
                    "frames": 12, "withheld_frames": 0, "job_state": ""}  # fmt: skip


def piece(text: str, attempt: int) -> tuple[str, dict[str, Any]]:
    return "piece", {"text": text, "attempt": attempt}


SPLIT_TAGS = made_up_answer(
    item("waiting"),
    piece("<think>an old try", 1),
    *(piece(text, 2) for text in ("<thi", "nk>a bony <ridge", "> is seen</th", "ink>\n<ans")),
    *(piece(text, 2) for text in ("wer>sella<", "/answer>")),
    item("succeeded"),
)
FAILED = made_up_answer(item("waiting"), item("failed", "the model ran out of memory"))


def test_an_operator_asks_and_the_answer_shows(
    page: Any, project_root: Path, tmp_path: Path, job_server: ServerOnPort
) -> None:
    section = {
        "address": job_server.address,
        "outbox": str(tmp_path / "outbox"),
        "default_clip_s": 2.0,
        "max_clip_s": 4.0,
        "retry": {"initial_s": 0.5, "max_s": 1.0},
    }
    with running_edge(project_root, tmp_path, (LONG,), segmenter=False, server=section) as edge:
        log_in(page, edge.web_url, edge.viewer_token)
        sync_api.expect(page.locator("#ask")).to_be_visible(timeout=WAIT_MS)
        sync_api.expect(page.locator("#question")).to_be_disabled()
        sync_api.expect(page.locator("#ask-status")).to_contain_text("operator")
        page.click("#logout")

        log_in(page, edge.web_url, edge.operator_token)
        sync_api.expect(page.locator("#question")).to_be_enabled(timeout=WAIT_MS)
        wait_in_patient(edge)
        page.focus("#question")
        page.keyboard.type("What is seen?")
        page.keyboard.press("Enter")
        sync_api.expect(page.locator("#ask-status")).to_contain_text(
            "waiting for the server (try ", timeout=ANSWER_WAIT_MS
        )
        assert "cannot reach the job server" in page.text_content("#ask-status")
        job_server.start()
        sync_api.expect(page.locator("#ask-status")).to_contain_text(
            "answered", timeout=ANSWER_WAIT_MS
        )
        shown = page.evaluate("document.getElementById('answer-text').textContent")
        reasoning = page.evaluate(
            "[...document.querySelectorAll('#answer-text .reasoning')]"
            ".map((s) => s.textContent).join('')"
        )
        with edge_stub(edge.grpc_address, 5.0, edge.viewer_token) as stub:
            items = handoff_list_from_proto(stub.ListHandOffs(edge_pb2.ListHandOffsRequest()))

        answer_with(page, SPLIT_TAGS, "answered")
        parts = page.evaluate(
            "[...document.querySelectorAll('#answer-text span')]"
            ".map((s) => [s.className, s.textContent])"
        )
        assert parts == [["reasoning", "a bony <ridge> is seen"], ["said", "\n"], ["said", "sella"]]
        dimmed, plain = (
            page.evaluate(f"getComputedStyle(document.querySelector('{css}')).color")
            for css in ("#answer-text .reasoning", "#answer-text .said")
        )
        assert dimmed != plain
        answer_with(page, FAILED, "failed: the model ran out of memory")
        assert page.get_attribute("#ask-status", "class") == "failure"
        assert page.get_attribute("#ask-status", "role") == "alert"
        assert page.text_content("#answer-text") == ""
    (item,) = items
    assert item.state == "succeeded" and item.result is not None
    assert item.params["question"] == "What is seen?"
    text = item.result["text"]
    assert text, "the tiny model answered nothing: nothing to compare"
    visible = text
    for tag in TAGS:
        visible = visible.replace(tag, "")
    assert shown == visible
    assert reasoning == reasoning_of(text)


def answer_with(page: Any, body: str, status: str) -> None:
    """Ask again, the edge's answer replaced by ``body``; until the page says ``status``."""
    page.route(
        "**/api/ask",
        lambda route: route.fulfill(
            status=200, headers={"Content-Type": "text/event-stream"}, body=body
        ),
    )
    page.click("#ask-button")
    sync_api.expect(page.locator("#ask-status")).to_contain_text(status)
    page.unroute("**/api/ask")


def wait_in_patient(edge: RunningEdge) -> None:
    """Until the step timeline's last segment is in patient and ``IN_PATIENT_S`` long."""
    request = urllib.request.Request(
        edge.web_url + "/api/state", headers={"Authorization": f"Bearer {edge.viewer_token}"}
    )
    deadline = time.monotonic() + ANSWER_WAIT_MS / 1000
    while time.monotonic() < deadline:
        with urllib.request.urlopen(request, timeout=10) as response:
            (stream,) = json.load(response)["streams"]
        last = stream["timeline"][-1] if stream["timeline"] else None
        if last and last["code"] != -1 and last["end_s"] - last["start_s"] >= IN_PATIENT_S:
            return
        time.sleep(0.5)
    raise AssertionError("the stream was not judged in patient for long enough")


def reasoning_of(text: str) -> str:
    """The text after a ``<think>`` up to the next tag, as the page dims it."""
    parts = re.split("(" + "|".join(map(re.escape, TAGS)) + ")", text)
    inside, kept = False, []
    for part in parts:
        if part in TAGS:
            inside = part == THINK_OPEN
        elif inside:
            kept.append(part)
    return "".join(kept)
