"""The GMAI-VL-style vision-language model: a decoder-only language model (rotary positions,
grouped-query attention, an explicit KV cache), MLP projectors from the project's frozen
vision features into its embedding space, and their composition, registered as
``gmai_vl_small``."""

from orstream.training.models.vlm.language_model import DecoderLanguageModel
from orstream.training.models.vlm.vision_language import VisionLanguageModel, gmai_vl_small

__all__ = ["DecoderLanguageModel", "VisionLanguageModel", "gmai_vl_small"]
