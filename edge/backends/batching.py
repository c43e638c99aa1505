"""How many rows a backend call carries, and how many a loaded backend takes.

A package with a dynamic batch (:attr:`~orstream.package.card.ModelCard.dynamic_batch`) runs
calls of several rows: the inputs of several video streams stacked on axis 0, one row each,
state inputs included. Every backend takes 1 to ``max_batch`` rows per call; a package whose
graphs run batch 1 takes 1.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import Graph
from orstream.package.loading import ModelPackage


def backend_max_batch(package: ModelPackage, requested: int | None, who: str) -> int:
    """The most rows per call a backend takes for ``package``: ``requested``, or the card's
    ``max_batch`` when None.

    Raises:
        OrstreamError: ``requested`` is below 1, or above 1 for a package whose graphs run
            batch 1.
    """
    card = package.card
    if requested is None:
        return card.max_batch
    if requested < 1:
        raise OrstreamError(f"{who}: max_batch must be at least 1, not {requested}")
    if requested > 1 and not card.dynamic_batch:
        raise OrstreamError(
            f"{who}: package {card.name!r} runs batch 1 only (no dynamic batch in its card; "
            f"convert it with orstream export batch --package {package.root})"
        )
    return requested


def batch_of(inputs: Mapping[str, Any], max_batch: int, who: str) -> int:
    """The rows of a call: axis 0 of every input, the same for all, 1 to ``max_batch``.

    Raises:
        OrstreamError: an input without axis 0, inputs of different batches, or a batch
            outside 1 to ``max_batch``.
    """
    sizes = {}
    for name, value in inputs.items():
        shape = tuple(getattr(value, "shape", ()))
        if not shape:
            raise OrstreamError(f"{who}: input {name!r} has no batch axis (shape {list(shape)})")
        sizes[name] = int(shape[0])
    batches = set(sizes.values())
    if len(batches) > 1:
        raise OrstreamError(f"{who}: inputs disagree on the batch (axis 0): {sizes}")
    batch = batches.pop() if batches else 1
    if not 1 <= batch <= max_batch:
        reason = "1 (its package runs batch 1 only)" if max_batch == 1 else f"1 to {max_batch}"
        raise OrstreamError(f"{who}: a call of {batch} rows; this backend takes {reason}")
    return batch


def prepare_batches(backend: Any, package: ModelPackage, graph: Graph = "model") -> None:
    """One call of every batch size the backend takes, on the package's golden input, before
    frames flow: a backend that prepares per batch size (torch on CUDA captures a graph for
    each) does it now rather than on a live frame. Nothing to do without a golden reference."""
    reference = package.reference(graph)
    if reference is None:
        return

    for rows in range(1, backend.max_batch + 1):
        backend.infer(
            {name: np.repeat(value, rows, axis=0) for name, value in reference.inputs.items()}
        )
