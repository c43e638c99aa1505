"""The segmenter's Lightning module: click rounds, text buffer, checkpoint contents, Dice."""

import itertools
from typing import Any

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENTS
from orstream.training.data.segmenter_datamodule import PROMPT_BOX, PROMPT_POINTS, PROMPT_TEXT
from orstream.training.models.text_encoder import TextEncoder, prompt_text
from orstream.training.modules.lit_segmenter import LitSegmenter, dice_scores

SIZE = (64, 96)
TINY: dict[str, Any] = {
    "input_size": list(SIZE),
    "embed_dim": 32,
    "num_heads": 2,
    "mlp_dim": 64,
    "backbone_args": {"depth": 2, "embed_dim": 48, "num_heads": 2},
}
CLASSES = ["suction", "ring_curette", "sella"]


def lit(**kwargs: Any) -> LitSegmenter:
    torch.manual_seed(0)
    module = LitSegmenter(model_kwargs=TINY, **{"classes": CLASSES, **kwargs})
    module.setup("fit")
    return module


def batch_of_bars(prompts: list[int]) -> dict[str, torch.Tensor]:
    """Thin slanted bars (instrument shafts) on noise, one per sample, with their prompts."""
    height, width = SIZE
    count = len(prompts)
    generator = torch.Generator().manual_seed(1)
    masks = torch.zeros(count, height, width)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    for index in range(count):
        slope = 0.3 + 0.2 * index
        masks[index] = ((ys - slope * xs - 10 - 5 * index).abs() < 4).float()
    boxes, points = [], []
    for mask in masks:
        rows, cols = torch.nonzero(mask, as_tuple=True)
        boxes.append(torch.stack([cols.min(), rows.min(), cols.max(), rows.max()]).float())
        middle = len(rows) // 2
        points.append(torch.stack([cols[middle], rows[middle]]).float())
    images = torch.rand(count, 3, height, width, generator=generator) * 0.3
    images = images + masks[:, None] * 0.6
    return {
        "image": images,
        "mask": masks,
        "class_index": torch.arange(count) % len(CLASSES),
        "code": torch.full((count,), 16),
        "prompt": torch.tensor(prompts),
        "box": torch.stack(boxes),
        "point": torch.stack(points),
    }


def test_checkpoint_state_is_the_model_and_hyperparameters_name_the_classes() -> None:
    module = LitSegmenter(model_kwargs=TINY)
    assert module.hparams["classes"] == [*INSTRUMENTS.values(), "sella"]
    assert module.classes == module.hparams["classes"]
    keys = list(module.state_dict())
    assert keys and all(key.startswith("model.") for key in keys)
    assert module.mask_size == (SIZE[0] // 4, SIZE[1] // 4)


def test_class_text_is_the_minilm_embedding_of_each_prompt() -> None:
    module = lit()
    expected = TextEncoder.load().encode([prompt_text(name) for name in CLASSES])
    torch.testing.assert_close(module.class_text, expected)
    assert "class_text" not in module.state_dict()


def test_corrective_clicks_come_from_the_previous_best_masks_errors() -> None:
    module = lit(click_rounds=3)
    batch = batch_of_bars([PROMPT_BOX, PROMPT_POINTS, PROMPT_TEXT, PROMPT_BOX | PROMPT_TEXT])
    embeddings = module.model.encode_image(module.normalise(batch["image"]))
    rounds = module.interaction_rounds(batch, embeddings, np.random.default_rng(0))
    assert len(rounds) == 4
    assert rounds[0].mask_prompt is None
    # Only the samples prompted with points start with a click, at their given point.
    assert [len(clicks) for clicks in rounds[0].clicks] == [0, 1, 0, 0]
    first = rounds[0].clicks[1][0]
    assert (first.x, first.y, first.positive) == (*batch["point"][1].long().tolist(), True)
    truth = batch["mask"].numpy() > 0.5
    corrections = 0
    for previous, current in itertools.pairwise(rounds):
        prompt = current.mask_prompt
        assert prompt is not None and not prompt.requires_grad
        best = previous.logits.detach()[torch.arange(4), previous.loss.best][:, None]
        torch.testing.assert_close(prompt, best)
        predicted = F.interpolate(prompt, size=SIZE, mode="bilinear")[:, 0].numpy() > 0
        for sample in range(4):
            added = current.clicks[sample][len(previous.clicks[sample]) :]
            assert len(added) <= 1
            if not added:
                assert (predicted[sample] == truth[sample]).all()
                continue
            click = added[0]
            missed = truth[sample] & ~predicted[sample]
            extra = predicted[sample] & ~truth[sample]
            region = missed if click.positive else extra
            assert region[click.y, click.x], "a corrective click lies in the error region"
            corrections += 1
    assert corrections >= 6
    # Every round's loss reaches the image encoder (the embedding is shared by the rounds).
    torch.stack([r.loss.total for r in rounds]).mean().backward()
    assert module.model.image_encoder.neck[0].weight.grad is not None


def test_a_few_steps_on_one_batch_lower_the_loss() -> None:
    module = lit(click_rounds=1)
    batch = batch_of_bars([PROMPT_BOX, PROMPT_POINTS, PROMPT_BOX | PROMPT_TEXT, PROMPT_BOX])
    optimizer = torch.optim.AdamW(module.parameters(), lr=2e-3)
    losses = []
    for step in range(25):
        embeddings = module.model.encode_image(module.normalise(batch["image"]))
        rounds = module.interaction_rounds(batch, embeddings, np.random.default_rng(step))
        loss = torch.stack([r.loss.total for r in rounds]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


def test_dice_of_thresholded_logits() -> None:
    target = torch.zeros(3, 4, 4)
    target[:, :2] = 1.0  # 8 pixels
    logits = torch.full((3, 4, 4), -1.0)
    logits[0, :2] = 1.0  # exact
    logits[1, :1] = 1.0  # 4 of 8 -> 2*4 / 12
    torch.testing.assert_close(dice_scores(logits, target), torch.tensor([1.0, 2 / 3, 0.0]))
    assert float(dice_scores(torch.full((1, 2, 2), -1.0), torch.zeros(1, 2, 2))[0]) == 1.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"classes": ["scalpel"]}, "classes must be distinct names"),
        ({"classes": ["sella", "sella"]}, "classes must be distinct names"),
        ({"click_rounds": -1}, "click_rounds must be 0 or more"),
    ],
)
def test_bad_settings_are_clear(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OrstreamError, match=message):
        LitSegmenter(model_kwargs=TINY, **kwargs)


def test_a_second_phase_starts_from_a_checkpoints_weights(tmp_path: Any) -> None:
    first = LitSegmenter(model_kwargs=TINY, classes=CLASSES)
    path = tmp_path / "phase1.ckpt"
    torch.save({"state_dict": first.state_dict(), "hyper_parameters": dict(first.hparams)}, path)
    second = LitSegmenter(model_kwargs=TINY, classes=CLASSES, init_weights=str(path))
    copied = zip(first.model.state_dict().items(), second.model.state_dict().values(), strict=True)
    for (name, a), b in copied:
        assert torch.equal(a, b), name
    fresh = LitSegmenter(model_kwargs=TINY, classes=CLASSES)
    assert not all(
        torch.equal(a, b)
        for a, b in zip(first.model.parameters(), fresh.model.parameters(), strict=True)
    )
    with pytest.raises(OrstreamError, match="not found"):
        LitSegmenter(model_kwargs=TINY, init_weights=str(tmp_path / "missing.ckpt"))
    wider = {**TINY, "embed_dim": TINY["embed_dim"] * 2}
    with pytest.raises(OrstreamError, match="does not fit"):
        LitSegmenter(model_kwargs=wider, init_weights=str(path))


def test_a_stride_16_checkpoint_warm_starts_a_stride_8_model(tmp_path: Any) -> None:
    first = lit()
    path = tmp_path / "stride16.ckpt"
    torch.save({"state_dict": first.state_dict(), "hyper_parameters": dict(first.hparams)}, path)
    fine_kwargs = {**TINY, "embedding_stride": 8}
    fine = LitSegmenter(model_kwargs=fine_kwargs, classes=CLASSES, init_weights=str(path))
    height, width = SIZE
    assert fine.model.image_encoder.grid == (height // 8, width // 8)
    assert fine.model.mask_size == (height // 2, width // 2)
    images = torch.rand(2, 3, height, width)
    with torch.no_grad():
        coarse = first.model.encode_image(images)
        refined = fine.model.encode_image(images)
    # The detail path starts at zero: the stride-8 embedding is the stride-16 one upsampled.
    upsampled = F.interpolate(coarse, size=refined.shape[-2:], mode="bilinear")
    assert torch.allclose(refined, upsampled, atol=1e-6)
    # Every weight but the detail path's came from the checkpoint.
    coarse_state = first.model.state_dict()
    for name, value in fine.model.state_dict().items():
        if not name.startswith("image_encoder.detail."):
            assert torch.equal(value, coarse_state[name]), name
    # The other way round there is nothing to start the detail path's weights from.
    stride8 = tmp_path / "stride8.ckpt"
    torch.save({"state_dict": fine.state_dict(), "hyper_parameters": dict(fine.hparams)}, stride8)
    with pytest.raises(OrstreamError, match="does not fit"):
        LitSegmenter(model_kwargs=TINY, classes=CLASSES, init_weights=str(stride8))
