"""Image side of the interactive segmenter: a timm ViT, a SAM-style neck to a 1/16 resolution
embedding (optionally refined to 1/8 by a convolutional detail path), and the random-Fourier
dense positional encoding shared with the prompt encoder."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a [B, C, H, W] map (SAM's neck and upscaler use it)."""

    def __init__(self, channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        mean = x.mean(1, keepdim=True)
        var = (x - mean).pow(2).mean(1, keepdim=True)
        x = (x - mean) / torch.sqrt(var + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ImageEncoder(nn.Module):
    """timm ViT -> neck (1x1 conv, LN, 3x3 conv, LN) -> [B, embed_dim, H/s, W/s].

    With ``embedding_stride`` 8 the ViT's 1/16 map is upsampled twice (bilinear) and a detail
    path of three stride-2 convolutions on the image itself is added to it: thin objects (an
    instrument's shaft) get edges the 16-pixel patches blur, and the decoder's masks come out at
    1/2 of the input instead of 1/4. The detail path's last LayerNorm starts at zero, so a
    stride-8 encoder starts out as the upsampled stride-16 one (a stride-16 checkpoint is a
    warm start for it).

    Args:
        backbone: timm model name; a plain ViT (tokens out, e.g. ``vit_tiny_patch16_224``) or
            SAM's ``samvit_base_patch16`` (a [B, C, h, w] map out) both work.
        input_size: (height, width) of the images, multiples of 16.
        embed_dim: channels of the image embedding.
        pretrained: load timm's weights (only where they are available locally).
        backbone_args: extra keyword arguments for ``timm.create_model``.
        embedding_stride: 16 (the ViT's patch grid) or 8 (refined by the detail path).
    """

    def __init__(
        self,
        backbone: str,
        input_size: tuple[int, int],
        embed_dim: int,
        pretrained: bool = False,
        backbone_args: Mapping[str, Any] | None = None,
        embedding_stride: int = 16,
    ) -> None:
        super().__init__()
        if input_size[0] % 16 or input_size[1] % 16:
            raise ValueError(f"input_size must be multiples of 16, got {input_size!r}")
        if embedding_stride not in (8, 16):
            raise ValueError(f"embedding_stride must be 8 or 16, got {embedding_stride}")
        self.backbone = timm.create_model(
            backbone,
            pretrained=pretrained,
            num_classes=0,
            img_size=input_size,
            **dict(backbone_args or {}),
        )
        self.patch_grid = (input_size[0] // 16, input_size[1] // 16)
        self.grid = (input_size[0] // embedding_stride, input_size[1] // embedding_stride)
        self.num_prefix_tokens = int(getattr(self.backbone, "num_prefix_tokens", 0))
        channels = int(self._features(torch.zeros(1, 3, *input_size)).shape[1])
        self.neck = nn.Sequential(
            nn.Conv2d(channels, embed_dim, kernel_size=1, bias=False),
            LayerNorm2d(embed_dim),
            nn.Conv2d(embed_dim, embed_dim, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(embed_dim),
        )
        self.detail: nn.Sequential | None = None
        if embedding_stride == 8:
            last = LayerNorm2d(embed_dim)
            nn.init.zeros_(last.weight)
            self.detail = nn.Sequential(
                nn.Conv2d(3, 32, kernel_size=3, stride=2, padding=1),
                LayerNorm2d(32),
                nn.GELU(),
                nn.Conv2d(32, 64, kernel_size=3, stride=2, padding=1),
                LayerNorm2d(64),
                nn.GELU(),
                nn.Conv2d(64, embed_dim, kernel_size=3, stride=2, padding=1),
                last,
            )

    def _features(self, images: Tensor) -> Tensor:
        features: Tensor = self.backbone.forward_features(images)  # type: ignore[operator]
        if features.dim() == 4:
            # timm's SAM ViT already returns a channels-first map.
            return features
        tokens = features[:, self.num_prefix_tokens :]
        height, width = self.patch_grid
        if tokens.shape[1] != height * width:
            raise ValueError(
                f"backbone gives {tokens.shape[1]} patch tokens, expected {height}x{width} "
                "(the encoder needs a patch-16 ViT)"
            )
        return tokens.transpose(1, 2).reshape(tokens.shape[0], -1, height, width)

    def forward(self, images: Tensor) -> Tensor:
        """Normalised images [B, 3, H, W] -> embeddings [B, embed_dim, *grid]."""
        embedding: Tensor = self.neck(self._features(images))
        if self.detail is None:
            return embedding
        coarse = F.interpolate(embedding, size=self.grid, mode="bilinear", align_corners=False)
        return coarse + self.detail(images)


class PositionEmbeddingRandom(nn.Module):
    """SAM's positional encoding from random spatial frequencies (a fixed Gaussian matrix)."""

    def __init__(self, num_features: int, scale: float = 1.0) -> None:
        super().__init__()
        self.gaussian: Tensor
        self.register_buffer("gaussian", scale * torch.randn(2, num_features))

    def _encode(self, coords: Tensor) -> Tensor:
        # coords in [0, 1]; map to [-1, 1] before the random projection.
        projected = (2 * coords - 1) @ self.gaussian * (2 * math.pi)
        return torch.cat([torch.sin(projected), torch.cos(projected)], dim=-1)

    def dense(self, size: tuple[int, int]) -> Tensor:
        """[2 * num_features, h, w] encoding of every cell centre of an h x w grid."""
        height, width = size
        device = self.gaussian.device
        ys = (torch.arange(height, device=device, dtype=torch.float32) + 0.5) / height
        xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width
        grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)
        return self._encode(grid).permute(2, 0, 1)

    def points(self, coords: Tensor, image_size: tuple[int, int]) -> Tensor:
        """Pixel coordinates [..., 2] as (x, y) -> [..., 2 * num_features]."""
        scale = coords.new_tensor([image_size[1], image_size[0]])
        return self._encode(coords / scale)
