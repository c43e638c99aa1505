"""Prompt side of the interactive segmenter: clicks, a box, a low-resolution mask and a text
embedding become sparse tokens and a dense map, always of the same shapes so the decoder exports
to ONNX with fixed inputs (absent prompts are switched off by 0/1 flags, not by omission)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from orstream.training.models.segmenter.image_encoder import LayerNorm2d, PositionEmbeddingRandom

PAD_LABEL = -1
"""Point label of an unused point slot (1 = positive click, 0 = negative click)."""


class PromptEncoder(nn.Module):
    """Points, box, mask and text prompts -> (sparse [B, N + 3, E], dense [B, E, h, w]).

    The sparse tokens are the N point slots, the two box corners and one text token; a box or
    text that is switched off becomes the learned "not a point" token, as a padded point does.

    Args:
        embed_dim: token and embedding width E.
        embedding_size: (h, w) of the image embedding.
        input_size: (H, W) of the image in pixels (point and box coordinates are in these pixels).
        mask_channels: hidden channels of the mask downscaler.
        text_dim: width of the precomputed sentence embedding (MiniLM: 384).
    """

    def __init__(
        self,
        embed_dim: int,
        embedding_size: tuple[int, int],
        input_size: tuple[int, int],
        mask_channels: int = 16,
        text_dim: int = 384,
    ) -> None:
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding_size = embedding_size
        self.input_size = input_size
        self.positional = PositionEmbeddingRandom(embed_dim // 2)
        # 0: negative click, 1: positive click, 2: box top-left, 3: box bottom-right.
        self.point_embeddings = nn.Parameter(torch.randn(4, embed_dim) * 0.02)
        self.not_a_point = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.text_projection = nn.Sequential(
            nn.Linear(text_dim, embed_dim), nn.GELU(), nn.Linear(embed_dim, embed_dim)
        )
        self.mask_downscaler = nn.Sequential(
            nn.Conv2d(1, mask_channels // 4, kernel_size=2, stride=2),
            LayerNorm2d(mask_channels // 4),
            nn.GELU(),
            nn.Conv2d(mask_channels // 4, mask_channels, kernel_size=2, stride=2),
            LayerNorm2d(mask_channels),
            nn.GELU(),
            nn.Conv2d(mask_channels, embed_dim, kernel_size=1),
        )
        self.no_mask = nn.Parameter(torch.randn(embed_dim) * 0.02)

    @property
    def mask_size(self) -> tuple[int, int]:
        """(4h, 4w): the size of a mask prompt, the same as the decoder's mask logits."""
        return (4 * self.embedding_size[0], 4 * self.embedding_size[1])

    def dense_positional(self) -> Tensor:
        """[1, E, h, w] positional encoding of the image embedding."""
        return self.positional.dense(self.embedding_size).unsqueeze(0)

    def embed_points(self, points: Tensor, labels: Tensor) -> Tensor:
        """Points [B, N, 2] (x, y pixels) with labels [B, N] in {1, 0, -1} -> [B, N, E]."""
        # Pixel centres, as SAM does.
        encoded = self.positional.points(points + 0.5, self.input_size)
        labels = labels.unsqueeze(-1)
        padded = labels == PAD_LABEL
        encoded = torch.where(padded, torch.zeros_like(encoded), encoded)
        encoded = encoded + torch.where(
            padded,
            self.not_a_point.expand_as(encoded),
            torch.where(
                labels == 1,
                self.point_embeddings[1].expand_as(encoded),
                self.point_embeddings[0].expand_as(encoded),
            ),
        )
        return encoded

    def embed_box(self, boxes: Tensor, has_box: Tensor) -> Tensor:
        """Boxes [B, 4] as (x0, y0, x1, y1) pixels, flags [B] -> corner tokens [B, 2, E]."""
        corners = boxes.reshape(-1, 2, 2) + 0.5
        encoded = self.positional.points(corners, self.input_size) + self.point_embeddings[2:4]
        on = has_box.reshape(-1, 1, 1).to(encoded.dtype)
        return on * encoded + (1 - on) * self.not_a_point

    def embed_text(self, text_embedding: Tensor, has_text: Tensor) -> Tensor:
        """Sentence embeddings [B, text_dim], flags [B] -> one token [B, 1, E]."""
        encoded = self.text_projection(text_embedding).unsqueeze(1)
        on = has_text.reshape(-1, 1, 1).to(encoded.dtype)
        return on * encoded + (1 - on) * self.not_a_point

    def embed_mask(self, mask_prompt: Tensor, has_mask: Tensor) -> Tensor:
        """Mask logits [B, 1, 4h, 4w], flags [B] -> dense prompt [B, E, h, w]."""
        encoded = self.mask_downscaler(mask_prompt)
        on = has_mask.reshape(-1, 1, 1, 1).to(encoded.dtype)
        return on * encoded + (1 - on) * self.no_mask.reshape(1, -1, 1, 1)

    def forward(
        self,
        points: Tensor,
        point_labels: Tensor,
        boxes: Tensor,
        has_box: Tensor,
        mask_prompt: Tensor,
        has_mask: Tensor,
        text_embedding: Tensor,
        has_text: Tensor,
    ) -> tuple[Tensor, Tensor]:
        """All prompts, each with its flag -> (sparse [B, N + 3, E], dense [B, E, h, w])."""
        sparse = torch.cat(
            [
                self.embed_points(points, point_labels),
                self.embed_box(boxes, has_box),
                self.embed_text(text_embedding, has_text),
            ],
            dim=1,
        )
        return sparse, self.embed_mask(mask_prompt, has_mask)
