"""Opening sources by URI: each scheme gives the right source, parameters are checked, and every
source (GStreamer, phantom, PyAV) offers the Source protocol, close() included."""

import threading
import time
from pathlib import Path

import pytest

from orstream.errors import OrstreamError
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sources.gst_source import GstSource
from orstream.streams.sources.open_source import SCHEMES, open_source
from orstream.streams.sources.pyav_source import PyAVSource
from orstream.streams.sources.source import Source

pytestmark = pytest.mark.timeout(60)

PHANTOM = "phantom://?seed=2&video=1&seconds=1&width=64&height=48&fps=10"


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("open_source")
    write_dataset(PhantomSpec(cases=1, seconds=1, seed=5, width=64, height=48), root / "data")
    return root / "data" / "videos" / "video_01.mp4"


def test_files_open_with_gstreamer_by_path_or_uri(video: Path) -> None:
    for uri in (str(video), video.as_uri()):
        source = open_source(uri, stream_id="left", realtime=True)
        assert isinstance(source, GstSource)
        assert source.realtime and not source.live and source.stream_id == "left"
    frames = list(open_source(str(video)).frames())
    assert len(frames) == 24


def test_phantom_uri_is_a_live_paced_phantom_case() -> None:
    source = open_source(PHANTOM, stream_id="ph")
    assert isinstance(source, PhantomSource)
    assert source.live and source.paced and source.stream_id == "ph"
    assert (source.fps, source.frame_count) == (10.0, 10)
    started = time.monotonic()
    frames = list(source.frames())
    assert len(frames) + source.dropped == 10
    assert frames[0].image.shape == (48, 64, 3)
    assert time.monotonic() - started >= 0.8 * frames[-1].pts_ns / 1e9
    # The URI a phantom source reports opens the same case again.
    again = open_source(source.uri)
    assert isinstance(again, PhantomSource)
    assert (again.fps, again.frame_count, again.loop) == (10.0, 10, False)
    assert again.renderer.render(5).step == source.renderer.render(5).step


def test_test_pattern_uri_is_a_live_gstreamer_source() -> None:
    source = open_source("videotestsrc://?width=32&height=24&frames=3")
    assert isinstance(source, GstSource) and source.live
    assert [f.image.shape for f in source.frames()] == [(24, 32, 3)] * 3


def test_unknown_scheme_names_it_and_the_supported_ones() -> None:
    with pytest.raises(OrstreamError, match=r"unknown URI scheme 'srt'") as caught:
        open_source("srt://camera:9000")
    assert all(scheme in str(caught.value) for scheme in SCHEMES)


def test_bad_phantom_parameters_are_one_clear_error() -> None:
    with pytest.raises(OrstreamError, match=r"unknown parameter 'colour' \(allowed: seed"):
        open_source(PHANTOM + "&colour=red")
    with pytest.raises(OrstreamError, match="parameter 'seed' must be int, got 'two'"):
        open_source("phantom://?seed=two")
    with pytest.raises(OrstreamError, match="parameter 'fps' given twice"):
        open_source(PHANTOM + "&fps=20")
    with pytest.raises(OrstreamError, match="--width must be an even number"):
        open_source("phantom://?width=33")


def test_every_source_is_a_source_and_close_ends_it(video: Path) -> None:
    sources: list[Source] = [
        GstSource("videotestsrc://?fps=30"),
        PhantomSource(seed=2, seconds=30, width=64, height=48, fps=10),
        PyAVSource(video, realtime=True),
    ]
    for source in sources:
        assert isinstance(source, Source)
        assert isinstance(source.uri, str) and isinstance(source.live, bool)
        threading.Timer(0.3, source.close).start()
        started = time.monotonic()
        frames = list(source.frames())
        assert frames, source.uri
        assert time.monotonic() - started < 3, source.uri
