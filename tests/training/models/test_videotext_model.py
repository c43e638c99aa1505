"""The OphCLIP-style video-text model: a causal clip embedding, CLIP-style losses (with
retrieved positives for silent clips), and a toy pairing it can learn."""

from __future__ import annotations

import math

import pytest
import torch
from project_paths import PROJECT_ROOT

from orstream.training.models.videotext import (
    multi_positive_infonce,
    retrieved_positives,
    symmetric_infonce,
)
from orstream.training.registry import create_model

SIZE = (32, 48)
SEGMENTER = str(PROJECT_ROOT / "edge" / "packages" / "imis_segmenter")


def small(**kwargs: object) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("ophclip_small", input_size=SIZE, width=32, max_frames=4, **kwargs)


def test_a_causal_clip_state_never_sees_later_frames() -> None:
    model = small().eval()
    clip = torch.randn(2, 4, 3, *SIZE)
    changed = clip.clone()
    changed[:, 3] = torch.randn(2, 3, *SIZE)  # only the last frame differs
    with torch.no_grad():
        states = model.temporal_states(model.frame_features(clip))
        again = model.temporal_states(model.frame_features(changed))
        embedding = model.embed_video(clip)
    torch.testing.assert_close(states[:, :3], again[:, :3])
    assert not torch.allclose(states[:, 3], again[:, 3])
    assert embedding.shape == (2, 32)
    torch.testing.assert_close(embedding.norm(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="at most 4 frames"):
        model.frame_features(torch.randn(1, 5, 3, *SIZE))


def test_symmetric_infonce_is_small_for_clear_pairs_and_log_b_for_none() -> None:
    clear = 50 * torch.eye(4)
    assert symmetric_infonce(clear).item() < 1e-6
    assert symmetric_infonce(torch.zeros(4, 4)).item() == pytest.approx(math.log(4))


def test_every_retrieved_narration_counts_as_a_positive() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]]))
    one = torch.tensor([[True, False, False], [False, False, True]])
    two = torch.tensor([[True, True, False], [False, False, False]])  # row 2 has none
    assert multi_positive_infonce(logits, one).item() == pytest.approx(
        -(math.log(0.5) + math.log(0.8)) / 2
    )
    assert multi_positive_infonce(logits, two).item() == pytest.approx(-math.log(0.8))
    video = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bank = torch.tensor([[0.0, 1.0], [0.9, 0.1], [0.6, 0.8], [1.0, 0.0]])
    assert retrieved_positives(video, bank, 2).tolist() == [
        [False, True, False, True],
        [True, False, True, False],
    ]


def test_it_learns_to_pair_toy_clips_with_their_sentences() -> None:
    model = small(layers=1)
    colours = torch.eye(3).repeat(2, 1)[:4] * 2 - 1  # four clips of four colours
    clips = colours[:, None, :, None, None].expand(4, 4, 3, *SIZE).contiguous()
    clips = clips + 0.1 * torch.randn_like(clips)
    clips[3] = -clips[3].abs()  # a dark one
    sentences = torch.randn(4, 384, generator=torch.Generator().manual_seed(1))
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss = symmetric_infonce(
            model.logits(model.embed_video(clips), model.embed_text(sentences))
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    model.eval()
    with torch.no_grad():
        logits = model.logits(model.embed_video(clips), model.embed_text(sentences))
    assert logits.argmax(dim=1).tolist() == [0, 1, 2, 3]
    assert loss.item() < 0.2


def test_streaming_one_frame_at_a_time_gives_the_clip_embedding_of_the_last_frames() -> None:
    model = small().eval()
    frames = torch.randn(2, 7, 3, *SIZE)
    window, filled = model.initial_state(2)
    assert window.shape == (2, 3, 32) and filled.shape == (2, 3)
    with torch.no_grad():
        for t in range(7):
            # Row 1 restarts at frame 3, as a stream after a discontinuity does.
            if t == 3:
                window[1], filled[1] = 0.0, 0.0
            clip, window, filled = model.streaming_step(frames[:, t], window, filled)
            for row, start in ((0, 0), (1, 3 if t >= 3 else 0)):
                first = max(start, t - 3)
                expected = model.embed_video(frames[row : row + 1, first : t + 1])
                torch.testing.assert_close(clip[row : row + 1], expected, atol=1e-5, rtol=0)


def test_a_frame_package_encodes_frames_as_the_segmenter_does_and_stays_frozen() -> None:
    import numpy as np

    from orstream.package.loading import load_package
    from orstream.training.models.workflow import IMAGENET_MEAN, IMAGENET_STD

    torch.manual_seed(0)
    model = create_model(
        "ophclip_small", input_size=(144, 256), width=32, max_frames=4, frame_package=SEGMENTER
    )
    package = load_package(SEGMENTER)
    reference = package.reference("model")
    assert reference is not None
    # The reference input is in the package's normalisation (0.5, 0.5): turn it into the
    # video-text model's ImageNet normalisation; the encoder must undo that exactly.
    pixels = torch.tensor(reference.inputs["image"]) * 0.5 + 0.5
    frames = (pixels - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(
        IMAGENET_STD
    ).view(1, 3, 1, 1)
    expected = np.asarray(reference.outputs[package.card.outputs[0].name]).mean(axis=(2, 3))
    model.train()
    with torch.no_grad():
        pooled = model.encoder(frames)
    np.testing.assert_allclose(pooled.numpy(), expected, atol=1e-3)
    assert not model.encoder.training
    assert not any(p.requires_grad for p in model.encoder.parameters())
    assert any(p.requires_grad for p in model.frame_projection.parameters())
    with pytest.raises(ValueError, match=r"must be the frame package's \[144, 256\]"):
        create_model("ophclip_small", input_size=SIZE, frame_package=SEGMENTER)
