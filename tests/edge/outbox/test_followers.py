"""Followers of outbox items: each gets its item's changes and its job's partial results in
order, replays of partial results (a watch opened again) come once, and a closed follower
gets nothing more."""

from dataclasses import replace
from pathlib import Path

from handoff_samples import desk_with_frames

from orstream.edge.outbox.followers import ItemFollowers
from orstream.handoffs import AskRequest, HandOffItem
from orstream.jobs import PartialResult


def test_a_follower_gets_its_item_in_order_and_each_partial_once(tmp_path: Path) -> None:
    told: list[HandOffItem] = []
    desk = desk_with_frames(tmp_path, on_change=told.append)
    other = desk.hand_off(AskRequest("Which step?").as_handoff())
    item, follow = desk.ask(AskRequest("Which step?", seconds=1.0))
    assert item.kind == "vlm" and item.params["question"] == "Which step?"
    followers: ItemFollowers = desk.followers
    accepted = replace(item, state="accepted", job_id="j1")
    followers.changed(accepted)
    followers.changed(replace(other, state="accepted"))  # not followed
    for attempt, sequence in ((1, 0), (1, 1), (1, 0), (1, 1), (1, 2), (2, 0)):
        followers.partial(
            item.id, PartialResult(attempt, sequence, {"text": f"{attempt}.{sequence}"})
        )
    events = []
    while (event := follow.get(0.01)) is not None:
        events.append(event)
    assert events[0] == accepted
    assert [e.value["text"] for e in events[1:]] == ["1.0", "1.1", "1.2", "2.0"]
    assert [t.id for t in told] == [other.id, item.id, item.id, other.id]  # subscribers too
    follow.close()
    followers.changed(replace(accepted, state="failed", error="gone"))
    assert follow.get(0.01) is None
