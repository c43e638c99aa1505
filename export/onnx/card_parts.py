"""Card sections every exporter writes alike: an RGB image input and the export record."""

from __future__ import annotations

import onnx
import onnxruntime
import torch

from orstream.package.card import ExportInfo, InputSpec, ParityResult, Resize
from orstream.training.data.frame_cache import RESIZE_INTERPOLATION


def image_input(
    name: str,
    height: int,
    width: int,
    mean: tuple[float, float, float],
    std: tuple[float, float, float],
) -> InputSpec:
    """An RGB image input of batch 1, resized as training resized every frame (so the edge sees
    the same pixels), scaled to 0..1 and normalised by ``mean`` and ``std``."""
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
        mean=mean,
        std=std,
    )


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
