"""A request's clip turned into the tokens its model was trained on, and only with the
encoders it was trained on."""

from __future__ import annotations

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.package.card import VLMEncoderSettings
from orstream.package.loading import load_package
from orstream.vlm.visual.visual_input import VisualEncoders
from tests.vlm_checkpoints import FRAME_PACKAGE, INSTRUMENT_PACKAGE

CLIP = np.random.default_rng(0).integers(0, 256, (5, 144, 256, 3), dtype=np.uint8)


def _settings(**changes: object) -> VLMEncoderSettings:
    recorded = VLMEncoderSettings(
        frame_package=str(FRAME_PACKAGE),
        frame_package_sha256=load_package(FRAME_PACKAGE).card.hashes.model_onnx,
        frame_grid=(1, 2),
        instrument_package=str(INSTRUMENT_PACKAGE),
        instrument_package_sha256=load_package(INSTRUMENT_PACKAGE).card.hashes.model_onnx,
        window_s=3,
    )
    return recorded.model_copy(update=changes)


def test_a_clip_becomes_its_frames_cells_and_instrument_tokens() -> None:
    settings = _settings()
    features = VisualEncoders(settings).clip_features(CLIP)
    assert settings.tokens_per_frame == 3
    assert features.shape == (3 * 3, 128)
    assert not features[2::3, 19:].any()  # every third token is a frame's instruments
    plain = VisualEncoders(_settings(instrument_package=None, instrument_package_sha256=None))
    np.testing.assert_array_equal(
        plain.clip_features(CLIP), np.delete(features, np.s_[2::3], axis=0)
    )


def test_an_instrument_classifier_other_than_the_recorded_one_is_refused() -> None:
    encoders = VisualEncoders(_settings(instrument_package_sha256="0" * 64))
    with pytest.raises(OrstreamError, match="instrument classifier is not the one"):
        encoders.clip_features(CLIP)
