"""The language model's forward over a batch of left-padded sequences, as serving runs it.

Concurrent questions have prompts of different lengths and answers that end at different
steps, yet are decoded together. Each row is padded on the left and carries an attention mask
over every key (past and new; 1 a real token, 0 padding), from which the forward takes:

- each token's position as the count of real tokens before it, so a row's rotary angles are
  those it would have alone, however much padding precedes it;
- which keys each query sees: the real ones at or before it. A query always sees its own key
  too, so a padding query (whose every earlier key is padding) attends to something and stays
  finite; no real query ever sees a padding key, so a padded row computes what it computes
  alone and its greedy answer is the same.

The cache is batch-first, ``[B, layers, kv_heads, P, head_dim]``, where the model keeps it
``[layers, B, ...]``: a package's graphs take their batch on axis 0 of every tensor
(:mod:`orstream.package.card`), and merging or dropping rows is then one index on axis 0.
The blocks, norm and tied output head are the model's own; only the positions and the mask
differ from :meth:`DecoderLanguageModel.forward`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from orstream.vlm.model.language_model import DecoderLanguageModel
from orstream.vlm.model.rotary import rotary_angles


class PaddedDecoder(nn.Module):
    """``forward(embeddings, attention_mask, past_keys, past_values)`` of ``language``.

    Args:
        language: the decoder whose blocks run.
    """

    def __init__(self, language: DecoderLanguageModel) -> None:
        super().__init__()
        self.language = language

    def forward(
        self, embeddings: Tensor, attention_mask: Tensor, past_keys: Tensor, past_values: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logits of every new position and the cache grown by the new tokens.

        Args:
            embeddings: [B, T, width], the tokens after the past.
            attention_mask: int64 [B, P + T], 1 over real tokens, 0 over padding.
            past_keys, past_values: [B, layers, kv_heads, P, head_dim].

        Returns:
            (logits [B, T, vocab], keys and values [B, layers, kv_heads, P + T, head_dim]).
        """
        language = self.language
        batch, length = embeddings.shape[0], embeddings.shape[1]
        total = attention_mask.shape[1]
        real = attention_mask > 0
        counts = torch.cumsum(attention_mask, dim=1) - 1
        positions = counts[:, total - length :].clamp(min=0)
        cos, sin = rotary_angles(positions.reshape(-1), language.head_dim, language.rope_base)
        cos = cos.reshape(batch, 1, length, -1)
        sin = sin.reshape(batch, 1, length, -1)
        keys_at = torch.arange(total, device=embeddings.device)
        queries_at = keys_at[total - length :]
        causal = keys_at[None, :] <= queries_at[:, None]
        itself = keys_at[None, :] == queries_at[:, None]
        mask = (causal[None] & real[:, None, :]) | itself[None]
        mask = mask[:, None]  # [B, 1, T, P + T]: one mask for every head
        x = embeddings
        keys, values = [], []
        for index, block in enumerate(language.blocks):
            x, key, value = block(x, cos, sin, past_keys[:, index], past_values[:, index], mask)
            keys.append(key)
            values.append(value)
        logits = language.norm(x) @ language.embedding.weight.T
        return logits, torch.stack(keys, dim=1), torch.stack(values, dim=1)

    def empty_cache(self, batch: int) -> tuple[Tensor, Tensor]:
        """An empty past (P = 0) for ``batch`` rows, batch-first."""
        language = self.language
        weight = language.embedding.weight
        shape = (batch, language.layers, language.kv_heads, 0, language.head_dim)
        return weight.new_zeros(shape), weight.new_zeros(shape)
