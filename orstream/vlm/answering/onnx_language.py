"""A vision-language package's language model on ONNX Runtime: the prefill, decode and
projector graphs, and the token embedding looked up in ``weights.npz``.

Why the embedding is an array and not a graph: a lookup is a row copy, exact in numpy, and a
graph for it would only add a call per step; the same array is the tied output head inside the
prefill and decode graphs, so both read one set of weights. The projectors are networks
(LayerNorm, two linear layers, GELU) and are graphs, checked for parity like the language
model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import (
    VLM,
    VLM_EMBEDS,
    VLM_FEATURES,
    VLM_MASK,
    VLM_PAST,
    VLMSpec,
)
from orstream.package.loading import ModelPackage, load_package
from orstream.vlm.answering.language_runtime import Cache, check_reference

EMBEDDING_WEIGHT = "language.embedding.weight"


def vlm_section(package: ModelPackage) -> VLMSpec:
    """The card's vlm section.

    Raises:
        OrstreamError: the package is not a vision-language package.
    """
    if package.card.vlm is None:
        raise OrstreamError(
            f"model package {package.root} is a {package.card.task} package, not {VLM}"
        )
    return package.card.vlm


def open_vlm_package(path: Path | ModelPackage) -> ModelPackage:
    """A checked vision-language package (every file's sha256 against the card)."""
    package = path if isinstance(path, ModelPackage) else load_package(Path(path))
    vlm_section(package)
    return package


class OnnxLanguage:
    """Args:
    package: a vision-language package (or its folder).
    threads: ONNX Runtime intra-op threads per session.
    check: reproduce the golden reference first (off only while the exporter writes it).

    Raises:
        OrstreamError: not a vlm package, a file that is not the card's, or a graph that does
            not reproduce the golden reference.
    """

    name = "onnx"

    def __init__(self, package: Path | ModelPackage, threads: int = 1, check: bool = True) -> None:
        import onnxruntime as ort

        self.package = open_vlm_package(package)
        spec = vlm_section(self.package)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1

        def session(path: Path) -> Any:
            return ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )

        self._prefill = session(self.package.model_path)
        self._decode = session(self.package.graph_path("decode"))
        self._projectors: dict[str, Any] = {
            source: session(self.package.root / graph.file)
            for source, graph in spec.projectors.items()
        }
        with np.load(self.package.root / spec.weights_file, allow_pickle=False) as weights:
            self._embedding = np.ascontiguousarray(weights[EMBEDDING_WEIGHT], np.float32)
        if check:
            check_reference(self, self.package)

    def embed(self, ids: np.ndarray) -> np.ndarray:
        return self._embedding[ids]

    def project(self, source: str, features: np.ndarray) -> np.ndarray:
        session = self._projectors.get(source)
        if session is None:
            raise OrstreamError(f"this model has no {source} projector")
        result: np.ndarray = session.run(None, {VLM_FEATURES: features.astype(np.float32)})[0]
        return result

    def prefill(self, embeds: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, Cache]:
        logits, keys, values = self._prefill.run(
            None, {VLM_EMBEDS: embeds.astype(np.float32), VLM_MASK: mask.astype(np.int64)}
        )
        return logits, (keys, values)

    def decode(self, embed: np.ndarray, mask: np.ndarray, cache: Cache) -> tuple[np.ndarray, Cache]:
        logits, keys, values = self._decode.run(
            None,
            {
                VLM_EMBEDS: embed.astype(np.float32),
                VLM_MASK: mask.astype(np.int64),
                VLM_PAST[0]: cache[0],
                VLM_PAST[1]: cache[1],
            },
        )
        return logits, (keys, values)
