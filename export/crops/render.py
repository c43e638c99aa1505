"""Tip crops of what the live segmenter finds in phantom cases, labelled by their true masks.

The cases are rendered on the fly (one per seed, video 1, normal difficulty) with their exact
instrument masks. Each sampled frame is encoded by the segmenter package the classifier will
serve beside, and its objects are found exactly as the edge finds them
(:meth:`orstream.edge.models.live_masks.LiveMasks.found`), so the classifier learns on the masks
it will be given, errors included. A find whose IoU with an instrument's true mask (at the
segmenter's input size) is at least :data:`MATCH_IOU` is that instrument; any other is class 0,
no instrument (tissue, the sella, two instruments in one mask). ``truth_copies`` jittered crops
of each true instrument mask per frame come on top, so that rare instruments are seen more often
than the finder happens to find them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from orstream.edge.models.live_masks import LiveMasks
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_CODES
from orstream.package.loading import load_package
from orstream.segmentation.instrument_crop import Crops, tip_crop
from orstream.segmentation.instrument_finding import MIN_AREA
from orstream.streams.phantom.difficulty import get_difficulty
from orstream.streams.phantom.renderer import CaseRenderer

MATCH_IOU = 0.5
"""IoU with an instrument's true mask from which a find is that instrument."""
PHANTOM_VIDEO = 1


def parse_seeds(text: str) -> list[int]:
    """``"201-230"`` or ``"5,7,9-12"`` -> the seeds (OrstreamError for anything else)."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds += list(range(int(first), int(last or first) + 1))
    except ValueError:
        raise OrstreamError(f"seeds {text!r}: give numbers and ranges, e.g. 201-230,240") from None
    if not seeds:
        raise OrstreamError(f"seeds {text!r}: no seed given")
    return seeds


def render_crops(
    segmenter: Path,
    seeds: list[int],
    seconds: int,
    every_s: float,
    size: tuple[int, int],
    truth_copies: int,
) -> Crops:
    """The crops of the cases ``seeds`` (module docstring), a frame every ``every_s`` seconds of
    frames ``size`` (height, width).

    Raises:
        OrstreamError: the segmenter package cannot be loaded, or the cases give no crop.
    """
    from tqdm import tqdm

    package = load_package(segmenter)
    model = SegmenterModel.load(package)
    finder = LiveMasks(model)
    index_of = {code: index for index, code in enumerate(INSTRUMENT_CODES)}
    height, width = size
    in_height, in_width = model.input_size
    rng = np.random.default_rng(0)
    images, labels, origins = [], [], []
    for seed in tqdm(seeds, desc="rendering crops", unit="case", file=sys.stderr):
        renderer = CaseRenderer(
            seed, PHANTOM_VIDEO, seconds, get_difficulty("normal"), width, height, fps=24.0
        )
        step = max(1, round(every_s * renderer.fps))
        for index in range(int(rng.integers(step)), renderer.frame_count, step):
            frame = np.zeros((height, width, 3), np.uint8)
            truth = np.zeros((height, width), np.uint8)
            renderer.render(index, frame, truth)
            codes, areas = np.unique(truth, return_counts=True)
            instruments = {
                int(code): cv2.resize(
                    (truth == code).astype(np.float32),
                    (in_width, in_height),
                    interpolation=cv2.INTER_AREA,
                )
                >= 0.5
                for code, area in zip(codes, areas, strict=True)
                if code in index_of and code != 0 and area >= MIN_AREA * height * width
            }
            for found in finder.found(frame, model.embed(frame)):
                crop = tip_crop(frame, found.mask)
                if crop is None:
                    continue
                label = 0
                for code, mask in instruments.items():
                    union = np.count_nonzero(found.mask | mask)
                    if union and np.count_nonzero(found.mask & mask) / union >= MATCH_IOU:
                        label = index_of[code]
                images.append(crop)
                labels.append(label)
                origins.append(seed)
            for code in instruments:
                for _ in range(truth_copies):
                    crop = tip_crop(frame, truth == code, rng)
                    if crop is not None:
                        images.append(crop)
                        labels.append(index_of[code])
                        origins.append(seed)
    if not images:
        raise OrstreamError(f"phantom cases {seeds} gave no crops")
    source: dict[str, object] = {
        "segmenter": f"{package.card.name}@{package.card.version}",
        "seeds": seeds,
        "seconds": seconds,
        "every_s": every_s,
        "size": [height, width],
        "truth_copies": truth_copies,
    }
    return Crops(
        np.stack(images), np.asarray(labels, np.int64), np.asarray(origins, np.int64), source
    )
