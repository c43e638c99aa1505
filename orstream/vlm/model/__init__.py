"""The GMAI-VL-style vision-language model as plain ``nn.Module``s: a decoder-only language
model (rotary positions, grouped-query attention, an explicit KV cache), MLP projectors from the
project's frozen vision features into its embedding space, and their composition.

Training builds it (registered as ``gmai_vl_small`` in :mod:`orstream.training.models.vlm`), and
the torch runtime (:mod:`orstream.vlm.answering.torch_language`) rebuilds it from a package's
weights; both import it from here, so serving a package on torch needs torch, not the training code.
Importing this package imports torch.
"""

from orstream.vlm.model.language_model import DecoderLanguageModel
from orstream.vlm.model.vision_language import VisionLanguageModel

__all__ = ["DecoderLanguageModel", "VisionLanguageModel"]
