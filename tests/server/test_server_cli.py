"""``orstream client server submit|watch|get|cancel|list`` end to end against a real server on
loopback, and their one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from job_samples import GateKind

from orstream.cli import main
from orstream.server.job_server import JobServer

Start = Callable[..., tuple[JobServer, str]]


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    code = main(list(words))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_submit_watch_get_list(
    start_server: Start, video: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = start_server()
    code, out, _ = run(
        capsys, "client", "server", "submit", "probe", "--input", str(video), "--key", "k1",
        "--param", "window_s=2", "--address", address,
    )  # fmt: skip
    job_id = out.strip()
    assert code == 0 and len(job_id) == 32
    code, out, _ = run(capsys, "client", "server", "watch", job_id, "--address", address)
    lines = out.splitlines()
    assert code == 0
    assert lines[0].startswith(("queued", "running", "succeeded"))
    assert next(line for line in lines if line.startswith("partial")).startswith("partial 1.0: {")
    assert lines[-2] == "succeeded 100% (attempt 1)"
    assert json.loads(lines[-1].removeprefix("result: "))["windows"] == 2
    code, out, _ = run(capsys, "client", "server", "get", job_id, "--json", "--address", address)
    job = json.loads(out)
    assert code == 0
    assert (job["state"], job["attempts"], job["result"]["frames"]) == ("succeeded", 1, 30)
    assert job["params"] == {"window_s": "2"}
    code, out, _ = run(capsys, "client", "server", "get", job_id, "--address", address)
    assert "state: succeeded" in out.splitlines() and "attempts: 1" in out.splitlines()
    code, out, _ = run(
        capsys, "client", "server", "submit", "probe", "--input", str(video), "--key", "k1",
        "--json", "--address", address,
    )  # fmt: skip
    assert code == 0 and json.loads(out)["id"] == job_id
    code, out, _ = run(capsys, "client", "server", "list", "--address", address)
    assert code == 0 and len(out.splitlines()) == 1 and out.startswith(f"{job_id}  probe")
    code, out, _ = run(
        capsys, "client", "server", "list", "--state", "queued", "--address", address
    )
    assert code == 0 and out == ""


def test_cancel_and_a_watch_of_a_cancelled_job(
    start_server: Start, video: Path, gate: GateKind, capsys: pytest.CaptureFixture[str]
) -> None:
    _, address = start_server()
    _, out, _ = run(
        capsys, "client", "server", "submit", "gate", "--input", str(video), "--address", address
    )
    job_id = out.strip()
    assert gate.started.wait(10)
    code, out, _ = run(capsys, "client", "server", "cancel", job_id, "--address", address)
    assert (code, out) == (0, f"{job_id} cancelled\n")
    code, out, _ = run(capsys, "client", "server", "watch", job_id, "--address", address)
    assert code == 1
    assert out.splitlines()[-1] == "error: cancelled by a client"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("submit", "wsi", "--input", "VIDEO"), "INVALID_ARGUMENT: unknown job kind 'wsi'"),
        (("submit", "probe", "--input", "/no/such.mp4"), "/no/such.mp4: no such file"),
        (("submit", "probe"), "submit needs at least one --input or --server-path"),
        (("submit", "probe", "--input", "VIDEO", "--param", "x"), "--param 'x': needs NAME=VALUE"),
        (("get", "nope"), "NOT_FOUND: no job 'nope'"),
        (("cancel", "nope"), "NOT_FOUND: no job 'nope'"),
        (("watch", "nope"), "NOT_FOUND: no job 'nope'"),
    ],
)
def test_bad_input_is_one_line(
    start_server: Start,
    video: Path,
    capsys: pytest.CaptureFixture[str],
    words: tuple[str, ...],
    message: str,
) -> None:
    _, address = start_server()
    words = tuple(str(video) if word == "VIDEO" else word for word in words)
    code, _, err = run(capsys, "client", "server", *words, "--address", address)
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err


def test_a_server_that_is_down_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(
        capsys, "client", "server", "list", "--address", "127.0.0.1:1", "--timeout", "0.3"
    )
    assert code == 2
    assert err == "orstream: error: cannot reach an orstream server at 127.0.0.1:1 within 0.3 s\n"


@pytest.mark.parametrize(
    ("words", "message"),
    [
        (("--ray-address", "127.0.0.1:6379"), "--ray-address needs --engine ray"),
        (("--engine", "ray", "--ray-replicas", "4"), "--ray-replicas '4': needs MIN:MAX"),
        (("--engine", "ray", "--ray-replicas", "3:2"), "Ray replicas 3..2"),
        (("--engine", "ray", "--ray-jobs-per-replica", "0"), "jobs per replica 0"),
        (("--vlm-frame-package", "pkg"), "--vlm-*-package need --vlm"),
    ],
)
def test_bad_ray_and_vlm_options_are_one_line_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], words: tuple[str, ...], message: str
) -> None:
    code, _, err = run(capsys, "server", "run", "--store", str(tmp_path / "store"), *words)
    assert code == 2
    assert len(err.splitlines()) == 1 and message in err
    assert not (tmp_path / "store").exists()
