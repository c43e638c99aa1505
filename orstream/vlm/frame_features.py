"""Visual tokens of surgical frames: the segmenter package's image encoder, pooled to a grid.

GMAI-VL feeds its language model the patch features of a pretrained vision encoder; none can be
downloaded here, and the project's own encoder that knows surgical scenes best is the
interactive segmenter's: trained on phantom frames to find the instruments and the anatomy the
steps differ by (the video-text model freezes it for the same reason). Its embedding map is
averaged over a coarse ``grid`` of cells, each cell one visual token, so the language model
sees where things are (two instruments stay two tokens) at a handful of tokens per frame.

The encoder runs on ONNX Runtime from the package, as the server tier runs it; before it encodes
anything, the graph must reproduce the package's golden reference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import INTERACTIVE_SEGMENTATION
from orstream.package.loading import load_package

REFERENCE_TOLERANCE = 1e-4
DEFAULT_GRID = (2, 2)


class FrameFeatures:
    """RGB frames in, ``grid`` tokens of the image embedding's width per frame out.

    Args:
        package: an interactive segmentation package (its ``model.onnx`` is the image encoder).
        grid: (rows, columns) of cells the embedding map is averaged over.
        threads: ONNX Runtime threads.

    Raises:
        OrstreamError: the package cannot be opened, is not a segmentation package, or its graph
            does not reproduce its golden reference.
    """

    def __init__(
        self, package: Path, grid: tuple[int, int] = DEFAULT_GRID, threads: int = 1
    ) -> None:
        import onnxruntime as ort

        loaded = load_package(package)
        card = loaded.card
        if card.task != INTERACTIVE_SEGMENTATION:
            raise OrstreamError(f"model package {package} is a {card.task} package, not "
                                f"{INTERACTIVE_SEGMENTATION}")  # fmt: skip
        image = card.inputs[0]
        assert image.mean is not None and image.std is not None and image.scale is not None
        self.size = (image.shape[2], image.shape[3])
        self.width = card.outputs[0].shape[1]
        self.grid = grid
        self.sha256 = card.hashes.model_onnx
        """The image encoder graph's content hash: what features computed with it depend on."""
        self._input = image.name
        self._output = card.outputs[0].name
        self._scale = float(image.scale)
        self._mean = np.array(image.mean, np.float32)[:, None, None]
        self._std = np.array(image.std, np.float32)[:, None, None]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session: Any = ort.InferenceSession(
            str(loaded.model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        reference = loaded.reference("model")
        if reference is not None:
            got = self._session.run([self._output], reference.inputs)[0]
            difference = float(np.abs(got - reference.outputs[self._output]).max())
            if difference > REFERENCE_TOLERANCE:
                raise OrstreamError(
                    f"{package}: image encoder output is {difference:.3g} from the golden "
                    f"reference (at most {REFERENCE_TOLERANCE:g}): refusing it"
                )

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1]

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """RGB uint8 frames [N, H, W, 3] (any size) -> float32 tokens [N, rows*cols, width],
        cells row by row."""
        import cv2

        height, width = self.size
        out = np.empty((len(frames), self.tokens_per_frame, self.width), np.float32)
        for index, frame in enumerate(frames):
            if frame.shape[:2] != (height, width):
                frame = cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA)
            planes = frame.transpose(2, 0, 1).astype(np.float32) / self._scale
            batch = ((planes - self._mean) / self._std)[None]
            embedding = self._session.run([self._output], {self._input: batch})[0][0]
            out[index] = pool_grid(embedding, self.grid)
        return out


def pool_grid(embedding: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Means of a [C, H, W] map over ``grid`` cells (edges split as evenly as integers allow),
    as [rows*cols, C]."""
    height, width = embedding.shape[1:]
    rows = np.linspace(0, height, grid[0] + 1).round().astype(int)
    columns = np.linspace(0, width, grid[1] + 1).round().astype(int)
    cells = [
        embedding[:, rows[r] : rows[r + 1], columns[c] : columns[c + 1]].mean(axis=(1, 2))
        for r in range(grid[0])
        for c in range(grid[1])
    ]
    return np.stack(cells).astype(np.float32)
