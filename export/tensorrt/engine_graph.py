"""The ONNX graph TensorRT parses for each engine precision, checked before any build.

- ``fp32``: ``model.onnx`` as exported.
- ``fp16``: :func:`~orstream.export.precision.fp16_graph.fp16_graph` of it; the layers whose
  values on the golden input come near fp16's range stay fp32.
- ``int8``: Q/DQ pairs from ranges calibrated on real frames
  (:mod:`orstream.export.precision.int8_graph`,
  :mod:`orstream.export.precision.activation_ranges`), the rest of the graph in fp16 as above.
  The ranges are kept beside the engine and read back when the same frames calibrate again.

Precision lives in the graph because TensorRT builds strongly typed networks (the only kind
in 11.x): the same graph builds the same engine on 10.x and 11.x. Each graph must reproduce
the package's golden reference on ONNX Runtime's CPU provider within its precision's
tolerance before TensorRT is given it, so a conversion or calibration that breaks the model is
refused in seconds, on any machine, instead of after a GPU build; the engine itself passes the
same check again when the edge loads it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import onnx
import onnxruntime as ort

from orstream.edge.backends.reference_check import ReferenceCheck, compare_to_reference
from orstream.errors import OrstreamError
from orstream.export.precision.activation_ranges import calibrate_ranges, read_ranges, write_ranges
from orstream.export.precision.calibration import Calibration
from orstream.export.precision.fp16_graph import fp16_graph, fp32_nodes
from orstream.export.precision.int8_graph import int8_graph, quantized_activations
from orstream.package.engine_manifest import Precision
from orstream.package.loading import ModelPackage


@dataclass(frozen=True)
class EngineGraph:
    """A graph for TensorRT and how it fared against the golden reference.

    Attributes:
        model: the graph.
        precision: the engine precision it is for.
        check: the golden check on ONNX Runtime (CPU).
        fp32_nodes: input-dependent nodes left in fp32 by the fp16 pass (0 for fp32).
        quantized: activations quantised to INT8 (0 unless int8).
        calibrated: the INT8 ranges were calibrated now rather than read back.
    """

    model: onnx.ModelProto
    precision: Precision
    check: ReferenceCheck
    fp32_nodes: int
    quantized: int
    calibrated: bool

    def describe(self) -> str:
        check = self.check
        share = check.max_abs_diff / check.allowed if check.allowed else 0.0
        parts = [f"{self.precision} graph"]
        if self.precision != "fp32":
            parts.append(f"{self.fp32_nodes} layer(s) kept fp32")
        if self.quantized:
            parts.append(f"{self.quantized} activations quantised")
        return (
            f"{', '.join(parts)}; golden check on ONNX Runtime: {check.output} off by "
            f"{check.max_abs_diff:.3g} ({share:.0%} of the {check.allowed:.3g} allowed)"
        )


def engine_graph(
    package: ModelPackage,
    precision: Precision,
    calibration: Calibration | None = None,
    ranges_path: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
) -> EngineGraph:
    """The graph TensorRT builds a ``precision`` engine of ``package`` from.

    Args:
        package: the model package (its ``model.onnx`` and golden reference).
        precision: ``fp32``, ``fp16`` or ``int8``.
        calibration: the frames of an int8 graph.
        ranges_path: where int8 ranges are kept: read when they are of these frames, else
            calibrated and written there.
        progress: told of each step.

    Raises:
        OrstreamError: int8 without calibration frames; fp16 or int8 for a package without a
            golden reference; a graph the passes cannot convert; or a graph that fails the
            golden check (one line naming the output, its difference and what was allowed).
    """
    model = onnx.load(package.model_path)
    reference = package.reference("model")
    kept: set[str] = set()
    quantized = 0
    calibrated = False
    if precision != "fp32":
        if reference is None:
            raise OrstreamError(
                f"a {precision} engine needs the package's golden reference to choose the "
                f"layers kept fp32 and to check the graph: orstream export reference "
                f"--package {package.root}"
            )
        kept = fp32_nodes(model, reference.inputs)
        graph = model
        if precision == "int8":
            if calibration is None:
                raise OrstreamError("an int8 engine needs calibration frames (--calib)")
            activations = quantized_activations(model)
            ranges = None
            if ranges_path is not None:
                ranges = read_ranges(ranges_path, activations, calibration.sha256)
            if ranges is None:
                progress(f"calibrating on {calibration.describe()}")
                ranges = calibrate_ranges(package, model, calibration, activations, progress)
                calibrated = True
                if ranges_path is not None:
                    write_ranges(ranges_path, ranges, calibration.sha256)
            else:
                progress(f"calibration ranges read from {ranges_path}")
            graph = int8_graph(model, ranges)
            quantized = len(activations)
        model = fp16_graph(graph, kept)
    if reference is None:  # fp32: the package's own graph, with nothing to hold it to
        check = ReferenceCheck(max_abs_diff=float("nan"), output="", allowed=float("nan"))
    else:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        names = [output.name for output in session.get_outputs()]
        outputs = dict(zip(names, session.run(names, reference.inputs), strict=True))
        check = compare_to_reference(
            outputs,
            reference.outputs,
            precision,
            f"the {precision} graph for TensorRT fails the golden check on ONNX Runtime",
        )
    return EngineGraph(model, precision, check, len(kept), quantized, calibrated)
