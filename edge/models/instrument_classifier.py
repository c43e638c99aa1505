"""An instrument classification package on the edge: which instrument a tip crop shows.

The package's graph takes tip crops (:func:`orstream.segmentation.instrument_crop.tip_crop`)
as its image input and gives one probability per class of its ``instruments`` labels, class 0
being "no instrument" (a mask of tissue, a reflection or the sella, which the segmenter's
clicks find too).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from orstream.edge.backends import CPU_BACKENDS, Backend, create_backend
from orstream.errors import OrstreamError
from orstream.package.card import INSTRUMENT_CLASSIFICATION
from orstream.package.loading import ModelPackage
from orstream.package.preprocess import image_spec, preprocessor_for


class InstrumentClassifier:
    """Names instruments from their tip crops.

    Args:
        package: a loaded instrument classification package.
        backend: a backend with its ``model.onnx`` loaded.

    Raises:
        OrstreamError: the package is not an instrument classifier.
    """

    def __init__(self, package: ModelPackage, backend: Backend) -> None:
        card = package.card
        if (
            card.task != INSTRUMENT_CLASSIFICATION
            or len(card.outputs) != 1
            or card.outputs[0].labels is None
        ):
            raise OrstreamError(
                f"model package {package.root} ({card.task}) is not an instrument classifier "
                f"(task {INSTRUMENT_CLASSIFICATION}, one labelled output)"
            )
        self.package = package
        self.backend = backend
        self.preprocess = preprocessor_for(backend, image_spec(card))
        self.output = card.outputs[0].name
        labels = card.labels[card.outputs[0].labels]
        self.codes = np.array([label.code for label in labels])
        self.names = tuple(label.name for label in labels)
        self.label = f"{card.name}@{card.version}"

    @classmethod
    def load(
        cls, package: ModelPackage, device: str = "cpu", backends: Sequence[str] = CPU_BACKENDS
    ) -> InstrumentClassifier:
        """The package's graph on the first of ``backends`` that runs it here and passes its
        golden check (:func:`~orstream.edge.backends.create_backend`)."""
        return cls(package, create_backend(backends, package, device))

    def probabilities(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Class probabilities [N, classes] of N RGB uint8 crops, in as few calls as the
        backend's batch allows."""
        rows = []
        step = self.backend.max_batch
        for start in range(0, len(crops), step):
            tensor = self.preprocess.batch(crops[start : start + step])
            logits = np.asarray(
                self.backend.infer({self.preprocess.spec.name: tensor})[self.output]
            )
            shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
            rows.append(shifted / shifted.sum(axis=1, keepdims=True))
        return np.concatenate(rows) if rows else np.zeros((0, len(self.codes)), np.float32)
