"""The MedITok-style tokenizer: token shapes, the cosine lookup in each sub-codebook, the VQ loss
by hand, the straight-through gradient, idle codes restarted, and a batch it learns to rebuild."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from orstream.training.models.tokenizer import MultiCodebookQuantizer, VisualTokenizer
from orstream.training.registry import create_model

SIZE = (32, 48)


def small(**kwargs: object) -> VisualTokenizer:
    torch.manual_seed(0)
    settings: dict[str, object] = {
        "input_size": SIZE,
        "channels": (8, 16),
        "encoder_blocks": (0, 1),
        "decoder_blocks": (0, 1),
        "groups": 2,
        "codes": 16,
        "code_dim": 4,
        "head_width": 16,
        "visual_dim": 12,
        **kwargs,
    }
    model = create_model("meditok_small", **settings)
    assert isinstance(model, VisualTokenizer)
    return model


def test_images_become_in_range_tokens_of_every_group_and_back() -> None:
    model = small().eval()
    images = torch.rand(3, 3, *SIZE) * 2 - 1
    with torch.no_grad():
        indices = model.encode(images)
        decoded = model.decode(indices)
        out = model(images)
    assert model.grid == (8, 12)
    assert indices.shape == (3, 2, 8, 12) and indices.dtype == torch.int64
    assert int(indices.min()) >= 0 and int(indices.max()) < 16
    assert decoded.shape == (3, 3, *SIZE)
    assert torch.equal(out.indices, indices)
    torch.testing.assert_close(out.reconstruction, decoded)
    assert out.quantized.shape == (3, 8, 8, 12)
    # Each group's part of the quantized latent is its chosen unit-length code.
    parts = out.quantized.view(3, 2, 4, 8, 12)
    torch.testing.assert_close(parts.norm(dim=2), torch.ones(3, 2, 8, 12))
    codes = model.quantizer.unit_codes()
    torch.testing.assert_close(parts[1, 1, :, 5, 7], codes[1, indices[1, 1, 5, 7]])
    assert model.visual_embedding(out.quantized).shape == (3, 12)
    assert model.text_embedding(out.quantized).shape == (3, 384)
    with pytest.raises(ValueError, match="multiples of 4"):
        small(input_size=(30, 48))


def test_the_lookup_is_by_cosine_not_by_distance() -> None:
    quantizer = MultiCodebookQuantizer(groups=1, codes=2, code_dim=2)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[[10.0, 0.0], [0.1, 0.1]]]))
    latent = torch.tensor([3.0, 0.3]).view(1, 2, 1, 1)
    # Nearer to [0.1, 0.1] in distance (2.9 against 7.0), but at 6 degrees to [10, 0].
    assert quantizer.nearest(quantizer.split(latent)).item() == 0


def test_each_group_picks_the_code_of_largest_cosine_in_its_own_codebook() -> None:
    torch.manual_seed(1)
    quantizer = MultiCodebookQuantizer(groups=3, codes=32, code_dim=4)
    latent = torch.randn(2, 12, 5, 6)
    indices = quantizer.nearest(quantizer.split(latent))
    for group in range(3):
        vectors = F.normalize(latent[:, 4 * group : 4 * group + 4], dim=1)
        cosines = torch.einsum("bdhw,kd->bkhw", vectors, quantizer.unit_codes()[group])
        assert torch.equal(indices[:, group], cosines.argmax(dim=1))


def test_vq_loss_by_hand_trains_the_codebook_with_weight_one_and_the_latent_with_beta() -> None:
    quantizer = MultiCodebookQuantizer(groups=1, codes=2, code_dim=2, beta=0.25)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0]]]))
    latent = torch.tensor([3.0, 1.0]).view(1, 2, 1, 1).requires_grad_(True)
    quantized, indices, loss = quantizer(latent)
    z = torch.tensor([3.0, 1.0]) / math.sqrt(10)
    squared = ((1 - z[0]) ** 2 + z[1] ** 2) / 2  # mean over the two dims
    assert indices.item() == 0
    assert loss.item() == pytest.approx(1.25 * squared.item())
    torch.testing.assert_close(quantized.flatten(), torch.tensor([1.0, 0.0]))
    loss.backward()
    assert quantizer.codebook.grad is not None and latent.grad is not None
    # d|q - z|^2/2 / dq = q - z, projected by the code's normalisation (unit length here).
    torch.testing.assert_close(quantizer.codebook.grad[0, 0], torch.tensor([0.0, -z[1].item()]))
    # The latent gets only the commitment term: 0.25 (z - q), through its normalisation.
    radial = torch.eye(2) - torch.outer(z, z)
    expected = radial @ (0.25 * (z - torch.tensor([1.0, 0.0]))) / math.sqrt(10)
    torch.testing.assert_close(latent.grad.flatten(), expected)


def test_the_reconstruction_gradient_reaches_the_encoder_straight_through() -> None:
    model = small(restart_after=0)
    images = torch.rand(2, 3, *SIZE) * 2 - 1
    out = model(images)
    (out.reconstruction - images).pow(2).mean().backward()
    first = model.encoder[0]
    assert isinstance(first, torch.nn.Conv2d) and first.weight.grad is not None
    assert float(first.weight.grad.abs().sum()) > 0
    # The quantized latent forwards the codes themselves.
    codes = model.quantizer.embed(out.indices)
    torch.testing.assert_close(out.quantized.detach(), codes)


def test_codes_idle_for_restart_after_steps_are_reinitialised_from_the_batch() -> None:
    torch.manual_seed(2)
    quantizer = MultiCodebookQuantizer(groups=1, codes=4, code_dim=2, restart_after=2)
    with torch.no_grad():
        quantizer.codebook.copy_(torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0, -1]]]))
    # Every latent lies near [1, 0.1]: only code 0 is ever chosen.
    latent = torch.tensor([1.0, 0.1]).view(1, 2, 1, 1).expand(1, 2, 2, 2).contiguous()
    latent = latent + 0.01 * torch.randn_like(latent)
    before = quantizer.codebook.detach().clone()
    quantizer.train()
    quantizer(latent)
    assert torch.equal(quantizer.codebook.detach(), before)  # idle for one step only
    quantizer(latent)
    after = quantizer.codebook.detach()[0]
    assert torch.equal(after[0], before[0, 0])  # the used code is kept
    samples = F.normalize(latent, dim=1).permute(0, 2, 3, 1).reshape(-1, 2)
    for row in (1, 2, 3):
        assert (after[row] - samples).abs().sum(dim=1).min() < 1e-6  # now a batch latent
    assert int(quantizer.idle.max()) == 0
    quantizer.eval()
    quantizer(-latent)  # evaluation never restarts codes
    assert int(quantizer.idle.max()) == 0


def test_a_few_steps_learn_to_rebuild_a_small_batch() -> None:
    model = small(restart_after=0)
    grid = torch.linspace(-1, 1, SIZE[1])
    images = torch.stack(
        [torch.stack([grid * s, grid.flip(0) * s, grid.abs() - 0.5]) for s in (0.3, 0.8)]
    )[:, :, None, :].expand(2, 3, *SIZE)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    def loss() -> torch.Tensor:
        out = model(images)
        return (out.reconstruction - images).abs().mean() + out.vq_loss

    first = loss().item()
    for _ in range(40):
        step = loss()
        optimiser.zero_grad()
        step.backward()
        optimiser.step()
    assert loss().item() < 0.5 * first
