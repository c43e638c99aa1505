"""Models orstream trains; importing this package registers each one in
:mod:`orstream.training.registry`."""

from orstream.training.models.segmenter import InteractiveSegmenter, imis_segmenter
from orstream.training.models.workflow import WorkflowRecognizer, pitvis_workflow

__all__ = ["InteractiveSegmenter", "WorkflowRecognizer", "imis_segmenter", "pitvis_workflow"]
