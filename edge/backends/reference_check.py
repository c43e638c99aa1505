"""The golden check: a loaded backend must reproduce the package's reference before it serves.

Each output of the graph may differ from the reference (ONNX Runtime on CPU, fp32) by at most
``atol + rtol * max|reference|`` over that output, with ``(atol, rtol)`` set by the precision the
backend computes in (:data:`TOLERANCES`). Scaling by the output's largest magnitude rather than
element by element keeps near-zero logits from demanding an absolute precision fp16 cannot give,
while an output that is wrong where it matters (a flipped step logit, a mask shifted) is far
outside it. Integer and boolean outputs must match exactly.

A backend that takes several rows per call (``max_batch`` above 1, a package with a dynamic
batch) also runs one call of ``max_batch`` rows, each the golden input, and every row must
reproduce the reference: batched kernels, the buffers and programs of that batch size are
then checked before the runtime stacks streams into one call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from orstream.edge.backends.protocol import Backend
from orstream.errors import OrstreamError
from orstream.package.card import Graph
from orstream.package.loading import ModelPackage

logger = logging.getLogger("orstream.edge.backends")

TOLERANCES: dict[str, tuple[float, float]] = {
    "fp32": (1e-3, 1e-3),
    "fp16": (1e-2, 2e-2),
    "bf16": (3e-2, 6e-2),
    "int8": (5e-2, 1e-1),
}
"""(atol, rtol) per backend precision. fp32 backends (ONNX Runtime on CPU and CUDA) measure
below 1e-5 on the shipped packages, so 1e-3 fails nothing that computes the same function;
the lower precisions follow their rounding step (fp16 ~1e-3 relative, bf16 ~8e-3) grown by
the accumulation through a network's depth."""


@dataclass(frozen=True)
class ReferenceCheck:
    """How close a backend came to the golden reference.

    Attributes:
        max_abs_diff: the largest absolute difference of ``output`` (NaN: no reference).
        output: the output closest to its allowance (the largest share of it used).
        allowed: the difference ``output`` was allowed.
    """

    max_abs_diff: float
    output: str
    allowed: float

    def share(self) -> float:
        """The part of its allowance ``output`` used (0 where nothing was allowed)."""
        return self.max_abs_diff / self.allowed if self.allowed > 0 else 0.0


def allowed_difference(reference: np.ndarray, precision: str) -> float:
    """``atol + rtol * max|reference|`` for an output computed in ``precision``; 0 for integer
    and boolean outputs.

    Raises:
        OrstreamError: an unknown precision.
    """
    if precision not in TOLERANCES:
        raise OrstreamError(f"unknown precision {precision!r}; known: {', '.join(TOLERANCES)}")
    if not np.issubdtype(reference.dtype, np.floating):
        return 0.0
    atol, rtol = TOLERANCES[precision]
    peak = float(np.abs(reference).max()) if reference.size else 0.0
    return atol + rtol * peak


def check_reference(
    backend: Backend, package: ModelPackage, graph: Graph = "model"
) -> ReferenceCheck:
    """Run ``backend`` (loaded with ``graph`` of ``package``) on the package's golden reference.

    A package without a reference passes with a warning logged and ``max_abs_diff`` NaN. A
    backend with ``max_batch`` above 1 runs a call of that many rows too (module docstring);
    the result is the worse of the two calls.

    Raises:
        OrstreamError: one line, ``golden check failed on <label>: ...`` (``... at batch N:
            ...`` for the batched call), naming the output that differs, by how much and what
            was allowed; or that the backend's outputs are missing or shaped otherwise.
    """
    reference = package.reference(graph)
    if reference is None:
        logger.warning(
            "model package %s has no golden reference: %s is not checked (write one with "
            "orstream export reference --package %s)",
            package.root,
            backend.label,
            package.root,
        )
        return ReferenceCheck(max_abs_diff=math.nan, output="", allowed=math.nan)
    failed = f"golden check failed on {backend.label}"
    try:
        outputs = backend.infer({name: value.copy() for name, value in reference.inputs.items()})
    except OrstreamError as error:
        raise OrstreamError(f"{failed}: {error}") from None
    single = compare_to_reference(outputs, reference.outputs, backend.precision, failed)
    rows = backend.max_batch
    if rows <= 1:
        return single
    failed = f"{failed} at batch {rows}"
    try:
        outputs = backend.infer(_repeated(reference.inputs, rows))
    except OrstreamError as error:
        raise OrstreamError(f"{failed}: {error}") from None
    batched = compare_to_reference(
        outputs, _repeated(reference.outputs, rows), backend.precision, failed
    )
    return max(single, batched, key=ReferenceCheck.share)


def _repeated(arrays: Mapping[str, np.ndarray], rows: int) -> dict[str, np.ndarray]:
    """Each array's single row repeated ``rows`` times on axis 0."""
    return {name: np.repeat(value, rows, axis=0) for name, value in arrays.items()}


def compare_to_reference(
    outputs: Mapping[str, np.ndarray],
    reference: Mapping[str, np.ndarray],
    precision: str,
    failed: str,
) -> ReferenceCheck:
    """Hold ``outputs`` to the ``reference`` outputs within ``precision``'s tolerance.

    Raises:
        OrstreamError: ``<failed>: ...`` naming the output that is missing, shaped otherwise
            or too far off, by how much and what was allowed.
    """
    worst: ReferenceCheck | None = None
    worst_share = -1.0
    for name, expected in reference.items():
        if name not in outputs:
            raise OrstreamError(f"{failed}: output {name} is missing")
        actual = np.asarray(outputs[name])
        if actual.shape != expected.shape:
            raise OrstreamError(
                f"{failed}: output {name} has shape {list(actual.shape)}, the reference "
                f"{list(expected.shape)}"
            )
        difference = np.abs(actual.astype(np.float64) - expected.astype(np.float64))
        # NaN or infinity where the reference is finite is as wrong as an output can be.
        diff = float(np.nan_to_num(difference, nan=math.inf).max()) if difference.size else 0.0
        allowed = allowed_difference(expected, precision)
        if diff > allowed:
            raise OrstreamError(
                f"{failed}: output {name} differs by {diff:.3g} (allowed {allowed:.3g})"
            )
        check = ReferenceCheck(diff, name, allowed)
        if check.share() > worst_share:
            worst, worst_share = check, check.share()
    assert worst is not None  # every graph has an output
    return worst
