"""Models orstream trains; importing this package registers each one in
:mod:`orstream.training.registry`."""

from orstream.training.models.instrument_classifier import (
    InstrumentClassifier,
    instrument_classifier,
)
from orstream.training.models.segmenter import InteractiveSegmenter, imis_segmenter
from orstream.training.models.slide import (
    PatchEncoder,
    SlideEncoder,
    slide_mil_encoder,
    slide_patch_encoder,
)
from orstream.training.models.tokenizer import VisualTokenizer, meditok_small
from orstream.training.models.videotext import VideoTextModel, ophclip_small
from orstream.training.models.vlm import gmai_vl_small
from orstream.training.models.workflow import WorkflowRecognizer, pitvis_workflow

__all__ = [
    "InstrumentClassifier",
    "InteractiveSegmenter",
    "PatchEncoder",
    "SlideEncoder",
    "VideoTextModel",
    "VisionLanguageModel",
    "VisualTokenizer",
    "WorkflowRecognizer",
    "gmai_vl_small",
    "imis_segmenter",
    "instrument_classifier",
    "meditok_small",
    "ophclip_small",
    "pitvis_workflow",
    "slide_mil_encoder",
    "slide_patch_encoder",
]
