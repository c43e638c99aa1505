"""edge.yaml: typed sections, unknown keys refused, paths relative to the file."""

from pathlib import Path

import pytest

from orstream.edge.app.config import load_config, parse_config, per_stream
from orstream.errors import OrstreamError
from orstream.streams.sinks.display import DisplaySettings


def test_a_full_config_loads_with_paths_relative_to_it(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "source: {uri: 'rtsp://10.0.0.5:8554/scope', stream_id: or3}\n"
        "model: {package: pkg, rate_hz: 2}\n"
        "overlay: {stale_after_ms: 400, port: {capacity: 8, policy: drop_oldest}}\n"
        "record: {path: out/or3.mp4}\n"
        "grpc: {address: '0.0.0.0:6000', insecure: true}\n"
        "results: {dir: res, video: 3}\n"
    )
    config = load_config(path)
    assert config.source.stream_id == "or3"
    assert config.model is not None and config.model.package == tmp_path / "pkg"
    assert config.model.rate_hz == 2
    assert config.overlay.port.policy == "drop_oldest"
    assert config.record is not None and config.record.path == tmp_path / "out/or3.mp4"
    assert config.results is not None and config.results.video == 3
    assert config.rtsp is None and not config.display.enabled
    assert config.model.backends == ("tensorrt:cuda", "torch:cuda", "onnxruntime")
    assert config.model.device == "cpu"


def test_segmentation_takes_a_backend_preference_and_device(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "source: {uri: a.mp4}\n"
        "segmentation: {package: seg, backends: ['torch:cuda:1', onnxruntime], device: cuda}\n"
    )
    segmentation = load_config(path).segmentation
    assert segmentation is not None
    assert segmentation.backends == ("torch:cuda:1", "onnxruntime")
    assert segmentation.device == "cuda"


def test_the_display_section_gives_the_sink_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "source: {uri: a.mp4}\ndisplay: {enabled: true, fullscreen: true, monitor: 1}\n"
    )
    display = load_config(path).display
    assert display.enabled
    assert display.settings() == DisplaySettings(fullscreen=True, monitor=1)
    path.write_text("source: {uri: a.mp4}\n")
    display = load_config(path).display
    assert not display.enabled and display.settings() == DisplaySettings()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("source: {uri: a.mp4}\nmodle: {package: p}\n", "modle"),
        ("source: {uri: a.mp4, fps: 30}\n", "source.fps"),
        ("source: {uri: a.mp4}\noverlay: {port: {policy: newest}}\n", "overlay.port.policy"),
        ("model: {package: p}\n", "source"),
        ("- just a list\n", "expected a mapping"),
        ("source: [unclosed\n", "not valid YAML"),
        ("source: {uri: a.mp4}\nmodel: {package: p, backends: [tensorrt8]}\n", "'tensorrt8'"),
        ("source: {uri: a.mp4}\nmodel: {package: p, backends: ['torch:gpu']}\n", "'gpu'"),
        ("source: {uri: a.mp4}\nmodel: {package: p, backends: []}\n", "model.backends"),
        ("source: {uri: a.mp4}\nsegmentation: {package: p, device: 'cuda:x'}\n", "cuda:x"),
        ("source: {uri: a.mp4}\ndisplay: {fullscreen: true}\n", "need enabled: true"),
        ("source: {uri: a.mp4}\ndisplay: {enabled: true, monitor: -1}\n", "display.monitor"),
        ("source: {uri: a.mp4}\ndisplay: {enabled: true, screen: 1}\n", "display.screen"),
        ("source: {uri: a.mp4}\nmodel: {package: p, instruments: masks}\n", "with a classifier"),
        (
            "source: {uri: a.mp4}\nmodel: {package: p, instruments: masks}\n"
            "segmentation: {package: s}\n",
            "with a classifier",
        ),
        ("source: {uri: a.mp4}\nmodel: {package: p, instruments: head}\n", "model.instruments"),
    ],
)
def test_bad_configs_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(OrstreamError, match=message) as caught:
        load_config(path)
    assert "\n" not in str(caught.value)


def test_a_missing_config_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="config not found"):
        load_config(tmp_path / "nope.yaml")


def test_several_streams_take_ids_and_paths_per_stream(tmp_path: Path) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(
        "sources:\n"
        "  - {uri: 'rtsp://10.0.0.5/scope', stream_id: endo}\n"
        "  - {uri: 'rtsp://10.0.0.6/room'}\n"
        "record: {path: 'out/{stream}.mp4'}\n"
    )
    config = load_config(path)
    assert [s.stream_id for s in config.streams] == ["endo", "cam1"]
    assert config.record is not None
    assert per_stream(str(config.record.path), "endo", True, "file") == str(
        tmp_path / "out/endo.mp4"
    )
    assert per_stream("/d/or.mp4", "exo", True, "file") == "/d/or-exo.mp4"
    assert per_stream("/d/results", "exo", True, "folder") == "/d/results/exo"
    assert per_stream("/d/or.mp4", "exo", False, "file") == "/d/or.mp4"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("sources: [{uri: a.mp4, stream_id: x}, {uri: b.mp4, stream_id: x}]\n", "same id 'x'"),
        ("sources: [{uri: a.mp4, stream_id: cam1}, {uri: b.mp4}]\n", "same id 'cam1'"),
        ("source: {uri: a.mp4}\nsources: [{uri: b.mp4}]\n", "either source: (one) or sources:"),
        ("sources: []\n", "either source: (one) or sources:"),
        ("source: {uri: a.mp4, stream_id: 'or 3'}\n", "stream id 'or 3'"),
        ("source: {uri: a.mp4}\nrecord: {path: 'x-{cam}.mp4'}\n", "unknown placeholder {cam}"),
        ("source: {uri: a.mp4}\nresults: {dir: 'r/{id}'}\n", "unknown placeholder {id}"),
    ],
)
def test_bad_stream_settings_name_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "edge.yaml"
    path.write_text(text)
    with pytest.raises(OrstreamError) as raised:
        load_config(path)
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_feeds_reconnect_by_default_and_the_backoff_is_checked() -> None:
    from orstream.streams.sources.reconnecting import Backoff

    config = parse_config({"source": {"uri": "rtsp://cam/1"}}, "test")
    assert config.streams[0].reconnect.backoff() == Backoff()
    off = parse_config({"source": {"uri": "rtsp://cam/1", "reconnect": {"enabled": False}}}, "t")
    assert off.streams[0].reconnect.backoff() is None
    with pytest.raises(OrstreamError, match="max_s >= initial_s"):
        parse_config({"source": {"uri": "a", "reconnect": {"initial_s": 5, "max_s": 2}}}, "t")


def test_recording_rotation_is_checked() -> None:
    config = parse_config(
        {
            "source": {"uri": "a.mp4"},
            "record": {"path": "or.mp4", "segment_s": 600, "max_files": 3},
        },
        "test",
    )
    assert config.record is not None and config.record.rotation().max_files == 3
    with pytest.raises(OrstreamError, match="max_files"):
        parse_config(
            {"source": {"uri": "a.mp4"}, "record": {"path": "or.mp4", "max_files": 0}}, "t"
        )


@pytest.mark.parametrize(
    ("model", "segmentation", "by_masks"),
    [
        ({}, {"package": "s", "classifier": "c"}, True),
        ({}, {"package": "s"}, False),
        ({}, None, False),
        ({"instruments": "recognizer"}, {"package": "s", "classifier": "c"}, False),
        ({"instruments": "masks"}, {"package": "s", "classifier": "c"}, True),
    ],
)
def test_instruments_come_from_masks_when_a_classifier_names_them(
    model: dict, segmentation: dict | None, by_masks: bool
) -> None:
    data: dict = {"source": {"uri": "a.mp4"}, "model": {"package": "p", **model}}
    if segmentation is not None:
        data["segmentation"] = segmentation
    assert parse_config(data, "test").mask_instruments is by_masks
