"""Visual tokens of surgical frames: the segmenter package's image encoder, pooled to a grid.

GMAI-VL feeds its language model the patch features of a pretrained vision encoder; none can be
downloaded here, and the project's own encoder that knows surgical scenes best is the
interactive segmenter's: trained on phantom frames to find the instruments and the anatomy the
steps differ by (the video-text model freezes it for the same reason). Its embedding map is
averaged over a coarse ``grid`` of cells, each cell one visual token, so the language model
sees where things are (two instruments stay two tokens) at a handful of tokens per frame.
Given an instrument classifier, each frame gets one more token after its cells: the instruments
the frame shows (:class:`~orstream.vlm.visual.instrument_evidence.InstrumentEvidence`, from the same
embedding), zero-padded to the embedding's width so one projector maps every token.

The graphs run on ONNX Runtime from the packages, as the server tier runs them; before they
encode anything, they must reproduce the packages' golden references. Frames are resized and
normalised as the package card says (:class:`~orstream.package.preprocess.ImagePreprocessor`,
the same pre-processing the edge gives the segmenter), so the tokens follow the package.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from orstream.errors import OrstreamError
from orstream.package.card import INTERACTIVE_SEGMENTATION
from orstream.package.loading import load_package
from orstream.package.onnx_session import open_session
from orstream.package.preprocess import INTERPOLATION, ImagePreprocessor
from orstream.vlm.visual.instrument_evidence import InstrumentEvidence

DEFAULT_GRID = (2, 2)


class FrameFeatures:
    """RGB frames in, ``grid`` tokens of the image embedding's width per frame out (and one
    instrument token with ``instruments``).

    Args:
        package: an interactive segmentation package (its ``model.onnx`` is the image encoder).
        grid: (rows, columns) of cells the embedding map is averaged over.
        threads: ONNX Runtime threads.
        instruments: an instrument classification package; None: no instrument token.

    Raises:
        OrstreamError: a package cannot be opened or is not of its kind, a graph does not
            reproduce its golden reference, or the classifier has more classes than the
            embedding has channels.
    """

    def __init__(
        self,
        package: Path,
        grid: tuple[int, int] = DEFAULT_GRID,
        threads: int = 1,
        instruments: Path | None = None,
    ) -> None:
        loaded = load_package(package)
        card = loaded.card
        if card.task != INTERACTIVE_SEGMENTATION:
            raise OrstreamError(f"model package {package} is a {card.task} package, not "
                                f"{INTERACTIVE_SEGMENTATION}")  # fmt: skip
        self._preprocess = ImagePreprocessor.from_card(card)
        self.size = self._preprocess.size
        self.width = card.outputs[0].shape[1]
        self.grid = grid
        self.sha256 = card.hashes.model_onnx
        """The image encoder graph's content hash: what features computed with it depend on."""
        self._input = self._preprocess.spec.name
        self._output = card.outputs[0].name
        assert self._preprocess.spec.resize is not None  # an image input has a resize
        self._interpolation = INTERPOLATION[self._preprocess.spec.resize.interpolation]
        self._session = open_session(loaded, "model", threads)
        self.evidence = (
            InstrumentEvidence(loaded, load_package(instruments), threads)
            if instruments is not None
            else None
        )
        if self.evidence is not None and self.evidence.classes > self.width:
            raise OrstreamError(
                f"{instruments}: {self.evidence.classes} instrument classes do not fit a token "
                f"of the image embedding's {self.width} channels"
            )

    @property
    def tokens_per_frame(self) -> int:
        return self.grid[0] * self.grid[1] + (self.evidence is not None)

    @property
    def settings(self) -> str:
        """What the tokens depend on (graphs by content hash, the grid): a cache key."""
        instruments = self.evidence.sha256 if self.evidence is not None else None
        return f"{self.sha256}|{self.grid}|{instruments}"

    def encode(self, frames: np.ndarray) -> np.ndarray:
        """RGB uint8 frames [N, H, W, 3] (any size) -> float32 tokens [N, tokens, width]:
        the cells row by row, then the instrument token."""
        height, width = self.size
        cells = self.grid[0] * self.grid[1]
        out = np.zeros((len(frames), self.tokens_per_frame, self.width), np.float32)
        for index, frame in enumerate(frames):
            if frame.shape[:2] != (height, width):
                # Resized here, not only inside the pre-processor: the instrument evidence
                # clicks on the frame the encoder saw.
                frame = cv2.resize(frame, (width, height), interpolation=self._interpolation)
            batch = self._preprocess(frame)
            embedding = self._session.run([self._output], {self._input: batch})[0]
            out[index, :cells] = pool_grid(embedding[0], self.grid)
            if self.evidence is not None:
                out[index, cells, : self.evidence.classes] = self.evidence(frame, embedding)
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
