"""Causal grouped-query attention (GQA, Ainslie et al.) with the KV cache as explicit tensors.

Several query heads share one key/value head, which shrinks the cache by ``heads / kv_heads``;
the cache holds only the ``kv_heads`` heads and they are repeated for the queries at use. The
cache is passed in and returned rather than kept in the module, so the same forward is prefill
(no past) and one decode step (the past of every earlier token), and exports to ONNX as two
graphs with the cache as inputs and outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from orstream.vlm.model.rotary import apply_rotary


class GroupedQueryAttention(nn.Module):
    """Args:
    width: the model width.
    heads: query heads.
    kv_heads: key/value heads (divides ``heads``).
    """

    def __init__(self, width: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        if width % heads or heads % kv_heads:
            raise ValueError(f"width {width}, heads {heads}, kv_heads {kv_heads} do not divide")
        self.heads, self.kv_heads = heads, kv_heads
        self.head_dim = width // heads
        self.query = nn.Linear(width, width, bias=False)
        self.key = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.value = nn.Linear(width, kv_heads * self.head_dim, bias=False)
        self.out = nn.Linear(width, width, bias=False)

    def forward(
        self,
        x: Tensor,
        cos: Tensor,
        sin: Tensor,
        past_key: Tensor,
        past_value: Tensor,
        mask: Tensor,
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Attend from ``x`` [B, T, width] to the past and itself.

        Args:
            cos, sin: rotary angles of the new tokens' positions, [T, head_dim].
            past_key, past_value: [B, kv_heads, P, head_dim] (P may be 0).
            mask: [T, P + T] bool, True where a query may see a key.

        Returns:
            (output [B, T, width], key and value [B, kv_heads, P + T, head_dim]).
        """
        batch, length, _ = x.shape
        query = self.query(x).view(batch, length, self.heads, self.head_dim).transpose(1, 2)
        key = self.key(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        value = self.value(x).view(batch, length, self.kv_heads, self.head_dim).transpose(1, 2)
        query, key = apply_rotary(query, cos, sin), apply_rotary(key, cos, sin)
        keys = torch.cat([past_key, key], dim=2)
        values = torch.cat([past_value, value], dim=2)
        group = self.heads // self.kv_heads
        attended = F.scaled_dot_product_attention(
            query,
            keys.repeat_interleave(group, dim=1),
            values.repeat_interleave(group, dim=1),
            attn_mask=mask,
        )
        merged = attended.transpose(1, 2).reshape(batch, length, -1)
        return self.out(merged), keys, values
