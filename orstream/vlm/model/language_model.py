"""A small decoder-only language model, in the Llama form: pre-norm blocks of RMSNorm,
grouped-query attention with rotary positions and a SwiGLU MLP; the output head shares the
token embedding's weights.

The model reads embeddings, not ids, so the vision-language model can put projected visual
tokens among the text's; :meth:`DecoderLanguageModel.forward` takes and returns the KV cache as
tensors ``[layers, B, kv_heads, P, head_dim]``: :meth:`prefill` is the forward with an empty
past, :meth:`decode` one token on top of a past.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from orstream.vlm.model.attention import GroupedQueryAttention
from orstream.vlm.model.rotary import rotary_angles


class RMSNorm(nn.Module):
    def __init__(self, width: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(width))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class SwiGLU(nn.Module):
    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.gate = nn.Linear(width, hidden, bias=False)
        self.up = nn.Linear(width, hidden, bias=False)
        self.down = nn.Linear(hidden, width, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


class DecoderBlock(nn.Module):
    def __init__(self, width: int, heads: int, kv_heads: int, hidden: int) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(width)
        self.attention = GroupedQueryAttention(width, heads, kv_heads)
        self.mlp_norm = RMSNorm(width)
        self.mlp = SwiGLU(width, hidden)

    def forward(
        self, x: Tensor, cos: Tensor, sin: Tensor, past_key: Tensor, past_value: Tensor,
        mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:  # fmt: skip
        attended, key, value = self.attention(
            self.attention_norm(x), cos, sin, past_key, past_value, mask
        )
        x = x + attended
        return x + self.mlp(self.mlp_norm(x)), key, value


class DecoderLanguageModel(nn.Module):
    """Args:
    vocab_size: token ids (the text tokenizer's).
    width: embedding width.
    layers: decoder blocks.
    heads: query heads per block.
    kv_heads: key/value heads per block (grouped-query attention).
    mlp_hidden: the SwiGLU's hidden width.
    rope_base: the rotary angles' base.
    """

    def __init__(
        self,
        vocab_size: int,
        width: int = 256,
        layers: int = 4,
        heads: int = 8,
        kv_heads: int = 2,
        mlp_hidden: int = 688,
        rope_base: float = 10_000.0,
    ) -> None:
        super().__init__()
        self.vocab_size, self.width, self.layers = vocab_size, width, layers
        self.kv_heads, self.head_dim = kv_heads, width // heads
        self.mlp_hidden = mlp_hidden
        self.rope_base = rope_base
        self.embedding = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.blocks = nn.ModuleList(
            DecoderBlock(width, heads, kv_heads, mlp_hidden) for _ in range(layers)
        )
        self.norm = RMSNorm(width)

    def empty_cache(self, batch: int) -> tuple[Tensor, Tensor]:
        """An empty past (P = 0) for ``batch`` sequences."""
        weight = self.embedding.weight
        shape = (self.layers, batch, self.kv_heads, 0, self.head_dim)
        return weight.new_zeros(shape), weight.new_zeros(shape)

    def forward(
        self, embeddings: Tensor, past_keys: Tensor, past_values: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Logits of every new position, and the cache grown by the new tokens.

        Args:
            embeddings: [B, T, width], the tokens after the past.
            past_keys, past_values: [layers, B, kv_heads, P, head_dim].

        Returns:
            (logits [B, T, vocab], keys and values [layers, B, kv_heads, P + T, head_dim]).
        """
        length, past = embeddings.shape[1], past_keys.shape[3]
        positions = torch.arange(past, past + length, device=embeddings.device)
        cos, sin = rotary_angles(positions, self.head_dim, self.rope_base)
        seen = torch.arange(past + length, device=embeddings.device)
        mask = seen[None, :] <= positions[:, None]
        x = embeddings
        keys, values = [], []
        for index, block in enumerate(self.blocks):
            x, key, value = block(x, cos, sin, past_keys[index], past_values[index], mask)
            keys.append(key)
            values.append(value)
        logits = self.norm(x) @ self.embedding.weight.T
        return logits, torch.stack(keys), torch.stack(values)

    def prefill(self, embeddings: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The forward of a whole prompt [B, T, width] with no past."""
        return self(embeddings, *self.empty_cache(embeddings.shape[0]))

    def decode(
        self, embedding: Tensor, past_keys: Tensor, past_values: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """One step: the next token's embedding [B, 1, width] after the cached past; returns
        (logits [B, vocab], the cache with the token added)."""
        logits, keys, values = self(embedding, past_keys, past_values)
        return logits[:, -1], keys, values
