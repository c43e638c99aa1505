"""Models orstream trains; importing this package registers each one in
:mod:`orstream.training.registry`."""

from orstream.training.models.workflow import WorkflowRecognizer, pitvis_workflow

__all__ = ["WorkflowRecognizer", "pitvis_workflow"]
