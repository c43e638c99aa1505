"""The one interface every inference backend (ONNX Runtime, TensorRT, torch) implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from orstream.package.card import Graph
from orstream.package.loading import ModelPackage

__all__ = ["Backend", "Graph"]


class Backend(Protocol):
    """Runs one graph of a model package: named arrays in, named arrays out.

    Implementations also provide:

    - a constructor accepting the keyword ``graph: Graph = "model"``: which ONNX graph of the
      package it runs, ``model.onnx`` or the prompt decoder (``decoder.onnx``); the backends
      that run models also take ``max_batch: int | None = None``, the most rows per call
      (default: the card's ``max_batch``; :mod:`~orstream.edge.backends.batching`);
    - a class method ``unavailable_reason(device) -> str | None`` (None when the backend can
      run on ``device`` here), which :func:`~orstream.edge.backends.create_backend` consults;
    - optionally a class attribute ``runs_model = False`` for a backend that computes nothing
      (the null backend): it is not held to the package's golden reference.

    Attributes:
        name: the backend's name in preference lists: "onnxruntime", "torch", "tensorrt",
            "null".
        label: after :meth:`load`, what runs the graph, as status lines and benchmarks show
            it: backend, device and, where it varies, precision and mode, e.g.
            "onnxruntime-cpu", "onnxruntime-cuda:0", "torch-cuda:0-fp16-graphs",
            "tensorrt-cuda:0-fp16", "null-cpu".
        precision: after :meth:`load`, the precision the graph computes in: "fp32", "fp16",
            "bf16" or "int8"; the golden check's tolerance follows it.
        max_batch: after :meth:`load`, the most rows :meth:`infer` takes per call: 1 for a
            package whose graphs run batch 1; for one with a dynamic batch, the card's
            ``max_batch`` unless the constructor was given another (a TensorRT engine's
            profiles bound it too).
    """

    name: str
    label: str
    precision: str
    max_batch: int

    def load(self, package: ModelPackage, device: str = "cpu") -> None:
        """Prepare the package's graph on ``device`` ("cpu", "cuda" or "cuda:N").

        Raises:
            OrstreamError: the graph cannot be loaded or does not match the package's card.
        """
        ...

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once: every graph input of the card by name -> every graph output by name
        (float outputs as float32 numpy arrays the caller owns)."""
        ...
