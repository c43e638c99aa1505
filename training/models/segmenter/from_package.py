"""The interactive segmenter package's image encoder rebuilt in torch, from its ONNX weights.

No pretrained image encoder can be downloaded here, so models that need one (the tokenizer's
perceptual teacher, the video-text model's frame encoder) start from the best trained image
encoder the project has: the image encoder of the interactive segmenter package
(``edge/packages/imis_segmenter``, a ViT-Tiny of 6 blocks plus a convolutional detail path,
trained on phantom frames to find instruments and anatomy from clicks, boxes and text).

Training code does not import the edge (DESIGN.md's dependency direction), so the package's
ONNX graph is not run through the edge's torch backend; instead the graph's weights are copied
into :class:`~orstream.training.models.segmenter.image_encoder.ImageEncoder` and the result is
checked against the package's golden reference (ONNX Runtime's output for a phantom frame)
before it is used. Initializers keep their module names (``model.image_encoder.X``), except the
weights the exporter rewrote: a Linear's weight becomes a transposed MatMul operand and a
LayerNorm2d's weight and bias become Mul and Add operands; those are named by the node that
reads them (``/image_encoder/blocks/blocks.0/attn/qkv/MatMul``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from orstream.errors import OrstreamError
from orstream.package.loading import load_package
from orstream.training.models.segmenter.image_encoder import ImageEncoder

PREFIX = "model.image_encoder."
PARITY_TOLERANCE = 1e-3
"""Largest difference from the package's reference output accepted (the export's own parity
tolerance for this graph)."""


@dataclass(frozen=True)
class PackagedEncoder:
    """An image encoder read from a package, with the input normalisation it was trained with
    (per channel, on 0..1 pixels) and its input size (height, width)."""

    encoder: ImageEncoder
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_size: tuple[int, int]


def load_image_encoder(
    package: Path, backbone: str = "vit_tiny_patch16_224", num_heads: int = 3
) -> PackagedEncoder:
    """The image encoder of an interactive segmenter package, checked against the package's
    reference output.

    Args:
        package: the package folder (``edge/packages/imis_segmenter``).
        backbone: timm name of the ViT it was trained with.
        num_heads: its attention heads (not visible in the weights).

    Raises:
        OrstreamError: not a valid package, weights of another architecture, or outputs
            that differ from the reference by more than :data:`PARITY_TOLERANCE`.
    """
    loaded = load_package(Path(package))
    spec = loaded.card.inputs[0]
    if loaded.card.task != "interactive_segmentation" or spec.mean is None or spec.std is None:
        raise OrstreamError(f"{package}: not an interactive segmentation package")
    encoder = _encoder_for(loaded.model_path, spec.shape[2:], backbone, num_heads).eval()
    reference = loaded.reference("model")
    if reference is None:
        raise OrstreamError(f"{package}: no golden reference to check its image encoder against")
    image = torch.tensor(reference.inputs[spec.name])
    expected = torch.tensor(reference.outputs[loaded.card.outputs[0].name])
    with torch.no_grad():
        got = encoder(image)
    difference = float((got - expected).abs().max())
    if difference > PARITY_TOLERANCE:
        raise OrstreamError(
            f"{package}: the rebuilt image encoder differs from the reference by "
            f"{difference:.2g} (backbone {backbone!r} with {num_heads} heads?)"
        )
    size = (encoder.patch_grid[0] * 16, encoder.patch_grid[1] * 16)
    return PackagedEncoder(encoder, tuple(spec.mean), tuple(spec.std), size)


def scope_module_path(node_name: str) -> str:
    """``/image_encoder/blocks/blocks.0/attn/qkv/MatMul`` -> ``blocks.0.attn.qkv``: the
    exporter's scopes below the encoder, each a child's name or a dotted path extending its
    parent's."""
    path = ""
    for scope in node_name.strip("/").split("/")[1:-1]:
        path = scope if not path or scope.startswith(path + ".") else f"{path}.{scope}"
    return path


def _read_graph(model_file: Path) -> Any:
    try:
        import onnx
    except ImportError:
        raise OrstreamError("reading a package's ONNX weights needs onnx: install it") from None
    return onnx.load(str(model_file)).graph


def graph_weights(graph: Any, state: dict[str, Tensor], source: Path) -> dict[str, Tensor]:
    """The image encoder's weights in an exported segmenter graph, keyed and shaped as
    ``state`` (an :class:`ImageEncoder`'s state dict).

    Raises:
        OrstreamError: the graph's weights do not fill ``state`` exactly (another
            architecture).
    """
    from onnx import numpy_helper

    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights: dict[str, np.ndarray] = {
        name[len(PREFIX) :]: array for name, array in arrays.items() if name.startswith(PREFIX)
    }
    rewritten = {"MatMul": "weight", "Mul": "weight", "Add": "bias"}
    for node in graph.node:
        kind = rewritten.get(node.op_type)
        for name in node.input:
            if kind is None or name not in arrays or name.startswith(PREFIX):
                continue
            suffix = f"{scope_module_path(node.name)}.{kind}"
            keys = [key for key in state if key == suffix or key.endswith("." + suffix)]
            if len(keys) == 1:
                weights[keys[0]] = arrays[name].T if node.op_type == "MatMul" else arrays[name]
    missing = sorted(set(state) - set(weights))
    unexpected = sorted(set(weights) - set(state))
    wrong = [key for key in state if key in weights and weights[key].size != state[key].numel()]
    if missing or unexpected or wrong:
        raise OrstreamError(
            f"{source}: weights do not fit the teacher's image encoder (missing "
            f"{missing[:3]}, unexpected {unexpected[:3]}, wrong size {wrong[:3]})"
        )
    return {
        key: torch.from_numpy(np.array(weights[key], order="C")).reshape(value.shape)
        for key, value in state.items()
    }


def _encoder_for(
    model_file: Path, input_size: tuple[int, ...], backbone: str, num_heads: int
) -> ImageEncoder:
    """An :class:`ImageEncoder` shaped as the graph's weights say, with those weights."""
    graph = _read_graph(model_file)
    shapes = {t.name: tuple(t.dims) for t in graph.initializer}
    blocks = {int(n.split(".")[4]) for n in shapes if n.startswith(PREFIX + "backbone.blocks.")}
    neck = shapes.get(PREFIX + "neck.0.weight")
    if not blocks or neck is None:
        raise OrstreamError(f"{model_file}: not a segmenter image encoder graph")
    encoder = ImageEncoder(
        backbone,
        (int(input_size[0]), int(input_size[1])),
        int(neck[0]),
        backbone_args={"depth": max(blocks) + 1, "num_heads": num_heads},
        embedding_stride=8 if any(n.startswith(PREFIX + "detail.") for n in shapes) else 16,
    )
    encoder.load_state_dict(graph_weights(graph, encoder.state_dict(), model_file))
    return encoder
