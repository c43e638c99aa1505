"""A backend that runs no model: zeros of the card's output shapes (as many rows as asked), at
once.

It measures what everything around a model costs (pre-processing, result plumbing, overlay,
gRPC): ``orstream bench runtime`` runs it beside the real backend.
"""

from __future__ import annotations

import numpy as np

from orstream.edge.backends.batching import batch_of
from orstream.edge.backends.protocol import Graph
from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage


class NullBackend:
    """Answers every call with zero outputs shaped as the package's card says."""

    name = "null"
    label = "null-cpu"
    precision = "fp32"
    runs_model = False
    """Zeros are not the model's outputs: the golden check does not apply."""

    def __init__(self, graph: Graph = "model") -> None:
        self.graph = graph
        self.max_batch = 1
        self._outputs: dict[str, np.ndarray] = {}

    @classmethod
    def unavailable_reason(cls, device: str) -> str | None:
        return None if device == "cpu" else "the null backend runs on cpu only"

    def load(self, package: ModelPackage, device: str = "cpu") -> None:
        reason = self.unavailable_reason(device)
        if reason is not None:
            raise OrstreamError(reason)
        _, outputs = package.card.graph_tensors(self.graph)
        self._outputs = {
            name: np.zeros(shape, dtype=dtype) for name, (shape, dtype) in outputs.items()
        }
        self.max_batch = package.card.max_batch

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if not self._outputs:
            raise OrstreamError("null backend: infer() before load()")
        rows = batch_of(inputs, self.max_batch, "null backend")
        return {name: np.repeat(value, rows, axis=0) for name, value in self._outputs.items()}
