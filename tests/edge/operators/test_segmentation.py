"""Live segmentation in the edge app: masks at their own rate beside the recognizer, drawn on the
video, published to the subscribers that ask for them, and never holding up the video."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from classifier_checkpoints import random_classifier_package
from segmenter_checkpoints import random_segmenter_package

from orstream.edge.app.compose import EdgeApp, SinkSpec
from orstream.edge.app.config import parse_config
from orstream.edge.models.instrument_classifier import InstrumentClassifier
from orstream.edge.models.live_masks import LiveMasks
from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.edge.operators.segmentation import SegmentationOp
from orstream.edge.service.result_hub import ResultHub
from orstream.errors import OrstreamError
from orstream.package.loading import load_package
from orstream.segmentation.mask_rle import decode_mask
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.sinks.memory import MemorySink


@pytest.fixture(scope="module")
def segmenter_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_segmenter_package(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def classifier_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return random_classifier_package(tmp_path_factory.getbasetemp())


def test_runtime_segments_live_beside_the_recognizer(
    segmenter_package: Path, classifier_package: Path, random_workflow_package: Path, tmp_path: Path
) -> None:
    hub = ResultHub()
    masks_only = hub.subscribe(kinds=["segmentation"], capacity=1000)
    plain = hub.subscribe(capacity=1000)
    config = parse_config(
        {
            "source": {"uri": "phantom://", "stream_id": "or1"},
            "model": {"package": str(random_workflow_package), "rate_hz": 2},
            # Random models: keep every mask so there is something to draw.
            "segmentation": {
                "package": str(segmenter_package),
                "classifier": str(classifier_package),
                "rate_hz": 2,
                "classes": ["suction", "sella"],
                "min_score": 0,
                "min_confidence": 0,
            },
            "record": {"path": str(tmp_path / "overlay.mp4")},
            "grpc": {"enabled": False},
        },
        "test",
    )
    source = PhantomSource(seed=4, seconds=4, width=320, height=180, fps=12.0, stream_id="or1")
    app = EdgeApp(config, hub, sources={"or1": source})
    app.run()
    hub.close()

    status = app.status()
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


def test_live_masks_name_instruments_only_with_a_classifier(
    segmenter_package: Path, classifier_package: Path
) -> None:
    model = SegmenterModel.load(load_package(segmenter_package))
    classifier = InstrumentClassifier.load(load_package(classifier_package))
    source = PhantomSource(seed=4, seconds=2, width=320, height=180, fps=2.0)
    frame = next(f for i, f in enumerate(source.frames()) if i == 2).image
    embedding = model.embed(frame)
    # A random segmenter and classifier: keep everything so there is something to check.
    alone = LiveMasks(model, min_score=0)(frame, embedding)
    assert [mask.name for mask in alone] in ([], ["sella"])  # no classifier: no instrument
    live = LiveMasks(model, classifier, min_score=0, min_confidence=0)
    assert live.found(frame, embedding)  # clicks on the grid always find something
    masks = live(frame, embedding, "or1")
    codes = [mask.code for mask in masks]
    assert len(codes) == len(set(codes))  # one mask per class
    pixels = np.stack([decode_mask(mask.mask) for mask in masks]) if masks else np.zeros((1, 1))
    assert pixels.sum(axis=0).max() <= 1  # no pixel in two masks
    with pytest.raises(OrstreamError, match="scalpel"):
        LiveMasks(model, classifier, classes=["suction", "scalpel"])


def test_a_slow_segmenter_never_holds_up_the_video(segmenter_package: Path) -> None:
    model = SegmenterModel.load(load_package(segmenter_package))
    embed_batch = model.embed_batch

    def slow_embed_batch(images: Sequence[np.ndarray]) -> list[ImageEmbedding]:
        time.sleep(0.8)
        return embed_batch(images)

    model.embed_batch = slow_embed_batch  # type: ignore[method-assign]
    config = parse_config(
        {
            "source": {"uri": "phantom://"},
            "segmentation": {"package": str(segmenter_package), "rate_hz": 6},
            "grpc": {"enabled": False},
        },
        "test",
    )
    sink = MemorySink(keep_images=False)
    source = PhantomSource(
        seed=3, seconds=3, width=320, height=180, fps=24.0, paced=True, stream_id="cam0"
    )
    app = EdgeApp(
        config,
        sources={"cam0": source},
        sinks={"cam0": [SinkSpec("memory", lambda w, h, fps: sink)]},
        segmenter=model,
    )
    assert app.segmentation is not None
    app.segmentation.live_masks = LiveMasks(model, classes=["sella"], min_score=0)
    app.run()
    status = app.status()
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
    app = EdgeApp(config, sinks={"cam0": [SinkSpec("memory", lambda w, h, fps: MemorySink())]})
    overlay = app.streams["cam0"].overlay
    assert overlay is not None
    names = [type(a).__name__ for a in overlay.overlay.annotators]
    assert names == ["MasksAnnotator", "HudAnnotator", "NoSignalMarker"]
    assert isinstance(app.segmentation, SegmentationOp)
