"""``orstream client status|subscribe|timeline`` against a live edge server on loopback."""

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from edge_samples import free_port, result, sample_status

from orstream.cli import main
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer


@pytest.fixture
def hub() -> ResultHub:
    return ResultHub()


@pytest.fixture
def server(hub: ResultHub) -> Iterator[EdgeGrpcServer]:
    edge = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0")
    edge.start()
    yield edge
    edge.stop(grace_s=0.5)


@pytest.fixture
def address(server: EdgeGrpcServer) -> str:
    return f"127.0.0.1:{server.port}"


@pytest.fixture
def publishing(hub: ResultHub) -> Iterator[None]:
    """Publish alternating cam0/cam1 results (every fifth without a step) every 5 ms."""
    stop = threading.Event()

    def publish() -> None:
        index = 0
        while not stop.wait(0.005):
            hub.publish(result(index, f"cam{index % 2}", step=None if index % 5 == 0 else 4))
            index += 1

    thread = threading.Thread(target=publish)
    thread.start()
    yield
    stop.set()
    thread.join()


def test_status_prints_tables(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "status", "--address", address]) == 0
    out = capsys.readouterr().out
    assert f"orstream edge at {address}, up 50.2 s" in out
    assert "video frames: 1217 in, 1190 out" in out
    assert "frame to result: p50 41.0 ms" in out
    lines = out.splitlines()
    cam1 = next(line for line in lines if "rtsp://10.0.0.9/live" in line)
    assert cam1.split()[:4] == ["cam1", "failed", "0.0", "17"]
    assert cam1.endswith("connection refused")
    model = next(line for line in lines if "pitvis_workflow@1.0.0" in line and "serving" in line)
    assert model.split()[1:] == ["cam0", "onnxruntime-cpu", "5", "serving", "250"]
    assert "  pitvis_workflow@1.0.0 on cam0: onnxruntime-cpu (tensorrt:cuda: no CUDA GPU 0" in out
    inference = next(line for line in lines if "inference.cam0" in line)
    assert inference.split()[:3] == ["inference.cam0", "250", "3"]
    overlay = next(line for line in lines if line.strip().startswith("overlay"))
    assert overlay.split() == ["overlay", "0", "0", "-", "-", "-", "-"]


@pytest.mark.usefixtures("publishing")
def test_subscribe_prints_one_line_per_filtered_result(
    address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["client", "subscribe", "--address", address, "--stream", "cam1", "--kind", "step"]
    assert main([*argv, "--count", "5"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5
    indices = []
    for line in lines:
        fields = line.split(" | ")
        stream, index, _, pts, _ = fields[0].split()
        assert stream == "cam1"
        indices.append(int(index.lstrip("#")))
        assert float(pts) == pytest.approx(indices[-1] * 0.04)
        assert fields[1] == "step 4 sphenoid_sinus_clearance 0.75"
        assert fields[2].startswith("latency ")
        assert "instruments" not in line
    assert indices == sorted(indices) and all(i % 2 == 1 and i % 5 != 0 for i in indices)


@pytest.mark.usefixtures("publishing")
def test_subscribe_json(address: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["client", "subscribe", "--address", address, "--count", "6", "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == 6
    assert {r["stream_id"] for r in records} == {"cam0", "cam1"}
    for record in records:
        assert record["instruments"] == {
            "slots": [16, -2],
            "present": [{"code": 16, "name": "suction", "probability": 0.8}],
        }
        assert record["latency_ms"] == pytest.approx(
            (record["produced_ns"] - record["capture_ns"]) / 1e6
        )
        assert record["dropped"] == 0
        if record["index"] % 5 == 0:
            assert record["step"] is None
        else:
            assert record["step"] == {
                "code": 4,
                "name": "sphenoid_sinus_clearance",
                "confidence": 0.75,
            }


@pytest.mark.usefixtures("publishing")
def test_subscribe_ends_when_the_server_stops(
    address: str, server: EdgeGrpcServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stopper = threading.Timer(1.0, server.stop, kwargs={"grace_s": 2.0})
    stopper.start()
    assert main(["client", "subscribe", "--address", address]) == 0
    stopper.join()
    assert "the server ended the subscription after" in capsys.readouterr().err


def test_timeline(hub: ResultHub, address: str, capsys: pytest.CaptureFixture[str]) -> None:
    for index, step in enumerate([1, 1, 1, 2, 2, -1]):
        hub.publish(result(index, "cam0", step=step))
    assert main(["client", "timeline", "--address", address, "--stream", "cam0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "stream cam0: 3 step segments"
    assert [line.split("step")[1].split()[:2] for line in lines[1:]] == [
        ["1", "nasal_corridor_creation"],
        ["2", "anterior_sphenoidotomy"],
        ["-1", "out_of_patient"],
    ]
    assert lines[1].split()[:3] == ["0.000", "s", "-"] and "frames 0-2" in lines[1]
    assert "frames 3-4" in lines[2]


def test_unknown_stream_is_one_error_line(
    hub: ResultHub, address: str, capsys: pytest.CaptureFixture[str]
) -> None:
    hub.publish(result(0, "cam0"))
    assert main(["client", "timeline", "--address", address, "--stream", "cam7"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "NOT_FOUND" in err and "'cam7'" in err and "cam0" in err


def test_unreachable_server_is_one_error_line(capsys: pytest.CaptureFixture[str]) -> None:
    address = f"127.0.0.1:{free_port()}"
    for command in ("status", "subscribe", "timeline"):
        assert main(["client", command, "--address", address, "--timeout", "0.5"]) == 2
        err = capsys.readouterr().err
        assert (
            err
            == f"orstream: error: cannot reach an orstream edge server at {address} within 0.5 s\n"
        )


def test_unreachable_server_from_the_command_line(project_root: Path) -> None:
    completed = subprocess.run(
        [
            project_root / ".venv/bin/orstream",
            "client",
            "status",
            "--address",
            f"127.0.0.1:{free_port()}",
            "--timeout",
            "0.5",
        ],
        capture_output=True,
        text=True,
    )
    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert "cannot reach an orstream edge server" in completed.stderr


def test_client_commands_load_without_grpc() -> None:
    code = (
        "import sys;"
        "import orstream.client.status_command, orstream.client.subscribe_command,"
        " orstream.client.timeline_command;"
        "print(sorted(m for m in ('grpc', 'google.protobuf') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
