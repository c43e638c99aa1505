"""The slide models: shapes, attention over valid tiles only, and a toy MIL problem learnt."""

import pytest
import torch

from orstream.training.models.slide import SlideEncoder
from orstream.training.registry import create_model, list_models


def test_both_models_are_registered_and_the_patch_encoder_gives_features_and_classes() -> None:
    assert {"slide_patch_encoder", "slide_mil_encoder"} <= set(list_models())
    encoder = create_model("slide_patch_encoder", feature_dim=32, tile=64).eval()
    features, classes, patterns = encoder(torch.rand(2, 3, 64, 64))
    assert features.shape == (2, 32)
    assert classes.shape == (2, 5)  # background, stroma, tumour, necrosis, fat
    assert patterns.shape == (2, 2)  # glandular, solid


def test_a_strided_stem_sees_each_pixel_once_at_stride_four_and_bad_stems_are_refused() -> None:
    encoder = create_model("slide_patch_encoder", feature_dim=32, tile=64, stem=(4, 4)).eval()
    stem = encoder.backbone.conv_stem
    assert (stem.kernel_size, stem.stride, stem.padding) == ((4, 4), (4, 4), (0, 0))
    # the stem's output grid is a quarter of the tile's side, where timm's own is half
    assert stem(torch.rand(1, 3, 64, 64)).shape[-2:] == (16, 16)
    assert encoder(torch.rand(2, 3, 64, 64))[0].shape == (2, 32)
    overlapping = create_model("slide_patch_encoder", tile=64, stem=(8, 4)).backbone.conv_stem
    assert overlapping.padding == (2, 2)
    with pytest.raises(ValueError, match="stride <= kernel"):
        create_model("slide_patch_encoder", tile=64, stem=(2, 4))
    with pytest.raises(ValueError, match="conv_stem"):
        create_model("slide_patch_encoder", backbone="resnet10t", tile=64, stem=(4, 4))


def test_attention_sums_to_one_over_valid_tiles_and_padding_changes_nothing() -> None:
    torch.manual_seed(0)
    model = create_model("slide_mil_encoder", feature_dim=16, hidden=8).eval()
    features = torch.randn(2, 10, 16)
    valid = torch.ones(2, 10, dtype=torch.bool)
    valid[1, 6:] = False
    out = model(features, valid)
    assert out["subtype"].shape == (2, 3)
    assert out["fraction"].shape == (2,)
    assert out["tile_logits"].shape == out["attention"].shape == (2, 10)
    assert torch.allclose(out["attention"].sum(1), torch.ones(2))
    assert (out["attention"][1, 6:] == 0).all()
    alone = model(features[1:, :6], valid[1:, :6])
    for key in ("subtype", "fraction"):
        assert torch.allclose(alone[key][0], out[key][1], atol=1e-6)
    assert torch.allclose(alone["attention"][0], out["attention"][1, :6], atol=1e-6)
    assert ((out["fraction"] >= 0) & (out["fraction"] <= 1)).all()


def _bags(count: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Bags of 20 noise tiles; a positive bag holds 2 tiles shifted along one direction."""
    features = torch.randn(count, 20, 8, generator=generator)
    labels = torch.arange(count) % 2
    features[labels == 1, :2, 0] += 4.0
    return features, labels


def test_learns_a_toy_mil_problem_from_bag_labels_alone_and_attends_to_the_key_tiles() -> None:
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    model = SlideEncoder(feature_dim=8, hidden=16, subtypes=2, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    features, labels = _bags(256, generator)
    valid = torch.ones(features.shape[:2], dtype=torch.bool)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(features, valid)["subtype"], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    test, truth = _bags(256, generator)
    out = model.eval()(test, valid)
    assert (out["subtype"].argmax(1) == truth).float().mean() >= 0.9
    key_share = out["attention"][truth == 1, :2].sum(1).mean()
    assert key_share > 0.5  # 2 of 20 tiles would hold 0.1 under uniform attention
