"""Greedy decoding of several answers in one batch, rows joining and leaving between steps.

A row is one answer: its prompt's embeddings (text ids looked up, visual tokens projected) go
through the prefill when it joins, then one decode step per token through the KV cache. Rows
of different lengths share the batch by left padding: a joining group's cache and the running
batch's are padded on the left to the longer past (zeros, masked out), so every row's mask
covers exactly its own tokens and the forward (positions from the mask, padding never seen;
:mod:`orstream.vlm.model.padded_batch`) computes for it what it computes alone. When
rows leave, the columns no remaining row uses are cut off the left.

With ``recompute`` no cache is kept: each step runs the prefill over every row's whole sequence
so far and reads its last position, as a model without a KV cache does (the bench's baseline);
the tokens are the same.

Stopping is per row: ``<eos>`` (not part of the answer), ``max_new_tokens``, the deadline or
cancellation, checked before every call the row takes part in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from orstream.errors import OrstreamError
from orstream.vlm.answering.answer_backend import AnswerEnd, EndReason
from orstream.vlm.answering.language_runtime import Cache, LanguageRuntime


@dataclass(frozen=True)
class PreparedPrompt:
    """A prompt ready for the language model.

    Attributes:
        ids: ``<bos>``, the image slots and the prompt text (and any forced answer start).
        source: which projector the features go through.
        features: float32 [N, F] vision features, N the image slots in ``ids``.
        image_id: the id of the image slots.
    """

    ids: tuple[int, ...]
    source: str
    features: np.ndarray
    image_id: int

    def __post_init__(self) -> None:
        slots = sum(1 for i in self.ids if i == self.image_id)
        if self.features.ndim != 2 or slots != len(self.features):
            raise OrstreamError(
                f"the prompt holds {slots} image slots for {len(self.features)} visual tokens"
            )


@dataclass
class Row:
    """One answer being decoded, and what the decoder reports of it.

    Attributes:
        prompt: what it answers.
        max_new_tokens: the most tokens it may take.
        deadline: ``time.monotonic()`` after which it stops (None: none).
        cancelled: answers True once the answer is no longer wanted.
        on_token: called with every kept token, as it is decoded.
        on_end: called once, when the row stops.
    """

    prompt: PreparedPrompt
    max_new_tokens: int
    deadline: float | None
    cancelled: Callable[[], bool]
    on_token: Callable[[int], None]
    on_end: Callable[[AnswerEnd], None]
    tokens: list[int] = field(default_factory=list)

    def stop_reason(self, now: float) -> EndReason | None:
        """Why the row must stop before its next call, if it must."""
        if self.cancelled():
            return "cancelled"
        if self.deadline is not None and now >= self.deadline:
            return "deadline"
        return None


class BatchDecoder:
    """The running batch over one runtime (not thread-safe: one thread drives it).

    Args:
        runtime: the language model.
        eos_id: the end-of-text id.
        recompute: recompute every sequence in full at each step instead of using the cache.
    """

    def __init__(self, runtime: LanguageRuntime, eos_id: int, recompute: bool = False) -> None:
        self.runtime, self.eos_id, self.recompute = runtime, eos_id, recompute
        self.rows: list[Row] = []
        self._mask = np.zeros((0, 0), np.int64)
        self._cache: Cache | None = None
        self._embeds: np.ndarray | None = None  # every row's sequence (recompute only)
        self._next: np.ndarray = np.zeros(0, np.int64)  # each row's token to feed next

    def __len__(self) -> int:
        return len(self.rows)

    def admit(self, rows: list[Row]) -> None:
        """Prefill ``rows`` together and add them to the batch (rows that must stop already
        end without a call)."""
        now = time.monotonic()
        joining = []
        for row in rows:
            reason = row.stop_reason(now)
            if reason is None:
                joining.append(row)
            else:
                row.on_end(AnswerEnd(reason, 0))
        if not joining:
            return
        embeds, mask = self._prompt_batch([row.prompt for row in joining])
        logits, cache = self.runtime.prefill(embeds, mask)
        self._join(joining, mask, cache, embeds)
        self._take(joining, logits[:, -1], len(self.rows) - len(joining))

    def step(self) -> None:
        """One token for every running row."""
        now = time.monotonic()
        for index in reversed(range(len(self.rows))):
            reason = self.rows[index].stop_reason(now)
            if reason is not None:
                self._finish(index, reason)
        if not self.rows:
            return
        embed = self.runtime.embed(self._next[:, None])
        self._mask = np.concatenate([self._mask, np.ones((len(self.rows), 1), np.int64)], 1)
        if self.recompute:
            assert self._embeds is not None
            self._embeds = np.concatenate([self._embeds, embed], 1)
            logits, _ = self.runtime.prefill(self._embeds, self._mask)
            last = logits[:, -1]
        else:
            assert self._cache is not None
            last, self._cache = self.runtime.decode(embed, self._mask, self._cache)
        self._take(list(self.rows), last, 0)

    def fail(self) -> list[Row]:
        """Drop every row (the runtime failed); returns them so their callers can be told."""
        rows, self.rows = self.rows, []
        self._reset()
        return rows

    def _prompt_batch(self, prompts: list[PreparedPrompt]) -> tuple[np.ndarray, np.ndarray]:
        """Left-padded embeddings [B, T, W] and mask [B, T] of prompts."""
        length = max(len(p.ids) for p in prompts)
        ids = np.zeros((len(prompts), length), np.int64)
        mask = np.zeros((len(prompts), length), np.int64)
        for row, prompt in enumerate(prompts):
            ids[row, length - len(prompt.ids) :] = prompt.ids
            mask[row, length - len(prompt.ids) :] = 1
        embeds = self.runtime.embed(ids)
        for row, prompt in enumerate(prompts):
            if len(prompt.features):
                projected = self.runtime.project(prompt.source, prompt.features[None])[0]
                embeds[row, ids[row] == prompt.image_id] = projected
                embeds[row, : length - len(prompt.ids)] = 0.0
        return embeds, mask

    def _join(self, rows: list[Row], mask: np.ndarray, cache: Cache, embeds: np.ndarray) -> None:
        if not self.rows:
            self.rows, self._mask = list(rows), mask
            self._cache = None if self.recompute else cache
            self._embeds = embeds if self.recompute else None
            self._next = np.zeros(len(rows), np.int64)
            return
        length = max(self._mask.shape[1], mask.shape[1])
        self._mask = np.concatenate([_left_pad(self._mask, length, 1), _left_pad(mask, length, 1)])
        if self.recompute:
            assert self._embeds is not None
            self._embeds = np.concatenate(
                [_left_pad(self._embeds, length, 1), _left_pad(embeds, length, 1)]
            )
        else:
            assert self._cache is not None
            old, new = self._cache, cache
            self._cache = (
                np.concatenate([_left_pad(old[0], length, 3), _left_pad(new[0], length, 3)]),
                np.concatenate([_left_pad(old[1], length, 3), _left_pad(new[1], length, 3)]),
            )
        self.rows += rows
        self._next = np.concatenate([self._next, np.zeros(len(rows), np.int64)])

    def _take(self, rows: list[Row], logits: np.ndarray, first: int) -> None:
        """Each row's greedy token from its logits; ``rows`` are self.rows[first:]."""
        tokens = logits.argmax(-1)
        ended: list[tuple[int, EndReason]] = []
        for offset, (row, token) in enumerate(zip(rows, tokens.tolist(), strict=True)):
            index = first + offset
            if token == self.eos_id:
                ended.append((index, "eos"))
                continue
            row.tokens.append(token)
            row.on_token(token)
            self._next[index] = token
            if len(row.tokens) >= row.max_new_tokens:
                ended.append((index, "max_new_tokens"))
        for index, reason in reversed(ended):
            self._finish(index, reason)

    def _finish(self, index: int, reason: EndReason) -> None:
        row = self.rows.pop(index)
        keep = [i for i in range(len(self._next)) if i != index]
        self._next = self._next[keep]
        self._mask = self._mask[keep]
        if self._cache is not None:
            self._cache = (self._cache[0][keep], self._cache[1][keep])
        if self._embeds is not None:
            self._embeds = self._embeds[keep]
        if not self.rows:
            self._reset()
        else:
            self._trim()
        row.on_end(AnswerEnd(reason, len(row.tokens)))

    def _trim(self) -> None:
        """Cut the left columns that no remaining row uses."""
        used = np.flatnonzero(self._mask.any(axis=0))
        start = int(used[0]) if used.size else self._mask.shape[1]
        if start == 0:
            return
        self._mask = self._mask[:, start:]
        if self._cache is not None:
            self._cache = (self._cache[0][:, :, :, start:], self._cache[1][:, :, :, start:])
        if self._embeds is not None:
            self._embeds = self._embeds[:, start:]

    def _reset(self) -> None:
        self._mask = np.zeros((0, 0), np.int64)
        self._cache = None
        self._embeds = None
        self._next = np.zeros(0, np.int64)


def _left_pad(array: np.ndarray, length: int, axis: int) -> np.ndarray:
    """``array`` with zeros before its entries along ``axis`` up to ``length``."""
    missing = length - array.shape[axis]
    if missing == 0:
        return array
    widths = [(0, 0)] * array.ndim
    widths[axis] = (missing, 0)
    return np.pad(array, widths)
