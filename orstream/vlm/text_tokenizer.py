"""The vision-language model's text tokenizer: byte-level BPE trained on the project's own text.

No pretrained tokenizer can be downloaded here, and the language model learns from scratch on
phantom narrations, titles, slide captions and question sets, so its vocabulary is learnt from
the same text with Hugging Face's ``tokenizers``. Byte-level BPE decodes every id sequence back
to the exact text (spaces and line breaks included), so a generated answer is scored as written.

The special tokens are single ids that text never splits into: padding, beginning and end of
sequence, ``<image>`` (one per visual token; the model puts the projected vision features in
their places) and the reasoning format's ``<think>``, ``</think>``, ``<answer>``, ``</answer>``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from orstream.errors import OrstreamError

PAD, BOS, EOS, IMAGE = "<pad>", "<bos>", "<eos>", "<image>"
SPECIAL_TOKENS = (PAD, BOS, EOS, IMAGE, "<think>", "</think>", "<answer>", "</answer>")
"""In id order: ``<pad>`` is 0, ``<bos>`` 1, ``<eos>`` 2, ``<image>`` 3, then the reasoning
format's tags."""
DEFAULT_VOCAB_SIZE = 2048
TOKENIZER_FILE = "tokenizer.json"


class TextTokenizer:
    """Text to ids and back, with the special tokens at fixed ids.

    Build one with :meth:`train` or :meth:`load`.
    """

    def __init__(self, tokenizer: object) -> None:
        from tokenizers import Tokenizer

        assert isinstance(tokenizer, Tokenizer)
        self._tokenizer = tokenizer
        for index, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != index:
                raise OrstreamError(f"tokenizer: special token {token} is not id {index}")

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int = DEFAULT_VOCAB_SIZE) -> TextTokenizer:
        """A byte-level BPE tokenizer of at most ``vocab_size`` ids learnt from ``texts``."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(SPECIAL_TOKENS),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tokenizer.train_from_iterator(texts, trainer=trainer)
        return cls(tokenizer)

    @classmethod
    def load(cls, path: Path) -> TextTokenizer:
        """Read ``tokenizer.json`` (or the folder holding it).

        Raises:
            OrstreamError: the file is missing, not a tokenizer, or lacks the special tokens.
        """
        from tokenizers import Tokenizer

        file = path / TOKENIZER_FILE if path.is_dir() else path
        if not file.is_file():
            raise OrstreamError(f"{file}: tokenizer file not found")
        try:
            tokenizer = Tokenizer.from_file(str(file))
        except Exception as error:  # tokenizers raises plain Exceptions for a bad file
            raise OrstreamError(f"{file}: not a tokenizer ({error})") from None
        return cls(tokenizer)

    def save(self, path: Path) -> Path:
        """Write ``tokenizer.json`` to ``path`` (a file, or a folder to write it into)."""
        file = path / TOKENIZER_FILE if path.is_dir() else path
        partial = file.with_name(f".{file.name}.{os.getpid()}")
        self._tokenizer.save(str(partial))
        os.replace(partial, file)  # whole or not at all, for a process reading it meanwhile
        return file

    def to_json(self) -> str:
        """The whole tokenizer as the JSON text of ``tokenizer.json``."""
        return str(self._tokenizer.to_str())

    @property
    def vocab_size(self) -> int:
        return int(self._tokenizer.get_vocab_size())

    @property
    def image_id(self) -> int:
        return SPECIAL_TOKENS.index(IMAGE)

    @property
    def pad_id(self) -> int:
        return SPECIAL_TOKENS.index(PAD)

    @property
    def bos_id(self) -> int:
        return SPECIAL_TOKENS.index(BOS)

    @property
    def eos_id(self) -> int:
        return SPECIAL_TOKENS.index(EOS)

    def encode(self, text: str) -> list[int]:
        """The ids of ``text``; special tokens written in it become their own ids."""
        return list(self._tokenizer.encode(text).ids)

    def decode(self, ids: Iterable[int]) -> str:
        """The text of ``ids``, the reasoning tags kept, padding and sequence marks left out."""
        dropped = {self.pad_id, self.bos_id, self.eos_id}
        kept = [i for i in ids if i not in dropped]
        return str(self._tokenizer.decode(kept, skip_special_tokens=False))
