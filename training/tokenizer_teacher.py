"""The tokenizer's frozen teacher: the shipped interactive segmenter's image encoder, in torch.

No pretrained image encoder (and no LPIPS network) can be downloaded here, so the tokenizer
learns its perceptual loss and its stage-1 visual alignment from the best trained image encoder
the project has: the image encoder of the interactive segmenter package
(``edge/packages/imis_segmenter``, a ViT-Tiny of 6 blocks plus a convolutional detail path,
trained on phantom frames to find instruments and anatomy from clicks, boxes and text).

Training code does not import the edge (DESIGN.md's dependency direction), so the package's
ONNX graph is not run through the edge's torch backend; instead the graph's weights are copied
into the training code's own :class:`~orstream.training.models.segmenter.image_encoder.ImageEncoder`
and the result is checked against the package's golden reference (ONNX Runtime's output for a
phantom frame) before it is used. Initializers keep their module names
(``model.image_encoder.X``), except the weights the exporter rewrote: a Linear's weight becomes a
transposed MatMul operand and a LayerNorm2d's weight and bias become Mul and Add operands; those
are named by the node that reads them (``/image_encoder/blocks/blocks.0/attn/qkv/MatMul``).

:meth:`SegmenterTeacher.forward` gives the pooled image embedding (the stage-1 target) and the
activations the perceptual loss compares: the detail path's first two convolutional stages
(1/2 and 1/4 resolution) and the outputs of every other ViT block (1/16), compared LPIPS-style
(unit-length channel vectors, squared distance) by :func:`perceptual_distance`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from orstream.errors import OrstreamError
from orstream.package.loading import load_package
from orstream.training.models.segmenter.image_encoder import ImageEncoder

PREFIX = "model.image_encoder."
PARITY_TOLERANCE = 1e-3
"""Largest difference from the package's reference output accepted (the export's own parity
tolerance for this graph)."""


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
        raise OrstreamError("the tokenizer's teacher reads ONNX weights: install onnx") from None
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


class SegmenterTeacher(nn.Module):
    """The segmenter package's image encoder, frozen (build it with :meth:`load`).

    Args:
        encoder: the image encoder, weights loaded.
        mean: the package's input mean (per channel, on 0..1 pixels).
        std: the package's input std.
        block_layers: ViT blocks whose outputs the perceptual loss compares.
    """

    def __init__(
        self,
        encoder: ImageEncoder,
        mean: tuple[float, ...],
        std: tuple[float, ...],
        block_layers: tuple[int, ...] = (1, 3, 5),
    ) -> None:
        super().__init__()
        if encoder.detail is None:
            raise OrstreamError("the teacher needs an image encoder with a detail path")
        self.encoder = encoder.eval().requires_grad_(False)
        self.input_size = (encoder.patch_grid[0] * 16, encoder.patch_grid[1] * 16)
        self.mean: Tensor
        self.std: Tensor
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1))
        self._captured: list[Tensor] = []
        watched: list[nn.Module] = [encoder.detail[2], encoder.detail[5]]
        blocks: Any = encoder.backbone.blocks
        watched += [blocks[index] for index in block_layers]
        for module in watched:
            module.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, inputs: Any, output: Tensor) -> None:
        self._captured.append(output)

    @classmethod
    def load(
        cls, package: Path, backbone: str = "vit_tiny_patch16_224", num_heads: int = 3
    ) -> SegmenterTeacher:
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
        encoder = _encoder_for(loaded.model_path, spec.shape[2:], backbone, num_heads)
        teacher = cls(encoder, spec.mean, spec.std)
        reference = loaded.reference("model")
        if reference is None:
            raise OrstreamError(f"{package}: no golden reference to check the teacher against")
        image = torch.tensor(reference.inputs[spec.name])
        expected = torch.tensor(reference.outputs[loaded.card.outputs[0].name])
        with torch.no_grad():
            got = teacher.encoder(image)
        teacher._captured = []
        difference = float((got - expected).abs().max())
        if difference > PARITY_TOLERANCE:
            raise OrstreamError(
                f"{package}: the rebuilt image encoder differs from the reference by "
                f"{difference:.2g} (backbone {backbone!r} with {num_heads} heads?)"
            )
        return teacher

    def train(self, mode: bool = True) -> SegmenterTeacher:
        # Frozen: stays in eval mode whatever the owner does.
        super().train(False)
        return self

    def forward(self, images: Tensor) -> tuple[Tensor, list[Tensor]]:
        """Images [B, 3, H, W] in [-1, 1] (any size: resized to the package's input size) ->
        (pooled image embedding [B, C], activations [B, C_i, ...] for the perceptual loss)."""
        pixels = (images + 1) / 2
        resized = F.interpolate(pixels, size=self.input_size, mode="area")
        self._captured = []
        embedding: Tensor = self.encoder((resized - self.mean) / self.std)
        # ViT blocks give tokens [B, N, C]: channels first like the conv activations.
        features = [f if f.dim() == 4 else f.transpose(1, 2) for f in self._captured]
        self._captured = []
        return embedding.mean(dim=(2, 3)), features


def perceptual_distance(first: list[Tensor], second: list[Tensor]) -> Tensor:
    """LPIPS without learned weights: per layer, the squared distance of unit-length channel
    vectors averaged over positions, summed over layers."""
    total = first[0].new_zeros(())
    for a, b in zip(first, second, strict=True):
        total = total + (F.normalize(a, dim=1) - F.normalize(b, dim=1)).pow(2).sum(dim=1).mean()
    return total


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
