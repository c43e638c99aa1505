"""The check that an ONNX graph's tensors match its card.

Shared by the exporter and the edge backends, which each read the graph with their own library
and pass what they see here. In a package with a dynamic batch
(:attr:`~orstream.package.card.ModelCard.dynamic_batch`) axis 0 of every graph tensor must be
symbolic where the card says 1; otherwise every dimension must be the card's. The slide
encoder's per-tile tensors (:data:`~orstream.package.card.TILE_AXIS_TENSORS`) take any number of
tiles: their axis 1 must be symbolic too, as must the sequence axes of a vision-language
package's tensors (:data:`~orstream.package.card.VLM_LENGTH_AXES`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from orstream.errors import OrstreamError
from orstream.package.card import (
    BATCH_AXIS_NAME,
    CARD_FILE,
    TILE_AXIS_NAME,
    TILE_AXIS_TENSORS,
    VLM_LENGTH_AXES,
    Graph,
    GraphShape,
    ModelCard,
)


def _format_shape(shape: GraphShape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _fits(graph_shape: GraphShape, shape: tuple[int, ...], symbolic: tuple[int, ...]) -> bool:
    """``graph_shape`` is ``shape`` with the axes ``symbolic`` not fixed."""
    if len(graph_shape) != len(shape):
        return False
    return all(
        not isinstance(dim, int) if axis in symbolic else dim == size
        for axis, (dim, size) in enumerate(zip(graph_shape, shape, strict=True))
    )


def _symbolic_axes(name: str, graph: Graph, dynamic: bool) -> tuple[int, ...]:
    axes = (0,) if dynamic else ()
    if graph == "slide" and name in TILE_AXIS_TENSORS:
        return (*axes, 1)
    length = VLM_LENGTH_AXES.get(graph, {}).get(name)
    return axes if length is None else (*axes, length)


def _carded(shape: tuple[int, ...], symbolic: tuple[int, ...]) -> GraphShape:
    return tuple(
        (BATCH_AXIS_NAME if axis == 0 else TILE_AXIS_NAME if axis == 1 else "length")
        if axis in symbolic
        else size
        for axis, size in enumerate(shape)
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
    _check_tensors(
        expected_inputs, expected_outputs, inputs, outputs, source, card.dynamic_batch, graph
    )


def _check_tensors(
    expected_inputs: Mapping[str, tuple[tuple[int, ...], str]],
    expected_outputs: Mapping[str, tuple[tuple[int, ...], str]],
    inputs: Mapping[str, tuple[GraphShape, str]],
    outputs: Mapping[str, tuple[GraphShape, str]],
    source: Path,
    dynamic: bool,
    which: Graph,
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
            symbolic = _symbolic_axes(name, which, dynamic)
            if not _fits(graph_shape, shape, symbolic):
                raise OrstreamError(
                    f"{source} does not match {CARD_FILE}: {kind} {name!r} has shape "
                    f"{_format_shape(graph_shape)} in the graph, "
                    f"{_format_shape(_carded(shape, symbolic))} in the card"
                )
            if graph_dtype != dtype:
                raise OrstreamError(
                    f"{source} does not match {CARD_FILE}: {kind} {name!r} is {graph_dtype} in "
                    f"the graph, {dtype} in the card"
                )
