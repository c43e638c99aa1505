"""The instrument token of a frame from the shipped segmenter and classifier: the edge's
find-and-name evidence, made without the edge, on a phantom case neither model saw."""

from __future__ import annotations

import numpy as np
import pytest

from orstream.edge.models.instrument_classifier import InstrumentClassifier
from orstream.edge.models.live_masks import LiveMasks
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.edge.models.shipped import SHIPPED_CLASSIFIER, SHIPPED_PACKAGE, SHIPPED_SEGMENTER
from orstream.errors import OrstreamError
from orstream.labels import ANATOMY, NO_INSTRUMENT
from orstream.package.loading import load_package
from orstream.segmentation.instrument_finding import tip_crops
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer
from orstream.vlm.visual.frame_features import FrameFeatures
from orstream.vlm.visual.instrument_evidence import InstrumentEvidence

SEED, SECONDS = 7, 40
SIZE = (144, 256)
"""The segmenter's input size, which the evidence takes frames at."""
MIN_PIXELS = 40
"""Truth instruments smaller than this are not counted as visible."""


@pytest.fixture(scope="module")
def evidence() -> InstrumentEvidence:
    return InstrumentEvidence(load_package(SHIPPED_SEGMENTER), load_package(SHIPPED_CLASSIFIER))


@pytest.fixture(scope="module")
def case() -> list[tuple[np.ndarray, set[int]]]:
    """(frame, the instrument codes it shows) once a second."""
    height, width = SIZE
    renderer = CaseRenderer(SEED, 1, SECONDS, get_difficulty("normal"), width, height, 24.0)
    frames = []
    for index in range(0, renderer.frame_count, round(renderer.fps)):
        frame = np.zeros((height, width, 3), np.uint8)
        labels = np.zeros((height, width), np.uint8)
        renderer.render(index, frame, labels)
        codes, counts = np.unique(labels, return_counts=True)
        shown = {
            int(code)
            for code, count in zip(codes, counts, strict=True)
            if code != NO_INSTRUMENT and code not in ANATOMY and count >= MIN_PIXELS
        }
        frames.append((frame, shown))
    return frames


def test_the_token_is_what_the_edge_finds_and_names(
    evidence: InstrumentEvidence, case: list[tuple[np.ndarray, set[int]]]
) -> None:
    """Per class, the highest probability the edge's classifier gives any object its live
    masks find: the same clicks, objects and crops, without the edge."""
    model = SegmenterModel.load(load_package(SHIPPED_SEGMENTER))
    classifier = InstrumentClassifier.load(load_package(SHIPPED_CLASSIFIER))
    live = LiveMasks(model, classifier)
    for frame, _ in case[::5]:
        embedding = model.embed(frame)
        crops, _ = tip_crops(frame, live.found(frame, embedding))
        expected = np.zeros(len(classifier.codes), np.float32)
        if crops:
            expected = classifier.probabilities(crops).max(axis=0)
        np.testing.assert_allclose(evidence(frame, embedding.array), expected, atol=1e-3)


def test_the_classes_it_believes_are_the_instruments_the_frame_shows(
    evidence: InstrumentEvidence, case: list[tuple[np.ndarray, set[int]]]
) -> None:
    codes = load_package(SHIPPED_CLASSIFIER).card.labels["instruments"]
    encoder = FrameFeatures(SHIPPED_SEGMENTER, instruments=SHIPPED_CLASSIFIER)
    tokens = encoder.encode(np.stack([frame for frame, _ in case]))
    right = 0
    for token, (_, shown) in zip(tokens, case, strict=True):
        believed = {codes[i].code for i in np.flatnonzero(token[-1] >= 0.5) if i > 0}
        right += believed == shown
    assert right / len(case) >= 0.85  # 38 of these 40 seconds when written


def test_a_frame_outside_the_view_shows_nothing_and_sizes_are_checked(
    evidence: InstrumentEvidence,
) -> None:
    embedding = np.zeros((1, 128, 18, 32), np.float32)
    black = np.zeros((*SIZE, 3), np.uint8)
    assert evidence(black, embedding).tolist() == [0.0] * evidence.classes
    with pytest.raises(OrstreamError, match="frames of 256x144"):
        evidence(np.zeros((90, 160, 3), np.uint8), embedding)
    with pytest.raises(OrstreamError, match="not instrument_classification"):
        InstrumentEvidence(load_package(SHIPPED_SEGMENTER), load_package(SHIPPED_PACKAGE))


def test_frames_get_the_instrument_token_after_their_cells() -> None:
    plain = FrameFeatures(SHIPPED_SEGMENTER, grid=(2, 2))
    with_instruments = FrameFeatures(SHIPPED_SEGMENTER, grid=(2, 2), instruments=SHIPPED_CLASSIFIER)
    frames = np.random.default_rng(0).integers(0, 256, (2, 144, 256, 3), dtype=np.uint8)
    tokens = with_instruments.encode(frames)
    assert tokens.shape == (2, 5, 128) and with_instruments.tokens_per_frame == 5
    np.testing.assert_array_equal(tokens[:, :4], plain.encode(frames))
    assert not tokens[:, 4, 19:].any()  # zero-padded past the classifier's 19 classes
    assert plain.settings != with_instruments.settings  # cached tokens are not mixed up
