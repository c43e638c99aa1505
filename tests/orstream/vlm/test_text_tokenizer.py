"""The text tokenizer: special tokens at fixed ids, exact round trips, saved and loaded."""

from pathlib import Path

import pytest

from orstream.errors import OrstreamError
from orstream.vlm.text_tokenizer import SPECIAL_TOKENS, TextTokenizer

TEXTS = [
    "The sella is opened with drill and rongeur.",
    "Which surgical step is in progress at the end of this clip?",
    "<think>At the last second the view shows the suction.</think><answer>sellotomy</answer>",
] * 20


def test_special_tokens_are_single_fixed_ids_and_text_round_trips(tmp_path: Path) -> None:
    tokenizer = TextTokenizer.train(TEXTS, vocab_size=400)
    text = "<image><image>\nQuestion: is the sella open?\n<think>Yes.</think><answer>yes</answer>"
    ids = tokenizer.encode(text)
    assert ids[:2] == [tokenizer.image_id] * 2
    for index, token in enumerate(SPECIAL_TOKENS):
        assert tokenizer.encode(token) == [index]
    assert tokenizer.decode(ids) == text
    assert tokenizer.decode([tokenizer.bos_id, *ids, tokenizer.eos_id, 0, 0]) == text
    assert tokenizer.vocab_size <= 400
    loaded = TextTokenizer.load(tokenizer.save(tmp_path))
    assert loaded.encode(text) == ids


def test_a_missing_or_foreign_file_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="not found"):
        TextTokenizer.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(OrstreamError, match="not a tokenizer"):
        TextTokenizer.load(tmp_path / "bad.json")
