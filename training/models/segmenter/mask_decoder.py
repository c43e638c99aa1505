"""Mask decoder of the interactive segmenter: SAM's two-way transformer (tokens attend to the
image and the image attends back to the tokens), 3 candidate masks upscaled 4x from the image
embedding, an IoU head scoring each, and the text-to-pixel similarity added to the masks."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

from orstream.training.models.segmenter.image_encoder import LayerNorm2d


class Attention(nn.Module):
    """Multi-head attention that may project to a narrower inner width (SAM's cross attention
    halves it to keep the token<->image attention cheap)."""

    def __init__(self, embed_dim: int, num_heads: int, downsample: int = 1) -> None:
        super().__init__()
        inner = embed_dim // downsample
        if inner % num_heads:
            raise ValueError(f"{num_heads} heads do not divide the attention width {inner}")
        self.num_heads = num_heads
        self.q = nn.Linear(embed_dim, inner)
        self.k = nn.Linear(embed_dim, inner)
        self.v = nn.Linear(embed_dim, inner)
        self.out = nn.Linear(inner, embed_dim)

    def _heads(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.reshape(batch, length, self.num_heads, width // self.num_heads).transpose(1, 2)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        query, key, value = self._heads(self.q(q)), self._heads(self.k(k)), self._heads(self.v(v))
        weights = torch.softmax(query @ key.transpose(-2, -1) * query.shape[-1] ** -0.5, dim=-1)
        attended = (weights @ value).transpose(1, 2).flatten(2)
        return self.out(attended)


class MLP(nn.Module):
    """Linear layers with ReLU between them."""

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int, num_layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))

    def forward(self, x: Tensor) -> Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class TwoWayBlock(nn.Module):
    """Token self-attention, token->image cross attention, token MLP, image->token attention."""

    def __init__(self, embed_dim: int, num_heads: int, mlp_dim: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.self_attention = Attention(embed_dim, num_heads)
        self.norm1 = nn.LayerNorm(embed_dim)
        self.token_to_image = Attention(embed_dim, num_heads, downsample=2)
        self.norm2 = nn.LayerNorm(embed_dim)
        self.mlp = MLP(embed_dim, mlp_dim, embed_dim, num_layers=2)
        self.norm3 = nn.LayerNorm(embed_dim)
        self.image_to_token = Attention(embed_dim, num_heads, downsample=2)
        self.norm4 = nn.LayerNorm(embed_dim)

    def forward(
        self, tokens: Tensor, image: Tensor, token_pe: Tensor, image_pe: Tensor
    ) -> tuple[Tensor, Tensor]:
        # The first block replaces the tokens by their attention output (as SAM does): the
        # prompt tokens already carry their positional encoding.
        if self.first:
            tokens = self.self_attention(tokens, tokens, tokens)
        else:
            query = tokens + token_pe
            tokens = tokens + self.self_attention(query, query, tokens)
        tokens = self.norm1(tokens)
        tokens = self.norm2(
            tokens + self.token_to_image(tokens + token_pe, image + image_pe, image)
        )
        tokens = self.norm3(tokens + self.mlp(tokens))
        image = self.norm4(image + self.image_to_token(image + image_pe, tokens + token_pe, tokens))
        return tokens, image


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks, then a final token->image attention."""

    def __init__(self, depth: int, embed_dim: int, num_heads: int, mlp_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            TwoWayBlock(embed_dim, num_heads, mlp_dim, first=index == 0) for index in range(depth)
        )
        self.final_attention = Attention(embed_dim, num_heads, downsample=2)
        self.final_norm = nn.LayerNorm(embed_dim)

    def forward(self, image: Tensor, image_pe: Tensor, tokens: Tensor) -> tuple[Tensor, Tensor]:
        """Image [B, E, h, w], its encoding [B, E, h, w], tokens [B, T, E] -> (tokens, image
        [B, h*w, E])."""
        image = image.flatten(2).transpose(1, 2)
        image_pe = image_pe.flatten(2).transpose(1, 2)
        token_pe = tokens
        for block in self.blocks:
            tokens, image = block(tokens, image, token_pe, image_pe)
        tokens = self.final_norm(
            tokens + self.final_attention(tokens + token_pe, image + image_pe, image)
        )
        return tokens, image


class MaskDecoder(nn.Module):
    """Prompt tokens + image embedding -> (mask logits [B, 3, 4h, 4w], IoU scores [B, 3]).

    Args:
        embed_dim: token and embedding width E (divisible by 8).
        num_masks: candidate masks per prompt.
        depth: two-way transformer blocks.
        num_heads: attention heads.
        mlp_dim: hidden width of the token MLPs.
        text_dim: width of the sentence embedding used for the text-to-pixel similarity.
    """

    def __init__(
        self,
        embed_dim: int,
        num_masks: int = 3,
        depth: int = 2,
        num_heads: int = 4,
        mlp_dim: int = 512,
        text_dim: int = 384,
    ) -> None:
        super().__init__()
        self.num_masks = num_masks
        self.transformer = TwoWayTransformer(depth, embed_dim, num_heads, mlp_dim)
        self.iou_token = nn.Parameter(torch.randn(1, embed_dim) * 0.02)
        self.mask_tokens = nn.Parameter(torch.randn(num_masks, embed_dim) * 0.02)
        upscaled = embed_dim // 8
        self.upscale = nn.Sequential(
            nn.ConvTranspose2d(embed_dim, embed_dim // 4, kernel_size=2, stride=2),
            LayerNorm2d(embed_dim // 4),
            nn.GELU(),
            nn.ConvTranspose2d(embed_dim // 4, upscaled, kernel_size=2, stride=2),
            nn.GELU(),
        )
        self.hypernetworks = nn.ModuleList(
            MLP(embed_dim, embed_dim, upscaled, num_layers=3) for _ in range(num_masks)
        )
        self.iou_head = MLP(embed_dim, 256, num_masks, num_layers=3)
        self.text_to_pixel = nn.Linear(text_dim, upscaled)

    def text_similarity(self, text_embedding: Tensor, upscaled_image: Tensor) -> Tensor:
        """Projected text [B, text_dim] . upscaled image embedding [B, C, H, W] -> [B, 1, H, W]."""
        text = self.text_to_pixel(text_embedding)
        return torch.einsum("bc,bchw->bhw", text, upscaled_image).unsqueeze(1)

    def forward(
        self,
        image_embedding: Tensor,
        image_pe: Tensor,
        sparse: Tensor,
        dense: Tensor,
        text_embedding: Tensor,
        has_text: Tensor,
    ) -> tuple[Tensor, Tensor]:
        batch = sparse.shape[0]
        output_tokens = torch.cat([self.iou_token, self.mask_tokens]).expand(batch, -1, -1)
        tokens = torch.cat([output_tokens, sparse], dim=1)
        image = image_embedding + dense
        tokens, image = self.transformer(image, image_pe.expand_as(image), tokens)
        height, width = image_embedding.shape[-2:]
        upscaled = self.upscale(image.transpose(1, 2).reshape(batch, -1, height, width))
        weights = torch.stack(
            [
                hypernetwork(tokens[:, 1 + index])
                for index, hypernetwork in enumerate(self.hypernetworks)
            ],
            dim=1,
        )
        masks = torch.einsum("bkc,bchw->bkhw", weights, upscaled)
        on = has_text.reshape(-1, 1, 1, 1).to(masks.dtype)
        masks = masks + on * self.text_similarity(text_embedding, upscaled)
        return masks, self.iou_head(tokens[:, 0])
