"""The frame counter that glass-to-glass latency is measured with: written into a phantom frame,
it reads back from the overlay's output, from a JPEG and from VP8 video at the bitrate aiortc
starts a WebRTC viewer at; a frame without it, or blurred past reading, reads as nothing rather
than as a wrong counter."""

from __future__ import annotations

import fractions
import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from orstream.edge.overlay import Overlay, OverlayContext
from orstream.edge.overlay.layout import layout_for
from orstream.edge.web.frame_stamp import BITS, StampBox, read_stamp, stamp_box, write_stamp
from orstream.edge.web.stamped_source import StampedSource
from orstream.results import FrameResult, InstrumentResult, StepResult
from orstream.streams.phantom.source import PhantomSource

COUNTERS = (0, 1, 0x5A5A, 0xA5A5, 0xFFFF, 12345)
AIORTC_START_BPS = 500_000
"""aiortc's VP8 encoder's bitrate before the browser's feedback raises it."""


@pytest.fixture(scope="module")
def phantom() -> np.ndarray:
    source = PhantomSource(seed=2, seconds=4, width=1280, height=720, paced=False)
    return source.renderer.render(30).image


def stamped(image: np.ndarray, counter: int) -> tuple[np.ndarray, StampBox]:
    copy = image.copy()
    box = stamp_box(*copy.shape[:2])
    write_stamp(copy, counter, box)
    return copy, box


@pytest.mark.parametrize("size", [(180, 320), (360, 640), (720, 1280), (1080, 1920)])
def test_the_code_keeps_out_of_the_overlays_panels(size: tuple[int, int]) -> None:
    height, width = size
    box = stamp_box(height, width)
    layout = layout_for(height, width)
    for panel in layout.panels:
        apart = (
            box.x + box.width <= panel.x0
            or panel.x1 <= box.x
            or box.y + box.height <= panel.y0
            or panel.y1 <= box.y
        )
        assert apart, (box, panel)
    assert box.y + box.height <= layout.hud_bottom and box.y >= layout.stale_top


def test_the_counter_survives_the_overlay(phantom: np.ndarray) -> None:
    image, box = stamped(phantom, 0xBEEF)
    result = FrameResult(
        "cam0",
        30,
        0,
        0,
        80_000_000,
        ("m@1",),
        StepResult(5, 0.9),
        InstrumentResult((1, 2), ((1, 0.9), (2, 0.8))),
    )
    context = OverlayContext(result=result, stale=True, fps=24.0, latency_ms=90.0)
    assert read_stamp(Overlay.default().draw(image, context), box) == 0xBEEF


@pytest.mark.parametrize("quality", [30, 75])
def test_the_counter_reads_back_from_a_jpeg(phantom: np.ndarray, quality: int) -> None:
    for counter in COUNTERS:
        image, box = stamped(phantom, counter)
        ok, jpeg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        assert read_stamp(cv2.imdecode(jpeg, cv2.IMREAD_COLOR), box) == counter


def test_the_counter_reads_back_from_vp8_video(phantom: np.ndarray) -> None:
    """Every frame of a VP8 stream at aiortc's starting bitrate: the encoder spends its bits
    on the changing tissue and on the changing code alike."""
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 1280, 720, "yuv420p"
    encoder.bit_rate = AIORTC_START_BPS
    encoder.options = {"deadline": "realtime", "cpu-used": "4"}  # as a live encoder runs
    encoder.time_base = fractions.Fraction(1, 24)
    decoder = av.CodecContext.create("vp8", "r")
    counters = list(range(1000, 1024))
    read: list[int | None] = []
    box = stamp_box(720, 1280)
    for step, counter in enumerate(counters):
        image, _ = stamped(np.roll(phantom, 7 * step, axis=1), counter)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = step
        for packet in encoder.encode(frame):
            read += [read_stamp(f.to_ndarray(format="rgb24"), box) for f in decoder.decode(packet)]
    for packet in encoder.encode(None):
        read += [read_stamp(f.to_ndarray(format="rgb24"), box) for f in decoder.decode(packet)]
    assert read == counters


def test_an_unstamped_or_smeared_frame_reads_as_nothing(phantom: np.ndarray) -> None:
    box = stamp_box(720, 1280)
    assert read_stamp(phantom, box) is None
    image, _ = stamped(phantom, 0x1234)
    assert read_stamp(cv2.GaussianBlur(image, (0, 0), box.cell), box) is None
    image[box.y : box.y + box.height, box.x : box.x + box.width] = 128
    assert read_stamp(image, box) is None


def test_a_stamped_source_logs_each_counters_capture_time(tmp_path: Path) -> None:
    log = tmp_path / "stamps.jsonl"
    phantom = PhantomSource(seed=1, seconds=1, width=640, height=360, fps=12, paced=False)
    source = StampedSource(phantom, log)
    frames = list(source.frames())
    assert source.dropped == phantom.dropped  # what the source op asks, from the source
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["count"] for r in records] == list(range(len(frames))) and len(frames) == 12
    box = stamp_box(360, 640)
    for frame, record in zip(frames, records, strict=True):
        assert read_stamp(frame.image, box) == record["counter"] == record["count"] % (1 << BITS)
        assert record["stream"] == frame.stream_id
    wall = [r["capture_wall_ns"] for r in records]
    assert wall == sorted(wall)
