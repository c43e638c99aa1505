"""A camera that freezes or is unplugged does not end the run: the stream shows as stalled or
reconnecting and health turns NOT_SERVING within a second; when the camera returns, inference
resumes within 5 s, on a fresh temporal state. A real RTSP camera in a process of its own is
frozen (SIGSTOP), resumed, killed (SIGKILL) and started again on the same port."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.models.shipped import SHIPPED_PACKAGE
from orstream.streams.sinks.memory import MemorySink
from orstream.streams.sinks.rtsp_server import spawn_test_camera

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture()
def port() -> Iterator[int]:
    yield free_port()


def wait_for(condition: object, timeout_s: float) -> float:
    """Seconds until ``condition()`` held (fails the test after ``timeout_s``)."""
    started = time.monotonic()
    while not condition():  # type: ignore[operator]
        assert time.monotonic() - started < timeout_s, "timed out"
        time.sleep(0.02)
    return time.monotonic() - started


def test_a_frozen_then_unplugged_camera_comes_back_without_a_restart(port: int) -> None:
    camera = spawn_test_camera(port)
    config = parse_config(
        {
            "source": {
                "uri": f"rtsp://127.0.0.1:{port}/camera",
                "stream_id": "or1",
                "reconnect": {"initial_s": 0.5, "factor": 1.6, "max_s": 2.0},
            },
            "model": {"package": str(SHIPPED_PACKAGE), "rate_hz": 4},
            "grpc": {"enabled": False},
        },
        "test",
    )
    health: list[bool] = []
    stream_health: list[tuple[str, bool]] = []
    sink = MemorySink(keep_images=False)
    app = EdgeApp(
        config,
        sinks={"or1": [SinkSpec("memory", lambda w, h, fps: sink)]},
        on_health=health.append,
        on_stream_health=lambda stream, up: stream_health.append((stream, up)),
    )
    results = app.hub.subscribe(["or1"], capacity=1000)
    runner = threading.Thread(target=app.run)
    runner.start()
    try:
        wait_for(lambda: results.pending >= 3, 30)
        assert health == [True] and stream_health == [("or1", True)]
        state = lambda: app.status().sources[0].state  # noqa: E731

        camera.send_signal(signal.SIGSTOP)  # frozen: connected, no frames
        assert wait_for(lambda: health[-1] is False, 3) < 1.5
        assert state() == "stalled" and stream_health[-1] == ("or1", False)
        camera.send_signal(signal.SIGCONT)
        wait_for(lambda: health[-1] is True, 5)
        assert state() == "playing"

        camera.kill()  # unplugged
        camera.wait()
        assert wait_for(lambda: health[-1] is False, 3) < 1.2
        wait_for(lambda: state() == "reconnecting", 5)
        time.sleep(2.0)
        while results.get(0) is not None:
            pass
        frames_before = app.status().sources[0].frames_in

        camera = spawn_test_camera(port)
        back = time.monotonic()
        wait_for(lambda: results.pending >= 1, 10)
        resumed_s = time.monotonic() - back
        assert resumed_s < 5.0, f"inference resumed {resumed_s:.1f} s after the camera's return"
        wait_for(lambda: health[-1] is True, 1)
        assert state() == "playing"
        status = app.status().sources[0]
        assert status.reconnects == 1 and status.frames_in > frames_before
    finally:
        app.interrupt("test")
        runner.join(15)
        camera.kill()
    assert not runner.is_alive()
    assert app.status().sources[0].state == "interrupted"
    assert app.failures() == []
