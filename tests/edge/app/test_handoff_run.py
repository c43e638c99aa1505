"""A run of the edge with ``--server``: a client asks the running edge for a hand-off over its
gRPC API (``orstream client handoff --wait``) and follows it to the job server's result; the run
leaves the item in the outbox, where the next run finds it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from edge_samples import free_port
from handoff_samples import ServerOnPort

from orstream.cli import main
from orstream.edge.app.config import parse_config
from orstream.edge.app.session import run_edge
from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.edge.outbox.store import OutboxStore

ASK_AFTER_S = 4.0


def test_a_client_hands_off_from_a_running_edge_and_gets_the_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    server = ServerOnPort(tmp_path / "server", free_port())
    server.start()
    config = parse_config(
        {
            "source": {
                "uri": "phantom://?seed=2&seconds=8&width=320&height=180&fps=10",
                "stream_id": "or1",
            },
            "model": {"package": str(SHIPPED_PACKAGE)},
            "grpc": {"address": "127.0.0.1:0", "drain_s": 0.5},
            "server": {"address": server.address, "outbox": str(tmp_path / "outbox")},
        },
        "test",
    )
    exits: list[int] = []

    def ask(port: int) -> None:
        def client() -> None:
            threading.Event().wait(ASK_AFTER_S)
            address = f"127.0.0.1:{port}"
            exits.append(
                main(["client", "handoff", "probe", "--address", address, "--seconds", "2",
                      "--wait", "--json", "--timeout", "10"])
            )  # fmt: skip

        threading.Thread(target=client, daemon=True).start()

    try:
        run_edge(config, on_serving=ask, say=lambda line: None)
    finally:
        server.stop()
    assert exits == [0]
    changes = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    states = [change["state"] for change in changes]
    assert states[0] == "waiting" and "accepted" in states
    done = changes[-1]
    assert done["state"] == "succeeded" and done["result"]["frames"] == done["frames"] > 0
    assert done["frames"] + done["withheld_frames"] <= 20  # 2 s at 10 fps, unless skipped
    store = OutboxStore(tmp_path / "outbox")
    assert [item.id for item in store.recent()] == [done["id"]]
    store.close()
