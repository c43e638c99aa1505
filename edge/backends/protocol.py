"""The one interface every inference backend (ONNX Runtime, TensorRT, torch) implements."""

from __future__ import annotations

from typing import Protocol

import numpy as np

from orstream.model_package import ModelPackage


class Backend(Protocol):
    """Runs one model package: named arrays in, named arrays out.

    Implementations also provide a class method ``unavailable_reason(device) -> str | None``
    (None when the backend can run on ``device`` here), which :func:`create_backend` consults.
    """

    name: str

    def load(self, package: ModelPackage, device: str = "cpu") -> None:
        """Prepare the package's model on ``device`` ("cpu", "cuda" or "cuda:N").

        Raises:
            OrstreamError: the model cannot be loaded or does not match the package's card.
        """
        ...

    def infer(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run once: every graph input of the card by name -> every graph output by name."""
        ...
