"""``orstream edge run`` on bad input: one clear line, a non-zero exit, never a traceback."""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
from pathlib import Path

import pytest

from orstream.edge.app.run_command import add_arguments, config_from_args
from orstream.errors import OrstreamError
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sources.video_file import probe_video


@pytest.fixture(scope="module")
def small_mp4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("edge_run_phantom")
    write_dataset(PhantomSpec(1, 4, seed=9, width=320, height=180, fps=12.0), out)
    return out / "videos" / "video_01.mp4"


def _edge_run(
    project_root: Path, *args: object, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [
        str(project_root / ".venv/bin/orstream"),
        "edge",
        "run",
        "--no-grpc",
        *map(str, args),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env)


def _assert_one_clear_error(result: subprocess.CompletedProcess[str], words: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("orstream: error")]
    assert len(errors) == 1, result.stderr
    assert words in errors[0], errors[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_file_runs_to_the_end_and_writes_results(
    project_root: Path, small_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    result = _edge_run(
        project_root,
        "--source", small_mp4, "--model", random_workflow_package,
        "--record", tmp_path / "out.mp4", "--results", tmp_path / "results",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"overlay video in {tmp_path / 'out.mp4'}\n" in result.stderr
    assert probe_video(tmp_path / "out.mp4").frame_count == probe_video(small_mp4).frame_count
    rows = (tmp_path / "results" / "steps" / "video_01.csv").read_text().splitlines()
    assert len(rows) == 1 + 4  # header + one row per second
    assert "frame-to-result latency" in result.stdout


@pytest.mark.parametrize(
    ("make_source", "words"),
    [
        (lambda tmp: tmp / "missing.mp4", "missing.mp4"),
        (lambda tmp: _write(tmp / "notes.mp4", b"this is not a video\n" * 50), "notes.mp4"),
        (lambda tmp: "gopher://example/feed", "gopher"),
    ],
    ids=["missing", "not-video", "unknown-scheme"],
)
def test_bad_sources_fail_with_one_line(
    project_root: Path, random_workflow_package: Path, tmp_path: Path, make_source, words: str
) -> None:
    source = make_source(tmp_path)
    result = _edge_run(project_root, "--source", source, "--model", random_workflow_package)
    _assert_one_clear_error(result, words)


def test_a_camera_nobody_serves_yet_is_waited_for_saying_why_until_stopped(
    project_root: Path, random_workflow_package: Path
) -> None:
    """An OR's camera may start after the edge: the edge keeps trying (saying why) instead of
    failing, and stops cleanly when asked."""
    url = f"rtsp://127.0.0.1:{_free_port()}/nobody"
    command = [project_root / ".venv/bin/orstream", "edge", "run", "--no-grpc", "--source", url]
    edge = subprocess.Popen(
        [*map(str, command), "--model", str(random_workflow_package)],
        stderr=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert edge.stderr is not None
    lines = []
    for line in edge.stderr:
        lines.append(line)
        if "trying again" in line:
            break
    assert "Failed to connect" in lines[-1] and url in lines[-1]
    edge.send_signal(signal.SIGTERM)
    out, err = edge.communicate(timeout=30)
    assert edge.returncode == 0, err
    assert "interrupted" in out + err and "Traceback" not in err


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_truncated_file_is_refused_with_one_line(
    project_root: Path, small_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    data = small_mp4.read_bytes()
    truncated = _write(tmp_path / "video_02.mp4", data[: len(data) // 2])
    result = _edge_run(project_root, "--source", truncated, "--model", random_workflow_package)
    _assert_one_clear_error(result, "video_02.mp4")


def test_a_package_whose_card_does_not_match_its_onnx_is_refused(
    project_root: Path, small_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    package = tmp_path / "package"
    shutil.copytree(random_workflow_package, package)
    card = json.loads((package / "card.json").read_text())
    card["inputs"][0]["shape"][2] += 8
    card["inputs"][0]["resize"]["height"] += 8
    (package / "card.json").write_text(json.dumps(card))
    result = _edge_run(project_root, "--source", small_mp4, "--model", package)
    _assert_one_clear_error(result, "image")


def test_an_unknown_config_key_is_refused(project_root: Path, tmp_path: Path) -> None:
    config = tmp_path / "edge.yaml"
    config.write_text("source: {uri: a.mp4}\nrecrod: {path: x.mp4}\n")
    result = _edge_run(project_root, "--config", config)
    _assert_one_clear_error(result, "recrod")


def test_segmentation_options_are_checked(
    project_root: Path, small_mp4: Path, random_workflow_package: Path
) -> None:
    result = _edge_run(project_root, "--source", small_mp4, "--segmentation-rate", "2")
    _assert_one_clear_error(result, "--segmenter")
    result = _edge_run(project_root, "--source", small_mp4, "--classifier", small_mp4)
    _assert_one_clear_error(result, "--classifier needs --segmenter")
    # A workflow package is no segmenter: refused before anything plays.
    result = _edge_run(project_root, "--source", small_mp4, "--segmenter", random_workflow_package)
    _assert_one_clear_error(result, "no prompt decoder")
    # Nor a classifier.
    segmenter = project_root / "edge" / "packages" / "imis_segmenter"
    result = _edge_run(
        project_root,
        *("--source", small_mp4, "--segmenter", segmenter),
        *("--classifier", random_workflow_package),
    )
    _assert_one_clear_error(result, "is not an instrument classifier")
    result = _edge_run(project_root, "--source", small_mp4, "--instruments", "masks")
    _assert_one_clear_error(result, "--instruments needs --model")
    result = _edge_run(
        project_root,
        *("--source", small_mp4, "--model", random_workflow_package, "--instruments", "masks"),
    )
    _assert_one_clear_error(result, "instruments: masks needs a segmentation section")


def test_several_streams_run_side_by_side_with_their_own_files(
    project_root: Path, small_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    result = _edge_run(
        project_root,
        "--source", f"left={small_mp4}", "--source", f"right={small_mp4}",
        "--model", random_workflow_package,
        "--record", tmp_path / "out.mp4", "--results", tmp_path / "results",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    frames = probe_video(small_mp4).frame_count
    for stream in ("left", "right"):  # no {stream} given: one file and folder each, beside
        assert probe_video(tmp_path / f"out-{stream}.mp4").frame_count == frames
        assert (tmp_path / "results" / stream / "steps" / "video_01.csv").is_file()
        assert f"source {stream} ({small_mp4}): ended, {frames} frames" in result.stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--source", "a=x.mp4", "--source", "a=y.mp4"], "two streams with the same id 'a'"),
        (["--source", "x.mp4", "--record", "out-{camera}.mp4"], "unknown placeholder {camera}"),
        (["--source", "bad id=x.mp4"], "bad id=x.mp4"),
        (["--source", "a=x.mp4", "--source", "b=y.mp4", "--stream-id", "c"], "--stream-id"),
    ],
    ids=["same-id", "placeholder", "bad-id", "stream-id-with-several"],
)
def test_bad_stream_options_are_one_line(project_root: Path, args: list[str], words: str) -> None:
    _assert_one_clear_error(_edge_run(project_root, *args), words)


def test_a_source_that_fails_for_one_of_several_streams_fails_that_stream_only(
    project_root: Path, small_mp4: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    result = _edge_run(
        project_root,
        "--source", f"good={small_mp4}", "--source", f"bad={tmp_path / 'missing.mp4'}",
        "--model", random_workflow_package, "--results", tmp_path / "results",
    )  # fmt: skip
    _assert_one_clear_error(result, "bad.source: ")
    assert "missing.mp4" in result.stderr
    frames = probe_video(small_mp4).frame_count
    assert f"source good ({small_mp4}): ended, {frames} frames" in result.stdout
    assert "source bad" in result.stdout and "failed" in result.stdout
    assert (tmp_path / "results" / "good" / "steps" / "video_01.csv").is_file()


def _display_of(*options: str) -> tuple[bool, bool, int | None]:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    display = config_from_args(parser.parse_args(["--source", "a.mp4", *options])).display
    return display.enabled, display.fullscreen, display.monitor


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ((), (False, False, None)),
        (("--display",), (True, False, None)),
        (("--display", "--realtime"), (True, False, None)),
        (("--display", "window"), (True, False, None)),
        (("--display", "fullscreen"), (True, True, None)),
        (("--display", "fullscreen:1"), (True, True, 1)),
        (("--display", "window:1"), (True, False, 1)),
        (("--display", "2"), (True, True, 2)),
    ],
)
def test_display_options(options: tuple[str, ...], expected: tuple[bool, bool, int | None]) -> None:
    assert _display_of(*options) == expected


@pytest.mark.parametrize("spec", ["fulscreen", "fullscreen:x", "window:-1", ":1", "1:2", ""])
def test_a_bad_display_spec_is_one_clear_line(spec: str) -> None:
    with pytest.raises(OrstreamError) as caught:
        _display_of("--display", spec)
    assert str(caught.value).startswith(f"--display {spec!r}: expected window, fullscreen")
    assert "\n" not in str(caught.value)


def test_display_without_a_display_fails_with_one_line(project_root: Path, small_mp4: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = _edge_run(project_root, "--source", small_mp4, "--display", "fullscreen:1", env=env)
    _assert_one_clear_error(result, "no display to show video on")


def test_tokens_and_metrics_options_reach_the_config(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    options = ["--tokens", str(tmp_path / "t.yaml"), "--metrics", "127.0.0.1:9108"]
    config = config_from_args(parser.parse_args(["--source", "a.mp4", *options]))
    assert config.grpc.tokens == tmp_path / "t.yaml"
    assert config.metrics is not None and config.metrics.address == "127.0.0.1:9108"


def test_a_missing_tokens_file_is_refused_before_anything_plays(
    project_root: Path, small_mp4: Path, tmp_path: Path
) -> None:
    command = [
        str(project_root / ".venv/bin/orstream"),
        *("edge", "run", "--source", small_mp4, "--grpc", "127.0.0.1:0"),
        *("--tokens", tmp_path / "none.yaml"),
    ]
    result = subprocess.run(list(map(str, command)), capture_output=True, text=True, timeout=120)
    _assert_one_clear_error(result, "tokens file not found")
