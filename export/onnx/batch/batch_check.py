"""The proof that a graph with a dynamic batch computes every row on its own.

A batch of N different inputs (state inputs included: each row is another stream at another
point of its video) must give, row by row, what N calls at batch 1 give. Both sides run on a
backend, in practice ONNX Runtime on the CPU: the batched graph on one side, the batch-1 graph
it came from on the other. Rows may differ by float32 rounding only, as kernels sum in another
order at another batch size: :data:`ROW_TOLERANCE` of the output's largest magnitude.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from orstream.edge.backends import Backend
from orstream.errors import OrstreamError
from orstream.package.card import Graph

DEFAULT_MAX_BATCH = 8
"""Rows a package with a dynamic batch is checked at, and backends take by default: a few
video streams' calls falling due together."""
ROW_TOLERANCE = 1e-5
"""Allowed difference per output, relative to its largest magnitude over the batch-1 calls (and
at least this much absolutely). The shipped graphs measure at most 4e-7 of it."""
NOISE = 0.1
"""Spread of the noise that makes rows differ, relative to each input's largest magnitude."""


@dataclass(frozen=True)
class BatchCheck:
    """How far the rows of a batched call came from batch-1 calls.

    Attributes:
        graph: the graph checked.
        batch: rows in the batched call.
        max_abs_diff: the largest difference of ``output`` over the rows.
        output: the output closest to its allowance.
        allowed: what ``output`` was allowed.
    """

    graph: Graph
    batch: int
    max_abs_diff: float
    output: str
    allowed: float


def batch_rows(
    inputs: Mapping[str, np.ndarray], count: int, seed: int = 0
) -> list[dict[str, np.ndarray]]:
    """``count`` different batch-1 inputs: ``inputs`` itself, then ``inputs`` with noise on
    every float tensor (its own per row and tensor)."""
    rng = np.random.default_rng(seed)
    rows = [dict(inputs)]
    for _ in range(count - 1):
        row = {}
        for name, value in inputs.items():
            if np.issubdtype(value.dtype, np.floating):
                spread = NOISE * max(1.0, float(np.abs(value).max()) if value.size else 1.0)
                value = (value + rng.normal(0.0, spread, value.shape)).astype(value.dtype)
            row[name] = value
        rows.append(row)
    return rows


def stack_rows(rows: Sequence[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """One batched input from batch-1 rows, concatenated on axis 0."""
    return {name: np.concatenate([row[name] for row in rows]) for name in rows[0]}


def check_batch_rows(
    batched: Backend, single: Backend, rows: Sequence[Mapping[str, np.ndarray]], graph: Graph
) -> BatchCheck:
    """Run ``rows`` stacked on ``batched`` and one by one on ``single``; compare row by row.

    Raises:
        OrstreamError: one line naming the row and output that differ, by how much and what
            was allowed, or a backend's own refusal.
    """
    outputs = batched.infer(stack_rows(rows))
    expected = [single.infer(dict(row)) for row in rows]
    worst = BatchCheck(graph, len(rows), 0.0, "", ROW_TOLERANCE)
    worst_share = -1.0
    for name in expected[0]:
        peak = max(float(np.abs(row[name]).max()) for row in expected)
        allowed = ROW_TOLERANCE * max(1.0, peak)
        for index, row in enumerate(expected):
            got = outputs[name][index : index + 1]
            if got.shape != row[name].shape:
                raise OrstreamError(
                    f"{graph} graph at batch {len(rows)}: output {name} row {index} has shape "
                    f"{list(got.shape)}, a batch-1 call gives {list(row[name].shape)}"
                )
            difference = np.abs(got.astype(np.float64) - row[name].astype(np.float64))
            diff = float(np.nan_to_num(difference, nan=math.inf).max()) if difference.size else 0.0
            if diff > allowed:
                raise OrstreamError(
                    f"{graph} graph at batch {len(rows)}: row {index} of output {name} differs "
                    f"from a batch-1 call by {diff:.3g} (allowed {allowed:.3g})"
                )
            share = diff / allowed if allowed > 0 else 0.0
            if share > worst_share:
                worst_share = share
                worst = BatchCheck(graph, len(rows), diff, name, allowed)
    return worst
