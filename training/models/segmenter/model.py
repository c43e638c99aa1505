"""IMIS-Net-style interactive segmenter (SAM structure): a timm ViT image encoder, a prompt
encoder for clicks, a box, a low-resolution mask and a text embedding, and a two-way transformer
mask decoder with 3 candidate masks and an IoU head.

The forward pass is split the way SAM is deployed: :meth:`InteractiveSegmenter.encode_image` runs
once per frame, :meth:`InteractiveSegmenter.decode` once per prompt on the cached embedding.
``decode`` takes every prompt with fixed shapes (a fixed number of point slots padded with label
-1, a box, a mask prompt and a text embedding, each switched on or off by a 0/1 flag per sample),
so both halves export to ONNX with static inputs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from orstream.training.models.segmenter.image_encoder import ImageEncoder
from orstream.training.models.segmenter.mask_decoder import MaskDecoder
from orstream.training.models.segmenter.prompt_encoder import PromptEncoder
from orstream.training.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class InteractiveSegmenter(nn.Module):
    """Masks from clicks, boxes, a previous mask and text.

    Args:
        backbone: timm ViT name of the image encoder (patch 16; built for ``input_size``).
        input_size: (height, width) of the images, multiples of 16.
        embed_dim: width of the image embedding and of the prompt tokens (divisible by 8).
        decoder_depth: two-way transformer blocks in the mask decoder.
        num_heads: attention heads in the mask decoder.
        mlp_dim: hidden width of the decoder's token MLPs.
        mask_channels: hidden channels of the mask prompt downscaler.
        text_dim: width of the precomputed sentence embedding (MiniLM: 384).
        num_masks: candidate masks per prompt.
        pretrained: load the backbone's timm weights (only where they exist locally).
        backbone_args: extra keyword arguments for ``timm.create_model`` (e.g. ``{"depth": 4}``
            for a shallower ViT).
        embedding_stride: 16, or 8 for an embedding refined by the image encoder's detail path
            (masks at 1/2 of the input instead of 1/4; see :class:`ImageEncoder`).
    """

    def __init__(
        self,
        backbone: str = "vit_tiny_patch16_224",
        input_size: Sequence[int] = (128, 128),
        embed_dim: int = 128,
        decoder_depth: int = 2,
        num_heads: int = 4,
        mlp_dim: int = 512,
        mask_channels: int = 16,
        text_dim: int = 384,
        num_masks: int = 3,
        pretrained: bool = False,
        backbone_args: Mapping[str, Any] | None = None,
        embedding_stride: int = 16,
    ) -> None:
        super().__init__()
        if len(input_size) != 2:
            raise ValueError(f"input_size must be (height, width), got {input_size!r}")
        if embed_dim % 8:
            raise ValueError(f"embed_dim must be divisible by 8, got {embed_dim}")
        self.input_size: tuple[int, int] = (int(input_size[0]), int(input_size[1]))
        self.text_dim = text_dim
        self.image_encoder = ImageEncoder(
            backbone, self.input_size, embed_dim, pretrained, backbone_args, embedding_stride
        )
        self.prompt_encoder = PromptEncoder(
            embed_dim, self.image_encoder.grid, self.input_size, mask_channels, text_dim
        )
        self.mask_decoder = MaskDecoder(
            embed_dim, num_masks, decoder_depth, num_heads, mlp_dim, text_dim
        )
        config = getattr(self.image_encoder.backbone, "pretrained_cfg", None) or {}
        self.mean: tuple[float, ...] = tuple(config.get("mean", IMAGENET_MEAN))
        self.std: tuple[float, ...] = tuple(config.get("std", IMAGENET_STD))

    @property
    def mask_size(self) -> tuple[int, int]:
        """4x the embedding grid (H/4, W/4 at stride 16; H/2, W/2 at stride 8): size of the
        mask logits and of a mask prompt."""
        return self.prompt_encoder.mask_size

    def encode_image(self, images: Tensor) -> Tensor:
        """Images [B, 3, H, W] (RGB 0..1 normalised by mean/std) -> [B, E, *grid] (grid: H/16,
        W/16, or H/8, W/8 with ``embedding_stride`` 8)."""
        return self.image_encoder(images)

    def decode(
        self,
        embeddings: Tensor,
        points: Tensor,
        point_labels: Tensor,
        boxes: Tensor | None = None,
        mask_prompt: Tensor | None = None,
        text_embedding: Tensor | None = None,
        has_box: Tensor | None = None,
        has_mask: Tensor | None = None,
        has_text: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Prompts on cached image embeddings -> (mask logits [B, 3, *mask_size], IoU [B, 3]).

        Args:
            embeddings: [B, E, *grid] from :meth:`encode_image`.
            points: [B, N, 2] click positions (x, y) in input pixels; N may be 0.
            point_labels: [B, N] 1 positive, 0 negative, -1 an unused slot.
            boxes: [B, 4] (x0, y0, x1, y1) in input pixels.
            mask_prompt: [B, 1, *mask_size] mask logits, e.g. the previous round's best mask.
            text_embedding: [B, text_dim] sentence embedding of the target's description.
            has_box, has_mask, has_text: [B] 0/1 flags saying which samples use that prompt; a
                flag left out is 1 where the prompt is given and 0 where it is None (an exported
                graph always passes all prompts with their flags).
        """
        batch = embeddings.shape[0]
        boxes, has_box = _prompt(boxes, has_box, (batch, 4), embeddings)
        mask_prompt, has_mask = _prompt(
            mask_prompt, has_mask, (batch, 1, *self.mask_size), embeddings
        )
        text_embedding, has_text = _prompt(
            text_embedding, has_text, (batch, self.text_dim), embeddings
        )
        sparse, dense = self.prompt_encoder(
            points.to(embeddings.dtype),
            point_labels,
            boxes,
            has_box,
            mask_prompt,
            has_mask,
            text_embedding,
            has_text,
        )
        return self.mask_decoder(
            embeddings,
            self.prompt_encoder.dense_positional(),
            sparse,
            dense,
            text_embedding,
            has_text,
        )

    def forward(
        self,
        images: Tensor,
        points: Tensor,
        point_labels: Tensor,
        boxes: Tensor | None = None,
        mask_prompt: Tensor | None = None,
        text_embedding: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """:meth:`encode_image` then :meth:`decode` (flags from which prompts are given)."""
        return self.decode(
            self.encode_image(images), points, point_labels, boxes, mask_prompt, text_embedding
        )


def _prompt(
    value: Tensor | None, flag: Tensor | None, shape: tuple[int, ...], like: Tensor
) -> tuple[Tensor, Tensor]:
    """A prompt tensor and its [B] flag, zeros and flag 0 for a prompt that is not given."""
    batch = shape[0]
    if value is None:
        value = like.new_zeros(shape)
        default = 0.0
    else:
        value = value.to(like.dtype)
        default = 1.0
    if flag is None:
        flag = like.new_full((batch,), default)
    return value, flag.to(like.dtype)


@register_model
def imis_segmenter(**kwargs: object) -> InteractiveSegmenter:
    """The IMIS-style interactive segmenter (see :class:`InteractiveSegmenter` for arguments)."""
    return InteractiveSegmenter(**kwargs)  # type: ignore[arg-type]
