"""The tokenizer's frozen teacher: the shipped interactive segmenter's image encoder, in torch.

No pretrained image encoder (and no LPIPS network) can be downloaded here, so the tokenizer
learns its perceptual loss and its stage-1 visual alignment from the best trained image encoder
the project has, the interactive segmenter package's
(:func:`~orstream.training.models.segmenter.from_package.load_image_encoder` rebuilds it from
the package's ONNX weights and checks it against the package's golden reference).

:meth:`SegmenterTeacher.forward` gives the pooled image embedding (the stage-1 target) and the
activations the perceptual loss compares: the detail path's first two convolutional stages
(1/2 and 1/4 resolution) and the outputs of every other ViT block (1/16), compared LPIPS-style
(unit-length channel vectors, squared distance) by :func:`perceptual_distance`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orstream.errors import OrstreamError
from orstream.training.models.segmenter.from_package import load_image_encoder
from orstream.training.models.segmenter.image_encoder import ImageEncoder


class SegmenterTeacher(nn.Module):
    """The segmenter package's image encoder, frozen (build it with :meth:`load`).

    Args:
        encoder: the image encoder, weights loaded.
        mean: the package's input mean (per channel, on 0..1 pixels).
        std: the package's input std.
        block_layers: ViT blocks whose outputs the perceptual loss compares.
    """

    def __init__(
        self,
        encoder: ImageEncoder,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        block_layers: tuple[int, ...] = (1, 3, 5),
    ) -> None:
        super().__init__()
        if encoder.detail is None:
            raise OrstreamError("the teacher needs an image encoder with a detail path")
        self.encoder = encoder.eval().requires_grad_(False)
        self.input_size = (encoder.patch_grid[0] * 16, encoder.patch_grid[1] * 16)
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self._captured: list[Tensor] = []
        watched: list[nn.Module] = [encoder.detail[2], encoder.detail[5]]
        blocks: Any = encoder.backbone.blocks
        watched += [blocks[index] for index in block_layers]
        for module in watched:
            module.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        self._captured.append(output)

    @classmethod
    def load(
        cls, package: Path, backbone: str = "vit_tiny_patch16_224", num_heads: int = 3
    ) -> SegmenterTeacher:
        """The image encoder of an interactive segmenter package, checked against the package's
        reference output.

        Args:
            package: the package folder (``edge/packages/imis_segmenter``).
            backbone: timm name of the ViT it was trained with.
            num_heads: its attention heads (not visible in the weights).

        Raises:
            OrstreamError: as :func:`load_image_encoder`.
        """
        packaged = load_image_encoder(Path(package), backbone, num_heads)
        return cls(packaged.encoder, packaged.mean, packaged.std)

    def train(self, mode: bool = True) -> SegmenterTeacher:
        # Frozen: stays in eval mode whatever the owner does.
        super().train(False)
        return self

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Images [B, 3, H, W] in [-1, 1] (any size: resized to the package's input size) ->
        (pooled image embedding [B, C], activations [B, C_i, ...] for the perceptual loss)."""
        pixels = (images + 1) / 2
        resized = F.interpolate(pixels, size=self.input_size, mode="area")
        self._captured = []
        embedding: Tensor = self.encoder((resized - self.mean) / self.std)
        # ViT blocks give tokens [B, N, C]: channels first like the conv activations.
        features = [f if f.dim() == 4 else f.transpose(1, 2) for f in self._captured]
        self._captured = []
        return embedding.mean(dim=(2, 3)), features


def perceptual_distance(first: list[Tensor], second: list[Tensor]) -> Tensor:
    """LPIPS without learned weights: per layer, the squared distance of unit-length channel
    vectors averaged over positions, summed over layers."""
    total = first[0].new_zeros(())
    for a, b in zip(first, second, strict=True):
        total = total + (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(dim=1).mean()
    return total
