"""The GMAI-VL-style vision-language model in the registry: ``gmai_vl_small``, built from the
plain ``nn.Module``s of :mod:`orstream.vlm.model` (which the server's torch runtime loads
packages into without importing training code)."""

from __future__ import annotations

from orstream.training.registry import register_model
from orstream.vlm.model import VisionLanguageModel


@register_model
def gmai_vl_small(
    vocab_size: int = 2048,
    image_id: int = 3,
    feature_widths: dict[str, int] | None = None,
    width: int = 256,
    layers: int = 4,
    heads: int = 8,
    kv_heads: int = 2,
    mlp_hidden: int = 688,
) -> VisionLanguageModel:
    """GMAI-VL at CPU scale: a 4-layer, 256-wide decoder (8 query heads over 2 key/value
    heads), projectors from the segmenter's 128-d frame tokens and the slide package's 512-d
    tile features."""
    return VisionLanguageModel(
        vocab_size,
        image_id,
        feature_widths or {"surgical": 128, "slide": 512},
        width=width,
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        mlp_hidden=mlp_hidden,
    )
