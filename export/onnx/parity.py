"""Parity between a PyTorch streaming model and its exported graph run by an edge backend.

Both sides process the same frames one at a time, each carrying its own state from frame to
frame, exactly as the edge will: differences that accumulate through the state show up here.
With a batch of several rows each row is a stream of its own, over the same frames from
another starting point, as the edge batches the streams that fall due together.
Frames go through the edge's card-driven pre-processing first, so parity covers the input
tensors the edge really produces.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from orstream.edge.backends import Backend
from orstream.package.card import ModelCard, ParityResult
from orstream.package.preprocess import ImagePreprocessor
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer


@runtime_checkable
class StreamingModel(Protocol):
    """A PyTorch model that runs frame by frame with explicit state (the workflow recognizer).

    ``streaming_step(image [B, 3, H, W], *state)`` returns the per-frame outputs followed by
    the new state, one tensor per entry of ``state_shapes()``.
    """

    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    sample_fps: float

    def state_shapes(self) -> dict[str, tuple[int, ...]]: ...

    def initial_state(self, batch: int) -> tuple[Tensor, ...]: ...

    def streaming_step(self, image: Tensor, *state: Tensor) -> tuple[Tensor, ...]: ...


PHANTOM_SIZE = (180, 320)
"""(height, width) of phantom parity frames: small, since painting a case's textures at 720p
takes seconds, and unlike the model's input, so the card's resize is part of the check."""


def random_frames(count: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """``count`` RGB uint8 frames of uniform noise, [count, height, width, 3]."""
    return np.random.default_rng(seed).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def phantom_frames(count: int, seed: int = 0) -> np.ndarray:
    """``count`` endoscopy-like RGB uint8 frames [count, 180, 320, 3] of a phantom case.

    One frame per second of a case ``count`` seconds long, so the frames walk through the
    case's step sequence (out of patient, tissue, instruments) as a surgery would.
    """
    height, width = PHANTOM_SIZE
    renderer = CaseRenderer(
        seed=seed,
        video=1,
        seconds=count,
        difficulty=get_difficulty("normal"),
        width=width,
        height=height,
        fps=1.0,
    )
    return np.stack([renderer.render(index).image for index in range(count)])


def check_parity(
    model: StreamingModel,
    backend: Backend,
    card: ModelCard,
    frames: np.ndarray,
    source: str,
    tolerance: float,
    batch: int = 1,
) -> ParityResult:
    """Run ``frames`` through both sides frame by frame; the max abs difference per output.

    Args:
        model: the PyTorch model in eval mode.
        backend: a backend with the exported package loaded.
        card: the package's card (graph tensor names, state, image pre-processing).
        frames: RGB uint8 frames [N, H, W, 3], any size (the card's resize applies).
        source: what the frames are, recorded in the result (random, phantom).
        tolerance: the allowed max abs difference, recorded in the result.
        batch: rows per call; row r sees frame (t + r) mod N at step t, with its own state.

    Returns:
        The max abs difference over all frames for every graph output, state outputs included.
    """
    preprocess = ImagePreprocessor.from_card(card)
    output_names = list(card.graph_outputs())
    worst = dict.fromkeys(output_names, 0.0)
    torch_state = model.initial_state(batch)
    graph_state = {
        name: np.repeat(value, batch, axis=0) for name, value in card.initial_state().items()
    }
    images = np.stack([preprocess(frame) for frame in frames])
    with torch.inference_mode():
        for step in range(len(frames)):
            rows = [(step + row) % len(frames) for row in range(batch)]
            image = np.concatenate(images[rows])
            expected = model.streaming_step(torch.from_numpy(image), *torch_state)
            actual = backend.infer({preprocess.spec.name: image, **graph_state})
            for name, reference in zip(output_names, expected, strict=True):
                difference = np.abs(actual[name].astype(np.float64) - reference.double().numpy())
                worst[name] = max(worst[name], float(difference.max()))
            torch_state = tuple(expected[len(card.outputs) :])
            graph_state = card.next_state(actual)
    return ParityResult(
        source=source, frames=len(frames), batch=batch, max_abs_diff=worst, tolerance=tolerance
    )
