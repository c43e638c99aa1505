"""The outbox on disk: items survive a reopen, a full outbox refuses in one clear line and keeps
nothing of the refused item, an item's clip goes once its job is over, and what an edge stopped
between writing a clip and committing its row leaves behind is cleared."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from handoff_samples import desk_with_frames

from orstream.edge.outbox.errors import NoSuchItem, OutboxFull
from orstream.edge.outbox.store import ITEMS, OutboxStore
from orstream.errors import OrstreamError
from orstream.handoffs import HandOffRequest
from orstream.jobs import Job


def job(state: str, result: dict | None = None, error: str = "") -> Job:
    return Job("j1", "probe", "k", (), {}, state, attempts=1, result=result, error=error)


def test_items_survive_a_reopen_and_their_clips_go_when_the_job_is_over(tmp_path: Path) -> None:
    desk = desk_with_frames(tmp_path)
    item = desk.hand_off(HandOffRequest("probe", "or1", 1.0, {"window_s": "1"}))
    assert (item.state, item.stream_id, item.frames) == ("waiting", "or1", 10)
    assert item.withheld_frames == 0
    assert item.clip_bytes == (tmp_path / ITEMS / item.id / "clip.mp4").stat().st_size > 0
    desk.close()

    store = OutboxStore(tmp_path)
    again = store.get(item.id)
    assert again == item and again.idempotency_key.endswith(item.id)
    assert [i.id for i in store.unfinished()] == [item.id]
    store.accepted(item.id, "j1")
    done = store.job_seen(item.id, job("succeeded", {"frames": 10}))
    assert (done.state, done.result, done.sends) == ("succeeded", {"frames": 10}, 1)
    assert not (tmp_path / ITEMS / item.id).exists()
    assert store.unfinished() == [] and store.usage() == (0, 0)
    store.close()


def test_a_full_outbox_refuses_by_items_and_by_bytes(tmp_path: Path) -> None:
    desk = desk_with_frames(tmp_path / "a", max_items=2)
    for _ in range(2):
        desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    with pytest.raises(OutboxFull, match="2 of 2 items wait"):
        desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    assert len(list((tmp_path / "a" / ITEMS).iterdir())) == 2  # nothing of the refused one
    # An item that is over makes room again.
    first = desk.store.unfinished()[0]
    desk.store.rejected(first.id, "unknown kind")
    desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    desk.close()

    tiny = desk_with_frames(tmp_path / "b", max_bytes=100)
    with pytest.raises(OutboxFull, match="MB"):
        tiny.hand_off(HandOffRequest("probe", "or1", 1.0))
    assert list((tmp_path / "b" / ITEMS).iterdir()) == []
    assert tiny.store.recent() == []
    tiny.close()


def test_a_clip_without_its_row_is_cleared_and_a_lost_clip_ends_its_item(tmp_path: Path) -> None:
    desk = desk_with_frames(tmp_path)
    kept = desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    lost = desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    orphan, folder = desk.store.new_folder()  # the edge stopped before committing its row
    (folder / "clip.mp4").write_bytes(b"half")
    desk.close()
    (tmp_path / ITEMS / lost.id / "clip.mp4").unlink()

    store = OutboxStore(tmp_path)
    assert not folder.exists()
    with pytest.raises(NoSuchItem):
        store.get(orphan)
    assert store.get(kept.id).state == "waiting"
    gone = store.get(lost.id)
    assert gone.state == "rejected" and "missing" in gone.error
    assert json.loads(json.dumps([i.id for i in store.unfinished()])) == [kept.id]
    store.close()


def test_only_the_newest_finished_items_are_kept(tmp_path: Path) -> None:
    desk = desk_with_frames(tmp_path, keep_finished=2)
    items = [desk.hand_off(HandOffRequest("probe", "or1", 1.0)) for _ in range(4)]
    for item in items:
        desk.store.rejected(item.id, "unknown kind")
    assert [i.id for i in desk.recent()] == [items[3].id, items[2].id]
    waiting = desk.hand_off(HandOffRequest("probe", "or1", 1.0))
    assert [i.id for i in desk.recent(state="waiting")] == [waiting.id]
    desk.close()


def test_one_edge_holds_an_outbox_at_a_time(tmp_path: Path) -> None:
    first = OutboxStore(tmp_path)
    with pytest.raises(OrstreamError, match="in use by another running edge"):
        OutboxStore(tmp_path)
    first.close()
    OutboxStore(tmp_path).close()
