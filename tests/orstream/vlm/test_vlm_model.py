"""The vision-language model's decoder: KV cache, grouped-query attention, causality, RoPE."""

import pytest
import torch

from orstream.vlm.model import VisionLanguageModel
from orstream.vlm.model.attention import GroupedQueryAttention
from orstream.vlm.model.rotary import apply_rotary, rotary_angles

IMAGE = 3


def small_model() -> VisionLanguageModel:
    torch.manual_seed(0)
    model = VisionLanguageModel(
        50,
        IMAGE,
        {"surgical": 12, "slide": 20},
        width=32,
        layers=2,
        heads=4,
        kv_heads=2,
        mlp_hidden=48,
    )
    return model.eval()


def prompt(length: int, images: int) -> torch.Tensor:
    ids = torch.randint(8, 50, (1, length))
    ids[0, 1 : 1 + images] = IMAGE
    return ids


def test_decoding_through_the_cache_equals_recomputing_every_position() -> None:
    model = small_model()
    ids = prompt(12, 4)
    features = torch.randn(1, 4, 12)
    full = model(ids, features, "surgical")
    embeddings = model.embed(ids, features, "surgical")
    logits, keys, values = model.language.prefill(embeddings[:, :7])
    torch.testing.assert_close(logits, full[:, :7], atol=1e-5, rtol=1e-5)
    for position in range(7, 12):
        step, keys, values = model.language.decode(
            embeddings[:, position : position + 1], keys, values
        )
        torch.testing.assert_close(step, full[:, position], atol=1e-5, rtol=1e-5)
    assert keys.shape == (2, 1, 2, 12, 8)


def test_generation_equals_greedy_recomputation() -> None:
    model = small_model()
    ids = prompt(9, 3)
    features = torch.randn(1, 3, 20)
    generated = model.generate(ids, features, "slide", eos_id=2, max_new_tokens=6)
    sequence = ids
    for token in generated:
        expected = int(model(sequence, features, "slide")[0, -1].argmax())
        assert token == expected
        sequence = torch.cat([sequence, torch.tensor([[token]])], dim=1)


def test_grouped_query_attention_caches_only_the_key_value_heads() -> None:
    attention = GroupedQueryAttention(width=32, heads=8, kv_heads=2)
    assert attention.key.out_features == 2 * 4
    x = torch.randn(3, 5, 32)
    cos, sin = rotary_angles(torch.arange(5), 4)
    past = torch.zeros(3, 2, 0, 4)
    mask = torch.ones(5, 5, dtype=torch.bool).tril()
    out, key, value = attention(x, cos, sin, past, past, mask)
    assert out.shape == (3, 5, 32)
    assert key.shape == value.shape == (3, 2, 5, 4)
    with pytest.raises(ValueError, match="do not divide"):
        GroupedQueryAttention(width=32, heads=8, kv_heads=3)


def test_a_later_token_never_changes_earlier_logits() -> None:
    model = small_model()
    ids = prompt(10, 2)
    features = torch.randn(1, 2, 12)
    changed = ids.clone()
    changed[0, 6:] = torch.randint(8, 50, (4,))
    before = model(ids, features, "surgical")
    after = model(changed, features, "surgical")
    torch.testing.assert_close(before[:, :6], after[:, :6])
    assert not torch.allclose(before[:, 6:], after[:, 6:])


def test_rotary_scores_depend_only_on_the_distance() -> None:
    torch.manual_seed(1)
    query, key = torch.randn(16), torch.randn(16)
    cos, sin = rotary_angles(torch.arange(40), 16)

    def score(m: int, n: int) -> float:
        rotated_query = apply_rotary(query, cos[m], sin[m])
        rotated_key = apply_rotary(key, cos[n], sin[n])
        return float(rotated_query @ rotated_key)

    assert score(7, 3) == pytest.approx(score(30, 26), abs=1e-4)
    assert score(5, 5) == pytest.approx(float(query @ key), abs=1e-4)
    assert score(7, 3) != pytest.approx(score(7, 5), abs=1e-3)


def test_every_image_slot_gets_a_visual_token_in_order() -> None:
    model = small_model()
    ids = prompt(8, 3)
    features = torch.randn(1, 3, 12)
    embeddings = model.embed(ids, features, "surgical")
    projected = model.projectors["surgical"](features)
    torch.testing.assert_close(embeddings[0, 1:4], projected[0])
    with pytest.raises(ValueError, match="<image> ids"):
        model.embed(ids, torch.randn(1, 2, 12), "surgical")


def test_sampling_at_temperature_zero_is_greedy_generation() -> None:
    model = small_model()
    ids = prompt(9, 3)
    features = torch.randn(1, 3, 20)
    greedy = model.generate(ids, features, "slide", eos_id=2, max_new_tokens=6)
    group = model.sample(ids, features, "slide", eos_id=2, max_new_tokens=6, group=3)
    assert group.shape[0] == 3
    for row in group.tolist():
        assert row[: len(greedy)] == greedy
        assert all(token == 2 for token in row[len(greedy) :])


def test_a_sampled_group_shares_one_prompt_and_ends_each_row_with_eos() -> None:
    model = small_model()
    ids = prompt(9, 3)
    features = torch.randn(1, 3, 12)
    eos = 5
    torch.manual_seed(3)
    group = model.sample(ids, features, "surgical", eos, 12, group=16, temperature=2.0)
    assert group.shape[0] == 16 and group.shape[1] <= 12
    rows = group.tolist()
    assert len({tuple(row) for row in rows}) > 1  # drawn, not greedy
    ended = [row for row in rows if eos in row]
    assert ended  # seeded: some rows draw eos, after which they hold it
    for row in ended:
        assert all(token == eos for token in row[row.index(eos) :])
