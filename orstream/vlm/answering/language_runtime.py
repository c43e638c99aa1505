"""What runs a vision-language package's language model: the four calls serving needs.

Two runtimes implement it, ONNX Runtime on the package's graphs
(:mod:`orstream.vlm.answering.onnx_language`) and torch on its weights
(:mod:`orstream.vlm.answering.torch_language`); the batched greedy decoding above them
(:mod:`orstream.vlm.answering.batch_decoding`) is the same for both. Arrays are numpy on both sides:
the cache goes back and forth between calls, and numpy is what both runtimes share (torch views CPU
arrays without copying).

The tensors are the package's (:data:`~orstream.package.card.VLM_OUTPUTS`): prompts left-padded
with an int64 mask over every key, the cache batch-first ``[B, layers, kv_heads, P, head_dim]``.
Before serving, a runtime must reproduce the package's golden reference (:func:`check_reference`).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import (
    VLM_EMBEDS,
    VLM_FEATURES,
    VLM_MASK,
    VLM_OUTPUTS,
    VLM_PAST,
    VLM_PROJECTED,
    Graph,
)
from orstream.package.loading import ModelPackage

REFERENCE_TOLERANCE = 1e-4
Cache = tuple[np.ndarray, np.ndarray]
"""(keys, values), each float32 [B, layers, kv_heads, P, head_dim]."""


class LanguageRuntime(Protocol):
    """A loaded language model with its projectors and token embedding."""

    name: str
    """The runtime, for logs and results (``onnx``, ``torch``)."""

    def embed(self, ids: np.ndarray) -> np.ndarray:
        """Token embeddings [B, T, W] of int64 ids [B, T]."""
        ...

    def project(self, source: str, features: np.ndarray) -> np.ndarray:
        """Embeddings [B, N, W] of a source's vision features [B, N, F]."""
        ...

    def prefill(self, embeds: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, Cache]:
        """(logits [B, T, V], the cache of the T tokens) of left-padded prompts."""
        ...

    def decode(self, embed: np.ndarray, mask: np.ndarray, cache: Cache) -> tuple[np.ndarray, Cache]:
        """(logits [B, V], the cache grown by one) of one token [B, 1, W] after ``cache``;
        ``mask`` [B, P + 1] covers the past and the token."""
        ...


def check_reference(runtime: LanguageRuntime, package: ModelPackage) -> None:
    """Refuse a runtime that does not reproduce the package's golden reference within
    :data:`REFERENCE_TOLERANCE` on every graph (no reference recorded: nothing to check).

    Raises:
        OrstreamError: naming the graph and output that differ.
    """
    for graph in package.card.graphs:
        reference = package.reference(graph)
        if reference is None:
            return
        got = run_graph(runtime, graph, reference.inputs)
        for name, expected in reference.outputs.items():
            difference = float(np.abs(got[name] - expected).max())
            if difference > REFERENCE_TOLERANCE:
                raise OrstreamError(
                    f"{package.root}: the {runtime.name} runtime's {graph} {name} is "
                    f"{difference:.3g} from the golden reference (at most "
                    f"{REFERENCE_TOLERANCE:g}): refusing it"
                )


def run_graph(
    runtime: LanguageRuntime, graph: Graph, inputs: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """One graph of the package called through ``runtime``, by the package's tensor names."""
    if graph == "model":
        logits, (keys, values) = runtime.prefill(inputs[VLM_EMBEDS], inputs[VLM_MASK])
    elif graph == "decode":
        cache = (inputs[VLM_PAST[0]], inputs[VLM_PAST[1]])
        logits, (keys, values) = runtime.decode(inputs[VLM_EMBEDS], inputs[VLM_MASK], cache)
    else:
        source = graph.removeprefix("projector_")
        return {VLM_PROJECTED: runtime.project(source, inputs[VLM_FEATURES])}
    return dict(zip(VLM_OUTPUTS, (logits, keys, values), strict=True))
