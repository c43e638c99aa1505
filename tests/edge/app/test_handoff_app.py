"""The edge app with a ``server:`` section, end to end with real parts: a phantom case through
the shipped recognizer, the stream's hand-off privacy gate and clips, automatic ``probe``
hand-offs through the outbox to a real job server, and their results back on the hub."""

from __future__ import annotations

from pathlib import Path

from edge_samples import free_port
from handoff_samples import ServerOnPort, wait_for

from orstream.edge.app.compose import EdgeApp
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.handoffs import HandOffItem
from orstream.streams.phantom.writer import PhantomSpec, write_dataset

SECONDS, FPS = 10, 10.0


def test_automatic_hand_offs_of_a_stream_reach_the_server_and_come_back(tmp_path: Path) -> None:
    write_dataset(PhantomSpec(1, SECONDS, seed=4, width=320, height=180, fps=FPS), tmp_path)
    server = ServerOnPort(tmp_path / "server", free_port())
    server.start()
    config = parse_config(
        {
            "source": {"uri": str(tmp_path / "videos" / "video_01.mp4"), "stream_id": "or1"},
            "model": {"package": str(SHIPPED_PACKAGE)},
            "grpc": {"enabled": False},
            "server": {
                "address": server.address,
                "outbox": str(tmp_path / "outbox"),
                "retry": {"initial_s": 0.05, "max_s": 0.2},
                "handoffs": [{"kind": "probe", "every_s": 4, "seconds": 3}],
            },
        },
        "test",
    )
    app = EdgeApp(config)
    updates = app.hub.subscribe(kinds=["handoff"], capacity=1024)
    desk = app.handoffs
    assert desk is not None
    try:
        app.run()
        clips = app.streams["or1"].handoff_clips
        assert clips is not None and clips.handed_off + clips.refused == 2  # at 4 s and 8 s
        wait_for(lambda: all(item.final for item in desk.recent()), what="every item's end")
        items = desk.recent()
    finally:
        desk.close()
        server.stop()
    assert len(items) == clips.handed_off >= 1
    for item in items:
        assert (item.origin, item.kind, item.state) == ("auto", "probe", "succeeded")
        assert item.frames + item.withheld_frames == 30  # 3 s at the stream's 10 fps
        assert item.result is not None and item.result["frames"] == item.frames
    told: dict[str, HandOffItem] = {}
    while (event := updates.get_event(timeout_s=0)) is not None:
        assert isinstance(event, HandOffItem)
        told[event.id] = event
    assert told == {item.id: item for item in items}
