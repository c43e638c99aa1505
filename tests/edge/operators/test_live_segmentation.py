"""Live segmentation in the runtime: masks at their own rate beside the recognizer, drawn on the
video, published to the subscribers that ask for them, and never holding up the video."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from segmenter_checkpoints import random_segmenter_package

from orstream.edge.app.compose import build_runtime
from orstream.edge.app.config import parse_config
from orstream.edge.app.runtime import EdgeRuntime, SinkSpec
from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.edge.operators.live_segmenter import LiveSegmenter
from orstream.edge.service.result_hub import ResultHub
from orstream.errors import OrstreamError
from orstream.mask_rle import decode_mask
from orstream.package.loading import load_package
from orstream.results import FrameResult, InstrumentResult
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.sinks.memory import MemorySink


@pytest.fixture(scope="module")
def segmenter_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_segmenter_package(tmp_path_factory.getbasetemp())


def test_runtime_segments_live_beside_the_recognizer(
    segmenter_package: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    hub = ResultHub()
    masks_only = hub.subscribe(kinds=["segmentation"], capacity=1000)
    plain = hub.subscribe(capacity=1000)
    config = parse_config(
        {
            "source": {"uri": "phantom://", "stream_id": "or1"},
            "model": {"package": str(random_workflow_package), "rate_hz": 2},
            # A random segmenter: keep every mask so there is something to draw.
            "segmentation": {
                "package": str(segmenter_package),
                "rate_hz": 2,
                "classes": ["suction", "sella"],
                "min_score": 0,
            },
            "record": {"path": str(tmp_path / "overlay.mp4")},
            "grpc": {"enabled": False},
        },
        "test",
    )
    source = PhantomSource(seed=4, seconds=4, width=320, height=180, fps=12.0)
    runtime = build_runtime(config, hub, source=source)
    runtime.run()
    hub.close()

    status = runtime.status()
    assert status.video_frames_in == status.video_frames_out == source.frame_count
    models = {m.name: m for m in status.models}
    assert len(models) == 2
    segmenter = status.models[1]
    assert segmenter.state == "serving" and segmenter.rate_hz == 2
    stages = {stage.name: stage for stage in status.stages}
    assert stages["segmentation"].processed == segmenter.inferred >= 1
    received = []
    while (item := masks_only.get(timeout_s=0)) is not None:
        received.append(item)
    assert len(received) == segmenter.inferred
    for result in received:
        assert result.step is None and result.segmentation is not None
        for mask in result.segmentation.masks:
            assert mask.name in ("suction", "sella") and mask.code in (16, 101)
            assert decode_mask(mask.mask).shape == (180, 320)
    # The plain subscriber gets the recognizer's results, never the masks.
    plain_results = []
    while (item := plain.get(timeout_s=0)) is not None:
        plain_results.append(item)
    assert plain_results and all(r.segmentation is None for r in plain_results)
    assert all(r.step is not None for r in plain_results)


def test_automatic_classes_follow_the_recognizer(segmenter_package: Path) -> None:
    model = SegmenterModel.load(load_package(segmenter_package))
    seen: list[FrameResult | None] = [None]
    live = LiveSegmenter(FramePrompter(model), recognized=lambda: seen[0])
    assert live.targets() == ("sella",)  # nothing recognized yet: anatomy only
    seen[0] = FrameResult(
        "or1",
        1,
        0,
        0,
        0,
        (),
        instruments=InstrumentResult((16, 2), ((16, 0.9), (2, 0.6))),
    )
    # cottle (2) is not a class of this package; suction is.
    assert live.targets() == ("suction", "sella")
    assert LiveSegmenter(FramePrompter(model)).targets() == tuple(model.classes)
    with pytest.raises(OrstreamError, match="scalpel"):
        LiveSegmenter(FramePrompter(model), classes=["suction", "scalpel"])


def test_a_slow_segmenter_never_holds_up_the_video(segmenter_package: Path) -> None:
    model = SegmenterModel.load(load_package(segmenter_package))
    embed = model.embed

    def slow_embed(image: np.ndarray) -> ImageEmbedding:
        time.sleep(0.8)
        return embed(image)

    model.embed = slow_embed
    live = LiveSegmenter(FramePrompter(model), rate_hz=6, classes=["sella"], min_score=0)
    sink = MemorySink(keep_images=False)
    source = PhantomSource(seed=3, seconds=3, width=320, height=180, fps=24.0, paced=True)
    runtime = EdgeRuntime(
        source, segmenter=live, sinks=[SinkSpec("memory", lambda w, h, fps: sink)]
    )
    runtime.run()
    status = runtime.status()
    assert status.video_frames_out == status.video_frames_in == source.frame_count
    assert source.dropped == 0
    stages = {stage.name: stage for stage in status.stages}
    assert stages["segmentation"].dropped > 0  # it only ever segmented the newest sample
    assert 1 <= stages["segmentation"].processed <= 5


def test_a_masks_only_runtime_draws_no_workflow_panels(segmenter_package: Path) -> None:
    config = parse_config(
        {
            "source": {"uri": "phantom://?seconds=2&width=320&height=180"},
            "segmentation": {"package": str(segmenter_package)},
            "grpc": {"enabled": False},
        },
        "test",
    )
    runtime = build_runtime(config, ResultHub())
    assert runtime.overlay is not None
    names = [type(a).__name__ for a in runtime.overlay.annotators]
    assert names == ["MasksAnnotator", "HudAnnotator", "NoSignalMarker"]
    runtime.source.close()
