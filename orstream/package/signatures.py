"""The check that an ONNX graph's tensors match its card.

Shared by the exporter and the edge backends, which each read the graph with their own library
and pass what they see here. In a package with a dynamic batch
(:attr:`~orstream.package.card.ModelCard.dynamic_batch`) axis 0 of every graph tensor must be
symbolic where the card says 1; otherwise every dimension must be the card's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from orstream.errors import OrstreamError
from orstream.package.card import BATCH_AXIS_NAME, CARD_FILE, Graph, GraphShape, ModelCard


def _format_shape(shape: GraphShape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _fits(graph_shape: GraphShape, shape: tuple[int, ...], dynamic: bool) -> bool:
    if not dynamic:
        return tuple(graph_shape) == shape
    return (
        len(graph_shape) == len(shape) >= 1
        and not isinstance(graph_shape[0], int)
        and tuple(graph_shape[1:]) == shape[1:]
    )


def check_graph_signature(
    card: ModelCard,
    inputs: Mapping[str, tuple[GraphShape, str]],
    outputs: Mapping[str, tuple[GraphShape, str]],
    source: Path,
    graph: Graph = "model",
) -> None:
    """Refuse an ONNX graph whose tensors (names, shapes, dtypes) differ from the card's.

    Args:
        card: the package's card.
        inputs: the graph's inputs as its reader sees them: name -> (shape, numpy dtype name).
        outputs: the graph's outputs, likewise.
        source: the ONNX file, named in the error.
        graph: which graph of the package it is (its tensors are in that section of the card).

    Raises:
        OrstreamError: the card has no such graph, or naming the first tensor that differs.
    """
    expected_inputs, expected_outputs = card.graph_tensors(graph)
    _check_tensors(expected_inputs, expected_outputs, inputs, outputs, source, card.dynamic_batch)


def _check_tensors(
    expected_inputs: Mapping[str, tuple[tuple[int, ...], str]],
    expected_outputs: Mapping[str, tuple[tuple[int, ...], str]],
    inputs: Mapping[str, tuple[GraphShape, str]],
    outputs: Mapping[str, tuple[GraphShape, str]],
    source: Path,
    dynamic: bool,
) -> None:
    for kind, graph, expected in (
        ("input", inputs, expected_inputs),
        ("output", outputs, expected_outputs),
    ):
        missing = [name for name in expected if name not in graph]
        unexpected = [name for name in graph if name not in expected]
        if missing or unexpected:
            raise OrstreamError(
                f"{source} does not match {CARD_FILE}: graph {kind}s {list(graph)}, "
                f"card {kind}s {list(expected)}"
            )
        for name, (shape, dtype) in expected.items():
            graph_shape, graph_dtype = graph[name]
            if not _fits(graph_shape, shape, dynamic):
                carded: GraphShape = (BATCH_AXIS_NAME, *shape[1:]) if dynamic else shape
                raise OrstreamError(
                    f"{source} does not match {CARD_FILE}: {kind} {name!r} has shape "
                    f"{_format_shape(graph_shape)} in the graph, {_format_shape(carded)} in the "
                    "card"
                )
            if graph_dtype != dtype:
                raise OrstreamError(
                    f"{source} does not match {CARD_FILE}: {kind} {name!r} is {graph_dtype} in "
                    f"the graph, {dtype} in the card"
                )
