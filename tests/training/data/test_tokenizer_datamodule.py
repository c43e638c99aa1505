"""Tokenizer frames from a phantom dataset: the right cases' frames, uncropped aspect, 256x256
in [-1, 1], narrations embedded only for stage 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orstream.errors import OrstreamError
from orstream.training.data.frame_cache import load_frames
from orstream.training.data.tokenizer_datamodule import (
    TokenizerDataModule,
    TokenizerFrames,
    covering_size,
)
from orstream.training.data.videotext_data import clip_texts
from orstream.training.models.text_encoder import TextEncoder


def make_phantom(root: Path) -> Path:
    """Three 20-s cases of 320x256 frames at 2 fps (two narrated clips each)."""
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    write_dataset(PhantomSpec(3, 20, seed=71, width=320, height=256, fps=2.0), root)
    return root


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("tokenizer") / "phantom")


def expected_frames(root: Path, video: int, times: list[float]) -> np.ndarray:
    """The video's frames at ``times`` (2 fps), centre 256 of the 320 columns."""
    indices = np.array([round(t * 2) for t in times])
    return load_frames(root / "videos" / f"video_{video:02d}.mp4", indices, (256, 320), None)[
        :, :, 32:288
    ]


def as_pixels(image: torch.Tensor) -> np.ndarray:
    return ((image.permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)


def test_serves_256x256_frames_of_the_training_and_held_out_cases(phantom: Path) -> None:
    data = TokenizerDataModule(
        phantom, [1, 2], [3], frames_per_clip=2, val_frames_per_clip=1, batch_size=4
    )
    data.setup("fit")
    images, texts, has_text, _ = next(iter(data.train_dataloader()))
    assert images.shape == (4, 3, 256, 256) and images.dtype == torch.float32
    assert float(images.min()) >= -1.0 and float(images.max()) <= 1.0
    assert not bool(has_text.any()) and not bool(texts.any())  # stage 1: no text
    assert data.describe()["train_frames"] == 8  # 2 cases x 2 clips x 2 frames
    assert data.describe()["val_frames"] == 2
    assert data._train is not None and data._val is not None
    served = [as_pixels(data._val[index][0]) for index in range(len(data._val))]
    # Held-out case 3, one frame in the middle of each 10-s clip.
    np.testing.assert_array_equal(np.stack(served), expected_frames(phantom, 3, [5, 15]))
    trained = data._train.frames
    np.testing.assert_array_equal(trained[:4], expected_frames(phantom, 1, [2.5, 7.5, 12.5, 17.5]))
    np.testing.assert_array_equal(trained[4:], expected_frames(phantom, 2, [2.5, 7.5, 12.5, 17.5]))


def test_stage_2_frames_carry_their_narrations_minilm_embedding(phantom: Path) -> None:
    data = TokenizerDataModule(
        phantom, [1], [2], frames_per_clip=1, val_frames_per_clip=1, with_text=True
    )
    data.setup("fit")
    assert data._val is not None
    narrations = [s.text for s in clip_texts(phantom, [2], 1) if s.level == "clip"]
    assert len(narrations) == 2 and narrations[0] != narrations[1]
    expected = TextEncoder.load().encode(narrations)
    torch.testing.assert_close(data._val.texts, expected)
    assert bool(data._val.has_text.all())


def test_frames_are_scaled_to_cover_the_input_then_centre_cropped() -> None:
    assert covering_size((256, 320), (256, 256)) == (256, 320)
    assert covering_size((720, 1280), (256, 256)) == (256, 455)
    assert covering_size((480, 360), (256, 256)) == (341, 256)


def test_training_frames_are_flipped_left_right_at_random() -> None:
    frames = np.arange(2 * 4 * 6 * 3, dtype=np.uint8).reshape(2, 4, 6, 3)
    dataset = TokenizerFrames(frames, torch.zeros(2, 384), torch.zeros(2, dtype=torch.bool), True)
    plain = torch.from_numpy(frames[1]).permute(2, 0, 1).float() / 127.5 - 1
    torch.manual_seed(0)
    seen = {bool(torch.equal(dataset[1][0], plain)) for _ in range(20)}
    assert seen == {True, False}
    for _ in range(5):
        image = dataset[1][0]
        assert torch.equal(image, plain) or torch.equal(image, plain.flip(-1))


def test_shared_cases_and_a_missing_root_are_errors(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match=r"share cases \[2\]"):
        TokenizerDataModule(tmp_path, [1, 2], [2, 3])
    with pytest.raises(OrstreamError, match="dataset root not found"):
        TokenizerDataModule(tmp_path / "none").setup("fit")
