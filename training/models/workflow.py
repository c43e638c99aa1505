"""PitVis workflow recognizer: per-frame timm encoder -> causal multi-stage TCN -> step and
instrument heads, online (the output at frame t uses only frames up to t).

Classes: 15 steps (class 0 = out of patient, class k = step k, see ``orstream.labels``) and 19
instruments, multi-label (class 0 = inside with no instrument visible, class k = instrument k).

The temporal state is explicit: ``forward(frames, *state)`` and ``streaming_step(image,
*state)`` take and return one tensor per TCN layer (the layer's buffer of past inputs), so a
video processed in clips or frame by frame gives the same outputs as one pass over the whole
video. The edge exports exactly this signature.

Training and inference agree only if a training clip holds the history the state would hold at
inference. The model's :attr:`WorkflowRecognizer.receptive_field` (frames) says how much
history an output depends on. Training therefore scores an output at clip position j only if
j >= receptive_field - 1 (its whole history is inside the clip) or the clip starts at the video
start (where the all-zero initial state *is* the true history), and clip starts are drawn so the
video start is sampled often; with ``clip_length`` unset the data module serves whole videos,
which is exact everywhere. See ``orstream.training.modules.lit_workflow`` and
``orstream.training.data.pitvis_datamodule``.
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
from torch import Tensor, nn

from orstream.labels import NUM_INSTRUMENT_CLASSES, NUM_STEP_CLASSES
from orstream.training.models.temporal import MultiStageCausalTCN
from orstream.training.registry import register_model

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class WorkflowRecognizer(nn.Module):
    """Online step + instrument recognizer with explicit temporal state.

    Args:
        backbone: timm model name of the per-frame encoder (built without weights and head).
        input_size: (height, width) the frames are resized to.
        sample_fps: frames per second of video the temporal model consumes.
        channels: hidden width of the TCN.
        num_stages: TCN stages (stage 2.. refine the previous stage's probabilities).
        num_layers: dilated layers per stage (dilations 1, 2, ..., 2**(num_layers - 1)).
        kernel_size: temporal kernel size of the dilated convolutions.
        dropout: dropout on the frame features and inside the TCN (training only).
    """

    def __init__(
        self,
        backbone: str = "mobilenetv3_small_050",
        input_size: Sequence[int] = (128, 128),
        sample_fps: float = 1.0,
        channels: int = 64,
        num_stages: int = 2,
        num_layers: int = 6,
        kernel_size: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if len(input_size) != 2:
            raise ValueError(f"input_size must be (height, width), got {input_size!r}")
        self.input_size: tuple[int, int] = (int(input_size[0]), int(input_size[1]))
        self.sample_fps = float(sample_fps)
        self.encoder = timm.create_model(backbone, pretrained=False, num_classes=0)
        self.feature_dropout = nn.Dropout(dropout)
        self.temporal = MultiStageCausalTCN(
            self._feature_size(),
            NUM_STEP_CLASSES,
            NUM_INSTRUMENT_CLASSES,
            channels=channels,
            num_stages=num_stages,
            num_layers=num_layers,
            kernel_size=kernel_size,
            dropout=dropout,
        )
        config = getattr(self.encoder, "pretrained_cfg", None) or {}
        self.mean: tuple[float, ...] = tuple(config.get("mean", IMAGENET_MEAN))
        self.std: tuple[float, ...] = tuple(config.get("std", IMAGENET_STD))

    def _feature_size(self) -> int:
        # timm's num_features is the width before a conv head (mobilenetv3 has one), so ask the
        # encoder itself; this also fails early on an input size the backbone cannot take.
        self.encoder.eval()
        with torch.no_grad():
            size = self.encoder(torch.zeros(1, 3, *self.input_size)).shape[-1]
        self.encoder.train()
        return int(size)

    @property
    def receptive_field(self) -> int:
        """Frames (current included) that one output depends on."""
        return self.temporal.receptive_field

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape without the batch dimension of each state tensor, in argument order."""
        return self.temporal.state_shapes()

    def initial_state(self, batch: int) -> tuple[Tensor, ...]:
        """The all-zero state of a video start (on the model's device and dtype)."""
        parameter = next(self.temporal.parameters())
        return tuple(
            torch.zeros((batch, *shape), device=parameter.device, dtype=parameter.dtype)
            for shape in self.state_shapes().values()
        )

    def forward_stages(
        self, frames: Tensor, *state: Tensor
    ) -> tuple[list[tuple[Tensor, Tensor]], tuple[Tensor, ...]]:
        """Every TCN stage's (step_logits [B, T, 15], instrument_logits [B, T, 19]) and the new
        state; training supervises all stages, inference uses the last."""
        batch, time = frames.shape[:2]
        if not state:
            state = self.initial_state(batch)
        elif len(state) != len(self.state_shapes()):
            raise ValueError(f"expected {len(self.state_shapes())} state tensors, got {len(state)}")
        features = self.encoder(frames.flatten(0, 1)).reshape(batch, time, -1)
        outputs, new_state = self.temporal(self.feature_dropout(features), state)
        return outputs, tuple(new_state)

    def forward(self, frames: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """Clip forward continuing from ``state`` (zero state when none is given).

        Args:
            frames: [B, T, 3, H, W] float32, RGB scaled to 0..1 then normalised by mean/std.
            state: the tensors named by :meth:`state_shapes`, each [B, *shape].

        Returns:
            (step_logits [B, T, 15], instrument_logits [B, T, 19], *new_state).
        """
        outputs, new_state = self.forward_stages(frames, *state)
        step_logits, instrument_logits = outputs[-1]
        return (step_logits, instrument_logits, *new_state)

    def streaming_step(self, image: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        """One frame [B, 3, H, W] -> (step_logits [B, 15], instrument_logits [B, 19], *state)."""
        step_logits, instrument_logits, *new_state = self.forward(image.unsqueeze(1), *state)
        return (step_logits[:, 0], instrument_logits[:, 0], *new_state)


@register_model
def pitvis_workflow(**kwargs: object) -> WorkflowRecognizer:
    """The PitVis workflow recognizer (see :class:`WorkflowRecognizer` for the arguments)."""
    return WorkflowRecognizer(**kwargs)  # type: ignore[arg-type]
