"""The sender against a real job server on loopback: an item waits out a server that is down
and an edge restart, and is done once; an edge restarted while the server runs its job watches
that job, not a second; a crash after the server took an item but before the edge recorded it
resends with the same key and gets the same job; a server that stops mid-job and comes back
is watched again until the job it reran ends, and one whose store was replaced gets the item
again; a refusal for good is not retried."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_samples import free_port
from handoff_samples import ServerOnPort, desk_with_frames, sender_for, wait_for

from orstream.client.server_client import ServerClient
from orstream.edge.outbox.store import OutboxStore
from orstream.handoffs import HandOffItem, HandOffRequest


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerOnPort]:
    on_port = ServerOnPort(tmp_path / "server", free_port())
    yield on_port
    on_port.stop()


def test_an_item_waits_out_a_server_outage_and_an_edge_restart_then_is_done_once(
    tmp_path: Path, server: ServerOnPort
) -> None:
    desk = desk_with_frames(tmp_path / "outbox")
    sender = sender_for(desk.store, server.address)
    desk.sender = sender
    sender.start()
    item = desk.hand_off(HandOffRequest("probe", "or1", 1.5, {"window_s": "0.5"}))
    wait_for(lambda: desk.get(item.id).sends >= 2, what="two failed tries")
    waiting = desk.get(item.id)
    assert waiting.state == "waiting" and "cannot reach" in waiting.last_error
    sender.stop()
    desk.close()  # the edge stops with the item still in its outbox

    server.start()
    store = OutboxStore(tmp_path / "outbox")
    seen: list[HandOffItem] = []
    restarted = sender_for(store, server.address, seen.append)
    restarted.start()
    try:
        wait_for(lambda: store.get(item.id).final, what="the item's end")
    finally:
        restarted.stop()
    done = store.get(item.id)
    assert done.state == "succeeded" and done.job_state == "succeeded"
    assert done.result is not None and done.result["frames"] == 15 and done.last_error == ""
    assert [i.state for i in seen][:1] == ["accepted"] and seen[-1] == done
    assert server.jobs() == 1
    with ServerClient(server.address) as client:
        job = client.get(done.job_id)
    assert job.idempotency_key == item.idempotency_key and job.attempts == 1
    store.close()


def test_an_edge_restarted_while_its_job_runs_watches_that_job(
    tmp_path: Path, server: ServerOnPort
) -> None:
    server.start()
    desk = desk_with_frames(tmp_path / "outbox")
    sender = sender_for(desk.store, server.address)
    desk.sender = sender
    sender.start()
    item = desk.hand_off(HandOffRequest("hold", "or1", 1.0))
    wait_for(lambda: desk.get(item.id).job_state == "running", what="the job running")
    sender.stop()
    desk.close()

    store = OutboxStore(tmp_path / "outbox")
    accepted = store.get(item.id)
    assert accepted.state == "accepted" and accepted.job_id
    restarted = sender_for(store, server.address)
    restarted.start()
    try:
        wait_for(lambda: store.get(item.id).progress_message == "held", what="a fresh watch")
        server.hold.released.set()
        wait_for(lambda: store.get(item.id).final, what="the item's end")
    finally:
        restarted.stop()
    done = store.get(item.id)
    assert (done.state, done.job_id, done.result) == ("succeeded", accepted.job_id, {"held": True})
    assert server.jobs() == 1
    store.close()


def test_a_server_that_stops_mid_job_is_watched_again_once_it_is_back(
    tmp_path: Path, server: ServerOnPort
) -> None:
    server.start()
    desk = desk_with_frames(tmp_path / "outbox")
    sender = sender_for(desk.store, server.address)
    desk.sender = sender
    sender.start()
    try:
        item = desk.hand_off(HandOffRequest("hold", "or1", 1.0))
        wait_for(lambda: desk.get(item.id).job_state == "running", what="the job running")
        server.stop(release=False)  # the server goes away with the job unfinished
        wait_for(lambda: "UNAVAILABLE" in desk.get(item.id).last_error, what="a failed watch")
        assert desk.get(item.id).state == "accepted"
        server.start()  # the same store: the job is queued again and rerun
        wait_for(lambda: desk.get(item.id).job_attempts == 2, what="the rerun watched")
        server.hold.released.set()
        wait_for(lambda: desk.get(item.id).final, what="the item's end")
    finally:
        sender.stop()
    done = desk.get(item.id)
    assert (done.state, done.result, done.last_error) == ("succeeded", {"held": True}, "")
    assert server.jobs() == 1
    desk.close()


def test_a_server_that_lost_its_store_gets_the_item_again(
    tmp_path: Path, server: ServerOnPort
) -> None:
    server.start()
    desk = desk_with_frames(tmp_path / "outbox")
    sender = sender_for(desk.store, server.address)
    desk.sender = sender
    sender.start()
    try:
        item = desk.hand_off(HandOffRequest("hold", "or1", 1.0))
        wait_for(lambda: desk.get(item.id).job_state == "running", what="the job running")
        first_job = desk.get(item.id).job_id
        server.stop(release=False)
        server.store = tmp_path / "new-store"  # a server rebuilt without its jobs
        server.start()
        wait_for(lambda: desk.get(item.id).job_id not in ("", first_job), what="a new job")
        server.hold.released.set()
        wait_for(lambda: desk.get(item.id).final, what="the item's end")
    finally:
        sender.stop()
    done = desk.get(item.id)
    assert done.state == "succeeded" and server.jobs() == 1
    desk.close()


def test_a_crash_after_the_server_took_an_item_resends_it_to_the_same_job(
    tmp_path: Path, server: ServerOnPort
) -> None:
    server.start()
    desk = desk_with_frames(tmp_path / "outbox")
    item = desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    # What the sender did before the edge died: the server made the job, the edge never
    # recorded its answer.
    with ServerClient(server.address) as client:
        first_job, created = client.submit(
            "probe", desk.store.inputs(item.id), key=item.idempotency_key
        )
    assert created and desk.get(item.id).state == "waiting"

    sender = sender_for(desk.store, server.address)
    sender.start()
    try:
        wait_for(lambda: desk.get(item.id).final, what="the item's end")
    finally:
        sender.stop()
    done = desk.get(item.id)
    assert (done.state, done.job_id) == ("succeeded", first_job)
    assert server.jobs() == 1
    desk.close()


def test_a_kind_the_server_does_not_run_is_rejected_and_not_retried(
    tmp_path: Path, server: ServerOnPort
) -> None:
    server.start()
    desk = desk_with_frames(tmp_path / "outbox")
    sender = sender_for(desk.store, server.address)
    desk.sender = sender
    sender.start()
    try:
        item = desk.hand_off(HandOffRequest("wsi_nope", "or1", 1.0))
        wait_for(lambda: desk.get(item.id).final, what="the rejection")
    finally:
        sender.stop()
    rejected = desk.get(item.id)
    assert rejected.state == "rejected" and "INVALID_ARGUMENT" in rejected.error
    assert rejected.sends == 1 and desk.store.inputs(item.id) == []
    assert server.jobs() == 0
    desk.close()
