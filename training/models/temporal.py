"""Causal multi-stage dilated TCN (TeCNO-style) whose state is explicit tensors.

Each dilated layer convolves its input over ``(kernel_size - 1) * dilation`` past frames plus
the current one. Instead of zero-padding a whole sequence, every layer takes the buffer of the
past inputs it needs as a state tensor and returns the updated buffer. Running a clip of T
frames and running T clips of one frame therefore execute the same arithmetic, which is what
lets the edge run the model frame by frame with the state carried between calls (an all-zero
state is the start of a video).

Stage 1 maps per-frame features to step and instrument logits; every later stage refines the
previous stage's probabilities (softmax over steps, sigmoid over instruments), as in TeCNO /
MS-TCN.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class CausalDilatedResidualLayer(nn.Module):
    """``x + dropout(conv1x1(relu(causal_dilated_conv(x))))`` with its input history as state."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.history = (kernel_size - 1) * dilation
        self.dilated = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, past: Tensor) -> tuple[Tensor, Tensor]:
        """Args: x [B, C, T], past [B, C, history]. Returns (output [B, C, T], new past)."""
        window = torch.cat([past, x], dim=2)
        out = self.pointwise(F.relu(self.dilated(window)))
        return x + self.dropout(out), window[:, :, window.shape[2] - self.history :]


class CausalTCNStage(nn.Module):
    """One stage: 1x1 projection in, dilated layers with dilations 1, 2, 4, ..., 1x1 out."""

    def __init__(
        self,
        in_channels: int,
        channels: int,
        out_channels: int,
        num_layers: int,
        kernel_size: int,
        dropout: float,
    ) -> None:
        super().__init__()
        self.project_in = nn.Conv1d(in_channels, channels, 1)
        self.layers = nn.ModuleList(
            CausalDilatedResidualLayer(channels, kernel_size, 2**index, dropout)
            for index in range(num_layers)
        )
        self.project_out = nn.Conv1d(channels, out_channels, 1)

    def forward(self, x: Tensor, states: Sequence[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Args: x [B, in, T], one state per layer. Returns (logits [B, out, T], new states)."""
        hidden = self.project_in(x)
        new_states = []
        for layer, past in zip(self.layers, states, strict=True):
            hidden, new_past = layer(hidden, past)
            new_states.append(new_past)
        return self.project_out(hidden), new_states


class MultiStageCausalTCN(nn.Module):
    """Stacked causal stages producing step logits (softmax) and instrument logits (sigmoid).

    Args:
        in_channels: per-frame feature size.
        num_steps: step classes (mutually exclusive).
        num_instruments: instrument classes (multi-label).
        channels: hidden width of every stage.
        num_stages: stage 1 reads features, stages 2.. refine the previous probabilities.
        num_layers: dilated layers per stage (dilations 1, 2, ..., 2**(num_layers - 1)).
        kernel_size: temporal kernel of the dilated convolutions (>= 2).
        dropout: dropout inside the residual layers (training only).
    """

    def __init__(
        self,
        in_channels: int,
        num_steps: int,
        num_instruments: int,
        channels: int = 64,
        num_stages: int = 2,
        num_layers: int = 6,
        kernel_size: int = 3,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        if num_stages < 1 or num_layers < 1:
            raise ValueError("the TCN needs at least one stage and one layer per stage")
        if kernel_size < 2:
            raise ValueError("kernel_size must be >= 2 for the TCN to see past frames")
        self.num_steps = num_steps
        self.num_instruments = num_instruments
        self.channels = channels
        outputs = num_steps + num_instruments
        # Past inputs each layer keeps, per stage: (kernel_size - 1) * dilation.
        self.histories = [
            [(kernel_size - 1) * 2**index for index in range(num_layers)] for _ in range(num_stages)
        ]
        self.stages = nn.ModuleList(
            CausalTCNStage(
                in_channels if index == 0 else outputs,
                channels,
                outputs,
                num_layers,
                kernel_size,
                dropout,
            )
            for index in range(num_stages)
        )

    @property
    def receptive_field(self) -> int:
        """Frames (current included) that the last stage's output at t depends on."""
        per_stage = [1 + sum(histories) for histories in self.histories]
        return sum(per_stage) - len(per_stage) + 1

    def state_shapes(self) -> dict[str, tuple[int, ...]]:
        """Name -> shape (without batch) of every state tensor, in argument order."""
        return {
            f"stage{stage_index + 1}_layer{layer_index + 1}": (self.channels, history)
            for stage_index, histories in enumerate(self.histories)
            for layer_index, history in enumerate(histories)
        }

    def forward(
        self, features: Tensor, states: Sequence[Tensor]
    ) -> tuple[list[tuple[Tensor, Tensor]], list[Tensor]]:
        """Run all stages over a clip continuing from ``states``.

        Args:
            features: [B, T, in_channels].
            states: one tensor per entry of :meth:`state_shapes`, each [B, *shape].

        Returns:
            Per stage (step_logits [B, T, num_steps], instrument_logits [B, T, num_instruments]),
            and the new states in the same order as ``states``.
        """
        x = features.transpose(1, 2)
        outputs: list[tuple[Tensor, Tensor]] = []
        new_states: list[Tensor] = []
        offset = 0
        for stage, histories in zip(self.stages, self.histories, strict=True):
            count = len(histories)
            logits, stage_states = stage(x, states[offset : offset + count])
            offset += count
            new_states.extend(stage_states)
            step_logits = logits[:, : self.num_steps]
            instrument_logits = logits[:, self.num_steps :]
            outputs.append((step_logits.transpose(1, 2), instrument_logits.transpose(1, 2)))
            x = torch.cat([step_logits.softmax(dim=1), instrument_logits.sigmoid()], dim=1)
        return outputs, new_states
