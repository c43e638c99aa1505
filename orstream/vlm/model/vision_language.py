"""The LLaVA-style composition GMAI-VL uses: frozen vision features, an MLP projector per
vision source into the language model's embedding space, and the language model.

A prompt holds one ``<image>`` id per visual token; :meth:`VisionLanguageModel.embed` puts the
projected features in those places, in order, and the text's embeddings everywhere else. Two
sources feed it: ``surgical`` (the segmenter encoder's grid tokens of the frames of a clip) and
``slide`` (the slide package's tile features averaged over regions); their widths differ, so
each has its own projector (LLaVA-1.5's two-layer MLP with GELU).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from orstream.vlm.model.language_model import DecoderLanguageModel

SOURCES = ("surgical", "slide")


class Projector(nn.Module):
    """Vision features [..., in] -> language embeddings [..., width]."""

    def __init__(self, features: int, width: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.LayerNorm(features), nn.Linear(features, width), nn.GELU(), nn.Linear(width, width)
        )

    def forward(self, features: Tensor) -> Tensor:
        projected: Tensor = self.layers(features)
        return projected


class VisionLanguageModel(nn.Module):
    """Args:
    vocab_size: the text tokenizer's ids.
    image_id: the id of ``<image>``.
    feature_widths: the width of each source's vision features, by source name.
    width, layers, heads, kv_heads, mlp_hidden, rope_base: the language model's sizes
        (:class:`DecoderLanguageModel`).
    """

    def __init__(
        self,
        vocab_size: int,
        image_id: int,
        feature_widths: dict[str, int],
        *,
        width: int,
        layers: int,
        heads: int,
        kv_heads: int,
        mlp_hidden: int,
        rope_base: float = 10_000.0,
    ) -> None:
        super().__init__()
        unknown = set(feature_widths) - set(SOURCES)
        if unknown:
            raise ValueError(f"unknown vision sources {sorted(unknown)}; known: {SOURCES}")
        self.image_id = image_id
        self.feature_widths = dict(feature_widths)
        self.language = DecoderLanguageModel(
            vocab_size, width, layers, heads, kv_heads, mlp_hidden, rope_base
        )
        self.projectors = nn.ModuleDict(
            {name: Projector(width, self.language.width) for name, width in feature_widths.items()}
        )

    def embed(self, input_ids: Tensor, features: Tensor, source: str) -> Tensor:
        """Embeddings [B, T, width] of ``input_ids`` [B, T] with the projected ``features``
        [B, N, F] in the places of the ``<image>`` ids (each row holds exactly N of them)."""
        embeddings = self.language.embedding(input_ids)
        slots = input_ids == self.image_id
        if features.shape[1] == 0:
            return embeddings
        projected = self.projectors[source](features).to(embeddings.dtype)
        counts = slots.sum(dim=1)
        if bool((counts != features.shape[1]).any()):
            raise ValueError(
                f"prompts hold {counts.tolist()} <image> ids for {features.shape[1]} visual tokens"
            )
        return embeddings.masked_scatter(slots[..., None], projected)

    def forward(self, input_ids: Tensor, features: Tensor, source: str = "surgical") -> Tensor:
        """Next-token logits [B, T, vocab] of a batch of sequences (training: no cache kept)."""
        logits, _, _ = self.language.prefill(self.embed(input_ids, features, source))
        return logits

    @torch.no_grad()
    def generate(
        self,
        prompt_ids: Tensor,
        features: Tensor,
        source: str,
        eos_id: int,
        max_new_tokens: int = 96,
    ) -> list[int]:
        """Greedy continuation of one prompt [1, T] through the KV cache: prefill once, then
        one decode step per token, until ``eos_id`` or ``max_new_tokens`` (eos not returned)."""
        tokens = self.sample(prompt_ids, features, source, eos_id, max_new_tokens)[0].tolist()
        return tokens[: tokens.index(eos_id)] if eos_id in tokens else tokens

    @torch.no_grad()
    def sample(
        self,
        prompt_ids: Tensor,
        features: Tensor,
        source: str,
        eos_id: int,
        max_new_tokens: int = 96,
        group: int = 1,
        temperature: float = 0.0,
    ) -> Tensor:
        """``group`` continuations of one prompt [1, T], decoded together through one KV cache
        (the prompt is prefilled once and its cache shared by the group): greedy at temperature
        0, else drawn from the softmax of the logits over ``temperature`` (the answers GRPO
        compares). Returns tokens [group, L]: each row up to and including its ``eos_id``, then
        ``eos_id`` again to the longest row's length; a row without ``eos_id`` ran to
        ``max_new_tokens``."""
        logits, keys, values = self.language.prefill(self.embed(prompt_ids, features, source))
        keys = keys.expand(-1, group, -1, -1, -1)
        values = values.expand(-1, group, -1, -1, -1)
        next_logits = logits[:, -1].expand(group, -1)
        ended = torch.zeros(group, dtype=torch.bool, device=prompt_ids.device)
        out: list[Tensor] = []
        for _ in range(max_new_tokens):
            if temperature > 0:
                probabilities = torch.softmax(next_logits.float() / temperature, dim=-1)
                token = torch.multinomial(probabilities, 1)[:, 0]
            else:
                token = next_logits.argmax(-1)
            token = token.masked_fill(ended, eos_id)
            out.append(token)
            ended = ended | (token == eos_id)
            if bool(ended.all()) or len(out) == max_new_tokens:
                break
            step = self.language.embedding(token[:, None])
            next_logits, keys, values = self.language.decode(step, keys, values)
        if not out:
            return prompt_ids.new_zeros((group, 0))
        return torch.stack(out, dim=1)
