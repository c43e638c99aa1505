"""A model package's graphs given a dynamic batch, proved, and put in place only when proved.

For packages exported at batch 1 whose checkpoints are not at hand (the shipped ones): every graph
of the package is rewritten (:func:`~orstream.export.onnx.batch.dynamic_batch.dynamic_batch_graph`)
in a copy of the package folder beside it, its card says ``export.batch: "dynamic"`` with the new
graphs' sha256 and ``max_batch``, and then, on ONNX Runtime (CPU, fp32), for every graph:

1. ``onnx.checker`` (full check) and the card's tensors, with axis 0 symbolic;
2. the golden reference at batch 1, which is not rewritten: the package computes what it did,
   and once more with ``max_batch`` rows of the golden input
   (:func:`~orstream.edge.backends.reference_check.check_reference`);
3. ``max_batch`` different rows (the golden input, then noisy copies of it, state included)
   in one call against one batch-1 call each of the original graph
   (:func:`~orstream.export.onnx.batch.batch_check.check_batch_rows`).

Only then does the copy replace the package folder; when anything fails the package is left
as it was and the copy removed. TensorRT engines in ``engines/`` were built from the old
``model.onnx``: the edge refuses them from then on, and they are rebuilt with ``orstream
export trt``.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import onnx

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.edge.backends.reference_check import ReferenceCheck, check_reference
from orstream.errors import OrstreamError
from orstream.export.onnx.batch.batch_check import (
    DEFAULT_MAX_BATCH,
    BatchCheck,
    batch_rows,
    check_batch_rows,
)
from orstream.export.onnx.batch.dynamic_batch import dynamic_batch_graph
from orstream.export.onnx.models.workflow_export import (
    Progress,
    check_max_batch,
    one_line,
    read_onnx,
)
from orstream.package.card import MODEL_FILE, Graph, ModelCard
from orstream.package.engine_manifest import ENGINES_DIR, PLAN_SUFFIX
from orstream.package.loading import ModelPackage, load_package, sha256_file, write_card


@dataclass(frozen=True)
class BatchedGraph:
    """One graph of a converted package and what proved it.

    Attributes:
        graph: which graph.
        changes: the nodes rewritten, one line each.
        golden: the golden check at batch 1 and at ``max_batch`` rows.
        rows: different rows in one call against batch-1 calls of the original graph.
    """

    graph: Graph
    changes: tuple[str, ...]
    golden: ReferenceCheck
    rows: BatchCheck


@dataclass(frozen=True)
class BatchedPackage:
    """The package as now written, its graphs, and how many stale engines it holds."""

    package: ModelPackage
    graphs: tuple[BatchedGraph, ...]
    stale_engines: int


def convert_package(
    root: Path, max_batch: int = DEFAULT_MAX_BATCH, progress: Progress = lambda line: None
) -> BatchedPackage:
    """Give every graph of the package at ``root`` a dynamic batch (module docstring).

    Args:
        root: the package folder.
        max_batch: the rows the graphs are checked at, recorded in the card.
        progress: told of each step.

    Raises:
        OrstreamError: ``max_batch`` below 2, a package that is not valid or already has a
            dynamic batch, a graph that cannot take a batch (naming the node), or a failed
            check; the package is unchanged then.
    """
    check_max_batch(max_batch)
    root = Path(root)
    package = load_package(root)
    card = package.card
    if card.dynamic_batch:
        raise OrstreamError(f"{root} already takes a dynamic batch (max_batch {card.max_batch})")
    if card.hashes.reference is None:
        raise OrstreamError(
            f"{root} has no golden reference to check the new graphs against: write one with "
            f"orstream export reference --package {root}"
        )
    graphs: tuple[Graph, ...] = ("model",) if card.decoder is None else ("model", "decoder")
    staging = root.with_name(f".{root.name}.batch-partial")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(root, staging)
        changes = {}
        for graph in graphs:
            path = staging / package.graph_path(graph).name
            progress(f"{graph}: following the batch through {path.name}")
            conversion = dynamic_batch_graph(read_onnx(path), package.graph_path(graph))
            try:
                onnx.checker.check_model(conversion.model, full_check=True)
            except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as error:
                raise OrstreamError(
                    f"{path.name} with a dynamic batch fails onnx.checker: {one_line(error)}"
                ) from None
            onnx.save(conversion.model, path)
            changes[graph] = conversion.changes
        write_card(staging, _batched_card(card, staging, max_batch))
        converted = load_package(staging)
        proved = tuple(
            _prove(package, converted, graph, changes[graph], progress) for graph in graphs
        )
        _swap(staging, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    engines = root / ENGINES_DIR
    stale = len(list(engines.glob(f"*{PLAN_SUFFIX}"))) if engines.is_dir() else 0
    return BatchedPackage(package=load_package(root), graphs=proved, stale_engines=stale)


def _batched_card(card: ModelCard, folder: Path, max_batch: int) -> ModelCard:
    """The card with the batch field and the sha256 of the graphs now in ``folder``."""
    update: dict[str, object] = {
        "export": card.export.model_copy(update={"batch": "dynamic", "max_batch": max_batch}),
        "hashes": card.hashes.model_copy(update={"model_onnx": sha256_file(folder / MODEL_FILE)}),
    }
    if card.decoder is not None:
        update["decoder"] = card.decoder.model_copy(
            update={"sha256": sha256_file(folder / card.decoder.file)}
        )
    # model_copy does not validate: the card is checked as a whole again.
    return ModelCard.model_validate(card.model_copy(update=update).model_dump())


def _prove(
    original: ModelPackage,
    converted: ModelPackage,
    graph: Graph,
    changes: tuple[str, ...],
    progress: Progress,
) -> BatchedGraph:
    """The golden check and the row check of one converted graph on ONNX Runtime."""
    batched = OnnxRuntimeBackend(graph=graph)
    batched.load(converted)
    progress(f"{graph}: golden check at batch 1 and {batched.max_batch}")
    golden = check_reference(batched, converted, graph)
    single = OnnxRuntimeBackend(graph=graph)
    single.load(original)
    reference = original.reference(graph)
    assert reference is not None  # convert_package refuses packages without one
    progress(f"{graph}: {batched.max_batch} different rows against batch-1 calls")
    rows = batch_rows(reference.inputs, batched.max_batch)
    return BatchedGraph(
        graph=graph,
        changes=changes,
        golden=golden,
        rows=check_batch_rows(batched, single, rows, graph),
    )


def _swap(staging: Path, root: Path) -> None:
    """Put the folder ``staging`` where ``root`` is, the old one kept until the new is there."""
    previous = root.with_name(f".{root.name}.batch-previous")
    shutil.rmtree(previous, ignore_errors=True)
    os.rename(root, previous)
    try:
        os.rename(staging, root)
    except OSError:
        os.rename(previous, root)
        raise
    shutil.rmtree(previous)
