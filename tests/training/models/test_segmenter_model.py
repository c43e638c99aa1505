"""The IMIS-style interactive segmenter: prompt shapes, prompt switches, loss and a short fit."""

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from orstream.training.data.click_simulation import clicks_to_prompt, next_click
from orstream.training.models import InteractiveSegmenter
from orstream.training.modules.segmenter_loss import segmenter_loss
from orstream.training.registry import create_model

SIZE = (64, 96)
TINY = {
    "input_size": SIZE,
    "embed_dim": 32,
    "num_heads": 2,
    "mlp_dim": 64,
    "backbone_args": {"depth": 2, "embed_dim": 48, "num_heads": 2},
}


@pytest.fixture(scope="module")
def model() -> InteractiveSegmenter:
    torch.manual_seed(0)
    built = create_model("imis_segmenter", **TINY)
    assert isinstance(built, InteractiveSegmenter)
    return built.eval()


@pytest.fixture(scope="module")
def embeddings(model: InteractiveSegmenter) -> torch.Tensor:
    with torch.no_grad():
        return model.encode_image(torch.randn(2, 3, *SIZE))


def _points() -> tuple[torch.Tensor, torch.Tensor]:
    points = torch.tensor([[[10.0, 20.0], [50.0, 30.0], [0.0, 0.0]]] * 2)
    labels = torch.tensor([[1, 0, -1], [1, -1, -1]])
    return points, labels


def test_image_embedding_is_at_one_sixteenth_resolution(embeddings: torch.Tensor) -> None:
    assert embeddings.shape == (2, 32, SIZE[0] // 16, SIZE[1] // 16)


@pytest.mark.parametrize("prompt", ["points", "no_points", "box", "mask", "text", "all"])
def test_each_prompt_type_gives_three_masks_and_scores(
    model: InteractiveSegmenter, embeddings: torch.Tensor, prompt: str
) -> None:
    points, labels = _points()
    if prompt != "points" and prompt != "all":
        points, labels = torch.zeros(2, 0, 2), torch.zeros(2, 0, dtype=torch.long)
    kwargs = {}
    if prompt in ("box", "all"):
        kwargs["boxes"] = torch.tensor([[4.0, 8.0, 40.0, 50.0], [10.0, 10.0, 90.0, 60.0]])
    if prompt in ("mask", "all"):
        kwargs["mask_prompt"] = torch.randn(2, 1, *model.mask_size)
    if prompt in ("text", "all"):
        kwargs["text_embedding"] = torch.randn(2, 384)
    with torch.no_grad():
        masks, iou = model.decode(embeddings, points, labels, **kwargs)
    assert model.mask_size == (SIZE[0] // 4, SIZE[1] // 4)
    assert masks.shape == (2, 3, *model.mask_size)
    assert iou.shape == (2, 3)
    assert torch.isfinite(masks).all() and torch.isfinite(iou).all()


def test_a_switched_off_prompt_is_the_same_as_an_absent_one(
    model: InteractiveSegmenter, embeddings: torch.Tensor
) -> None:
    # The exported decoder always receives every prompt; its 0/1 flags must make an unused
    # box, mask or text exactly equivalent to leaving it out.
    points, labels = _points()
    off = torch.zeros(2)
    with torch.no_grad():
        absent, absent_iou = model.decode(embeddings, points, labels)
        flagged, flagged_iou = model.decode(
            embeddings,
            points,
            labels,
            boxes=torch.tensor([[4.0, 8.0, 40.0, 50.0]] * 2),
            mask_prompt=torch.randn(2, 1, *model.mask_size),
            text_embedding=torch.randn(2, 384),
            has_box=off,
            has_mask=off,
            has_text=off,
        )
        used, _ = model.decode(
            embeddings, points, labels, text_embedding=torch.randn(2, 384), has_text=torch.ones(2)
        )
    torch.testing.assert_close(flagged, absent)
    torch.testing.assert_close(flagged_iou, absent_iou)
    assert not torch.allclose(used, absent)


def test_padded_point_slots_are_ignored_wherever_they_lie(
    model: InteractiveSegmenter, embeddings: torch.Tensor
) -> None:
    points, labels = _points()
    moved = points.clone()
    moved[:, 2] = torch.tensor([80.0, 60.0])
    with torch.no_grad():
        reference, _ = model.decode(embeddings, points, labels)
        padded_moved, _ = model.decode(embeddings, moved, labels)
        clicked, _ = model.decode(embeddings, moved, torch.tensor([[1, 0, 1], [1, -1, 1]]))
    torch.testing.assert_close(padded_moved, reference)
    assert not torch.allclose(clicked, reference)


def test_text_similarity_is_added_to_every_mask(model: InteractiveSegmenter) -> None:
    upscaled = torch.randn(2, 32 // 8, 8, 8)
    text = torch.randn(2, 384)
    similarity = model.mask_decoder.text_similarity(text, upscaled)
    assert similarity.shape == (2, 1, 8, 8)
    expected = (model.mask_decoder.text_to_pixel(text)[:, :, None, None] * upscaled).sum(1)
    torch.testing.assert_close(similarity[:, 0], expected)


def _square_target(size: tuple[int, int]) -> torch.Tensor:
    target = torch.zeros(1, *size)
    target[0, size[0] // 4 : size[0] // 2, size[1] // 4 : size[1] // 2] = 1
    return target


def test_loss_is_near_zero_for_a_perfect_mask_and_large_for_a_wrong_one() -> None:
    target = _square_target((32, 32))
    perfect = (target * 40 - 20).unsqueeze(1).repeat(1, 3, 1, 1)
    inverted = -perfect
    perfect_loss = segmenter_loss(perfect, torch.ones(1, 3), target)
    wrong_loss = segmenter_loss(inverted, torch.ones(1, 3), target)
    assert perfect_loss.total.item() < 1e-3
    assert wrong_loss.total.item() > 1.0
    assert wrong_loss.iou_mse.item() == pytest.approx(1.0)


def test_loss_trains_the_best_candidate_and_is_differentiable() -> None:
    target = _square_target((32, 32))
    good = target * 40 - 20
    candidates = torch.stack([-good[0], good[0], torch.zeros(32, 32)]).unsqueeze(0)
    candidates.requires_grad_(True)
    iou = torch.full((1, 3), 0.5, requires_grad=True)
    loss = segmenter_loss(candidates, iou, target)
    assert loss.best.tolist() == [1]
    loss.total.backward()
    assert candidates.grad is not None and iou.grad is not None
    # Only the chosen candidate's mask loss reaches the masks.
    assert candidates.grad[0, 0].abs().sum() == 0
    assert candidates.grad[0, 2].abs().sum() == 0
    assert iou.grad.abs().sum() > 0


def test_loss_upsamples_low_resolution_logits_to_the_target() -> None:
    target = _square_target((64, 64))
    low = torch.nn.functional.interpolate(target[None] * 40 - 20, size=(16, 16)).repeat(1, 3, 1, 1)
    assert segmenter_loss(low, torch.ones(1, 3), target).dice.item() < 0.05


def test_a_few_steps_with_simulated_clicks_reduce_the_loss_on_one_image() -> None:
    torch.manual_seed(1)
    model = create_model("imis_segmenter", **TINY)
    assert isinstance(model, InteractiveSegmenter)
    image = torch.randn(1, 3, *SIZE) * 0.1
    target = _square_target(SIZE)
    image[:, 0] += target * 2  # the target is visible in the image
    truth = target[0].numpy().astype(bool)
    click = next_click(np.zeros_like(truth), truth, np.random.default_rng(0))
    assert click is not None and click.positive
    points, labels = (torch.from_numpy(a)[None] for a in clicks_to_prompt([click], 4))

    def loss_now() -> torch.Tensor:
        masks, iou = model(image, points, labels)
        return segmenter_loss(masks, iou, target).total

    model.eval()
    with torch.no_grad():
        before = loss_now().item()
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    for _ in range(30):
        optimizer.zero_grad()
        loss_now().backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = loss_now().item()
    assert after < 0.5 * before


class _Decoder(torch.nn.Module):
    """The decoder with every prompt and flag as a positional input, as an export takes it."""

    def __init__(self, model: InteractiveSegmenter) -> None:
        super().__init__()
        self.model = model

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.decode(*inputs)


def test_the_prompt_decoder_exports_to_onnx_with_fixed_inputs(
    model: InteractiveSegmenter, embeddings: torch.Tensor, tmp_path: Path
) -> None:
    import onnxruntime

    points, labels = _points()
    inputs = (
        embeddings,
        points,
        labels,
        torch.tensor([[4.0, 8.0, 40.0, 50.0]] * 2),
        torch.randn(2, 1, *model.mask_size),
        torch.randn(2, 384),
        torch.tensor([1.0, 0.0]),
        torch.tensor([0.0, 1.0]),
        torch.tensor([1.0, 1.0]),
    )
    path = tmp_path / "decoder.onnx"
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(_Decoder(model), inputs, str(path), dynamo=False, opset_version=17)
        expected = model.decode(*inputs)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        arg.name: value.numpy() for arg, value in zip(session.get_inputs(), inputs, strict=True)
    }
    for got, want in zip(session.run(None, feeds), expected, strict=True):
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4)


def test_sams_own_vit_can_be_the_image_encoder() -> None:
    # timm's SAM ViT returns a [B, C, h, w] map rather than tokens; two blocks keep it small.
    model = create_model(
        "imis_segmenter",
        backbone="samvit_base_patch16",
        input_size=(64, 64),
        embed_dim=32,
        backbone_args={"depth": 2, "global_attn_indexes": (1,)},
    )
    assert isinstance(model, InteractiveSegmenter)
    with torch.no_grad():
        assert model.encode_image(torch.randn(1, 3, 64, 64)).shape == (1, 32, 4, 4)


def test_an_input_size_off_the_patch_grid_is_refused() -> None:
    with pytest.raises(ValueError, match="multiples of 16"):
        create_model("imis_segmenter", input_size=(60, 64))
