"""Card sections every exporter writes alike: an RGB image input and the export record."""

from __future__ import annotations

from collections.abc import Sequence

import onnx
import onnxruntime
import torch

from orstream.errors import OrstreamError
from orstream.package.card import ExportInfo, InputSpec, ParityResult, Resize
from orstream.package.loading import ModelPackage
from orstream.training.data.frame_cache import RESIZE_INTERPOLATION


def image_input(
    name: str,
    height: int,
    width: int,
    mean: Sequence[float],
    std: Sequence[float],
) -> InputSpec:
    """An RGB image input of batch 1, resized as training resized every frame (so the edge sees
    the same pixels), scaled to 0..1 and normalised by ``mean`` and ``std`` (one value per
    channel).

    Raises:
        OrstreamError: ``mean`` or ``std`` without exactly three values.
    """
    return InputSpec(
        name=name,
        shape=(1, 3, height, width),
        dtype="float32",
        layout="NCHW",
        color="RGB",
        resize=Resize.model_validate(
            {"height": height, "width": width, "interpolation": RESIZE_INTERPOLATION}
        ),
        scale=255.0,
        mean=_rgb("mean", mean),
        std=_rgb("std", std),
    )


def _rgb(what: str, values: Sequence[float]) -> tuple[float, float, float]:
    if len(values) != 3:
        raise OrstreamError(f"the model's {what} needs 3 values (R, G, B), not {list(values)}")
    return float(values[0]), float(values[1]), float(values[2])


def export_info(
    exporter: str, opset: int, max_batch: int, parity: tuple[ParityResult, ...] = ()
) -> ExportInfo:
    """The export record of graphs with a dynamic batch checked at ``max_batch`` rows, with the
    versions of the tools that made and checked them."""
    return ExportInfo(
        exporter=exporter,
        opset=opset,
        batch="dynamic",
        max_batch=max_batch,
        torch_version=torch.__version__,
        onnx_version=onnx.__version__,
        onnxruntime_version=onnxruntime.__version__,
        parity=parity,
    )


def package_line(package: ModelPackage, dynamic: str = "dynamic batch") -> str:
    """The first line of an export's summary: where the package is and what its graphs take."""
    return f"package   {package.root}  {dynamic}, max_batch {package.card.max_batch}"
