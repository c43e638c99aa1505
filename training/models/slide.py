"""The slide models: a patch encoder for tiles and an attention-MIL slide encoder over them.

The patch encoder is a timm backbone (by name, random weights; ``mobilenetv3_small_050`` by
default, about 0.6 M weights, so a few thousand tiles a minute train on one CPU core) with a
projection to ``feature_dim`` (512, SlideChat's patch feature width) and two heads that
supervise it on phantom tiles: the tissue class (the majority class of the region mask under
each tile) and, for tumour tiles, the growth pattern (glandular or solid), without which the
features need not tell the slide subtypes apart.

A slide's tiles are read and encoded at once, so the encoder must cost clearly less than
reading a tile or the analysis waits on it. ``stem`` replaces the backbone's stride-2 3x3
stem convolution with a ``kernel`` x ``kernel`` convolution of stride ``stride``, e.g. (4, 4)
(ConvNeXt's patchify stem): every later layer sees a quarter of the pixels. For
``mobilenetv3_small_050`` at 112 px that is about 2x the tiles per second on one ONNX Runtime
thread (8,888 against 3,952 and 7,119 against 3,573 tiles a second in batches of 16, two paired
timings); the tissue classes are colour and texture over tens of microns, which a 4 µm step
still resolves.

The slide encoder is gated attention-MIL (Ilse et al., 2018) rather than SlideChat's LongNet.
Tiles of 224 level-0 px (112 px at 1 µm/px, or 224 px at 0.5 µm/px) number 50 to 250 on an
8,192 px phantom slide, about six times as many at 20,000 px, and tens of thousands on a
100,000 px slide. Gated attention costs one small MLP per tile and a softmax: linear in the
tile count, tiny in memory, and fast on CPU at any of those counts, where two layers of dilated
attention cost several times more and need far more slides to train than a phantom set of a
dozen. Its attention weights and per-tile scores are the tumour heatmap directly, and it learns
from slide labels alone (the per-tile tumour head is also supervised where masks exist).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from orstream.slides.phantom.tissue_classes import SUBTYPES, TissueClass
from orstream.training.registry import register_model


class PatchEncoder(nn.Module):
    """Tiles [B, 3, H, W] (normalised with ImageNet mean/std) -> (features [B, feature_dim],
    tissue-class logits [B, classes], growth-pattern logits [B, patterns]).

    Args:
        backbone: timm model name, built with random weights and no classifier.
        feature_dim: width of the features the slide encoder reads.
        classes: tissue classes (the phantom's mask classes).
        patterns: tumour growth patterns (the phantom's subtypes but ``none``).
        tile: tile side in pixels the encoder is trained on (kept for export and reading).
        stem: (kernel, stride) of a convolution that replaces the backbone's ``conv_stem``
            (module docstring; padded by ``(kernel - stride) // 2``); None keeps timm's stem.
    """

    def __init__(
        self,
        backbone: str = "mobilenetv3_small_050",
        feature_dim: int = 512,
        classes: int = len(TissueClass),
        patterns: int = len(SUBTYPES) - 1,
        tile: int = 112,
        stem: tuple[int, int] | None = None,
    ) -> None:
        super().__init__()
        import timm

        self.tile = tile
        self.feature_dim = feature_dim
        self.backbone = timm.create_model(backbone, pretrained=False, num_classes=0)
        if stem is not None:
            self.backbone.conv_stem = _strided_stem(self.backbone, backbone, *stem)
        with torch.no_grad():  # timm's num_features misses some models' head convolution
            width = self.backbone.eval()(torch.zeros(1, 3, tile, tile)).shape[1]
        self.backbone.train()
        self.project = nn.Sequential(nn.Linear(width, feature_dim), nn.LayerNorm(feature_dim))
        self.head = nn.Sequential(nn.GELU(), nn.Linear(feature_dim, classes))
        self.pattern_head = nn.Sequential(nn.GELU(), nn.Linear(feature_dim, patterns))

    def forward(self, tiles: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        features: Tensor = self.project(self.backbone(tiles))
        return features, self.head(features), self.pattern_head(features)


def _strided_stem(backbone: nn.Module, name: str, kernel: int, stride: int) -> nn.Conv2d:
    """A ``kernel`` x ``kernel`` stem convolution of ``stride`` in place of the backbone's."""
    old = getattr(backbone, "conv_stem", None)
    if not isinstance(old, nn.Conv2d) or not 1 <= stride <= kernel:
        raise ValueError(
            f"a stem of kernel {kernel}, stride {stride} needs 1 <= stride <= kernel and a "
            f"backbone with a convolution stem (conv_stem): {name}"
        )
    padding = (kernel - stride) // 2
    return nn.Conv2d(old.in_channels, old.out_channels, kernel, stride, padding, bias=False)


class SlideEncoder(nn.Module):
    """Tile features [B, N, feature_dim] with a validity mask [B, N] -> a dict of
    ``subtype`` logits [B, subtypes], ``fraction`` [B] (tumour share of the tissue, the mean
    of the valid tiles' tumour probabilities), ``tile_logits`` [B, N] (tumour per tile) and
    ``attention`` [B, N] (gated attention, summing to 1 over each slide's valid tiles).

    Args:
        feature_dim: width of the patch features.
        hidden: width of the per-tile embedding and of the attention MLP.
        subtypes: slide classes (``none`` first: tumour present is any other class).
        dropout: on the tile embeddings, in training.
    """

    def __init__(
        self,
        feature_dim: int = 512,
        hidden: int = 128,
        subtypes: int = len(SUBTYPES),
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.feature_dim = feature_dim
        self.embed = nn.Sequential(nn.Linear(feature_dim, hidden), nn.GELU(), nn.Dropout(dropout))
        self.attend_v = nn.Linear(hidden, hidden)
        self.attend_u = nn.Linear(hidden, hidden)
        self.attend_w = nn.Linear(hidden, 1)
        self.tile_head = nn.Linear(hidden, 1)
        self.slide_head = nn.Linear(hidden, subtypes)

    def forward(self, features: Tensor, valid: Tensor) -> dict[str, Tensor]:
        embedded = self.embed(features)
        gate = torch.tanh(self.attend_v(embedded)) * torch.sigmoid(self.attend_u(embedded))
        scores = self.attend_w(gate).squeeze(-1).masked_fill(~valid, float("-inf"))
        attention = torch.softmax(scores, dim=-1)
        pooled = (attention.unsqueeze(-1) * embedded).sum(1)
        tile_logits = self.tile_head(embedded).squeeze(-1)
        weights = valid.to(features.dtype)
        fraction = (torch.sigmoid(tile_logits) * weights).sum(1) / weights.sum(1).clamp(min=1)
        return {
            "subtype": self.slide_head(pooled),
            "fraction": fraction,
            "tile_logits": tile_logits,
            "attention": attention,
        }


@register_model
def slide_patch_encoder(**kwargs: Any) -> PatchEncoder:
    """The shipped patch encoder's architecture."""
    return PatchEncoder(**kwargs)


@register_model
def slide_mil_encoder(**kwargs: Any) -> SlideEncoder:
    """The shipped slide encoder's architecture (gated attention-MIL)."""
    return SlideEncoder(**kwargs)
