"""IMIS-style interactive segmenter: image encoder, prompt encoder, two-way mask decoder."""

from orstream.training.models.segmenter.model import InteractiveSegmenter, imis_segmenter
from orstream.training.models.segmenter.prompt_encoder import PAD_LABEL

__all__ = ["PAD_LABEL", "InteractiveSegmenter", "imis_segmenter"]
