"""BERT's uncased WordPiece tokenizer, in plain Python, for MiniLM's vocabulary.

Training embeds texts with it through torch (:mod:`orstream.training.models.text_encoder`); the edge
tokenises new text prompts with it before a video-text package's text graph embeds them, with
no torch and no tokenizer library: the vocabulary file ships in the package.

This module is core: numpy and the standard library only.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from orstream.errors import OrstreamError

_MAX_WORD_CHARS = 100
"""BERT's WordPiece gives up on longer words and emits [UNK]."""


def _is_punctuation(char: str) -> bool:
    # BERT counts every non-alphanumeric ASCII symbol as punctuation, plus Unicode's P* classes.
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def _is_cjk(code: int) -> bool:
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0x20000 <= code <= 0x2A6DF
        or 0x2A700 <= code <= 0x2B73F
        or 0x2B740 <= code <= 0x2B81F
        or 0x2B820 <= code <= 0x2CEAF
        or 0xF900 <= code <= 0xFAFF
        or 0x2F800 <= code <= 0x2FA1F
    )


class WordPieceTokenizer:
    """BERT's uncased tokenizer: clean, lower-case, strip accents, split, then WordPiece."""

    def __init__(self, vocab_file: Path) -> None:
        tokens = vocab_file.read_text(encoding="utf-8").splitlines()
        self.vocab = {token: index for index, token in enumerate(tokens)}
        self.cls_id = self.vocab["[CLS]"]
        self.sep_id = self.vocab["[SEP]"]
        self.pad_id = self.vocab["[PAD]"]
        self.unk_id = self.vocab["[UNK]"]

    def _words(self, text: str) -> list[str]:
        chars = []
        for char in text:
            code = ord(char)
            category = unicodedata.category(char)
            if code in (0, 0xFFFD) or (category in ("Cc", "Cf") and char not in "\t\n\r"):
                continue
            if char.isspace() or category == "Zs":
                chars.append(" ")
            elif _is_cjk(code):
                chars.append(f" {char} ")
            else:
                chars.append(char)
        text = unicodedata.normalize("NFD", "".join(chars).lower())
        text = "".join(char for char in text if unicodedata.category(char) != "Mn")
        words: list[str] = []
        for chunk in text.split():
            current = ""
            for char in chunk:
                if _is_punctuation(char):
                    if current:
                        words.append(current)
                        current = ""
                    words.append(char)
                else:
                    current += char
            if current:
                words.append(current)
        return words

    def _word_pieces(self, word: str) -> list[int]:
        if len(word) > _MAX_WORD_CHARS:
            return [self.unk_id]
        pieces = []
        start = 0
        while start < len(word):
            # Longest match first; pieces after the first carry the "##" prefix.
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    pieces.append(self.vocab[piece])
                    start = end
                    break
            else:
                return [self.unk_id]
        return pieces

    def encode(self, text: str, max_tokens: int) -> list[int]:
        """Token ids of one text: ``[CLS]``, its word pieces (cut to fit) and ``[SEP]``."""
        ids = [piece for word in self._words(text) for piece in self._word_pieces(word)]
        return [self.cls_id, *ids[: max_tokens - 2], self.sep_id]

    def encode_fixed(self, texts: Sequence[str], tokens: int) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` and ``attention_mask``, int64 [len(texts), tokens]: each text as
        ``[CLS]`` pieces ``[SEP]`` then ``[PAD]``, the mask 1 over its tokens.

        Raises:
            OrstreamError: a text is empty (only spaces or symbols BERT drops), or needs more
                than ``tokens`` ids: it is refused rather than cut, so it never means less.
        """
        ids = np.full((len(texts), tokens), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(texts), tokens), dtype=np.int64)
        for row, text in enumerate(texts):
            pieces = [piece for word in self._words(text) for piece in self._word_pieces(word)]
            if not pieces:
                raise OrstreamError(f"prompt {row + 1} is empty: {text!r}")
            if len(pieces) + 2 > tokens:
                raise OrstreamError(
                    f"prompt {row + 1} is too long: {len(pieces)} word pieces, at most "
                    f"{tokens - 2} ({text[:40]!r}...)"
                )
            encoded = [self.cls_id, *pieces, self.sep_id]
            ids[row, : len(encoded)] = encoded
            mask[row, : len(encoded)] = 1
        return ids, mask
