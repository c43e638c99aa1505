"""The picture of one instrument that the instrument classifier names it from: its tip.

Instruments enter the endoscope's view from its rim and differ at the end that works on tissue
(jaws, cups, a blade, a burr); their shafts look alike. So the crop is taken around the mask's
tip, the end of its long axis nearer the frame's centre, and turned so that the shaft always runs
to the right: the classifier never has to learn rotations. Its side is a fixed multiple of the
instrument's mean width (area over length), so an instrument close to the lens and one far away
give crops of the same scale. Pixels outside the mask are dimmed, which tells the classifier
which object of a crowded crop it is naming.

The crops the classifier trains on (:mod:`orstream.export.crops`, files in the format of
:func:`write_crops`) and the edge (:class:`orstream.edge.models.live_masks.LiveMasks`) both crop
here, so the classifier sees the same pictures in both.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from orstream.errors import OrstreamError

CROP_SIZE = 64
"""Side of a crop in pixels."""
SIDE_WIDTHS = 8.0
"""Side of the cropped square in instrument widths."""
TIP_AT = 0.25
"""Where the tip lies along the crop, as a fraction of its side from the left."""
OUTSIDE_GAIN = 0.25
"""Brightness kept outside the mask."""
MIN_PIXELS = 20
"""Fewer mask pixels than this give no crop: nothing to name."""


def tip_crop(
    frame: np.ndarray,
    mask: np.ndarray,
    jitter: np.random.Generator | None = None,
) -> np.ndarray | None:
    """The tip crop of the object ``mask`` covers in ``frame``.

    Args:
        frame: RGB uint8 (H, W, 3).
        mask: bool (h, w), at the frame's size or smaller (a scaled-down mask is scaled up
            with the frame's aspect, e.g. a mask at the segmenter's input size).
        jitter: in training, moves, turns and scales the crop a little, as a mask's errors do.

    Returns:
        RGB uint8 (CROP_SIZE, CROP_SIZE, 3), or None for a mask of fewer than
        :data:`MIN_PIXELS` pixels.
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < MIN_PIXELS:
        return None
    scale = frame.shape[1] / mask.shape[1], frame.shape[0] / mask.shape[0]
    points = np.stack([(xs + 0.5) * scale[0], (ys + 0.5) * scale[1]], 1)
    centre = points.mean(0)
    _, vectors = np.linalg.eigh(np.cov((points - centre).T))
    axis = vectors[:, 1]
    along = (points - centre) @ axis
    low, high = np.percentile(along, [0.5, 99.5])
    ends = (centre + low * axis, centre + high * axis)
    middle = np.array([frame.shape[1] / 2.0, frame.shape[0] / 2.0])
    near = int(np.hypot(*(ends[1] - middle)) < np.hypot(*(ends[0] - middle)))
    tip, other = ends[near], ends[1 - near]
    shaft = (other - tip) / max(float(np.hypot(*(other - tip))), 1e-6)
    width = max(2.0, len(xs) * scale[0] * scale[1] / max(high - low, 1.0))
    side = SIDE_WIDTHS * width
    if jitter is not None:
        turn = jitter.normal(0.0, 0.15)
        cos, sin = math.cos(turn), math.sin(turn)
        shaft = np.array([cos * shaft[0] - sin * shaft[1], sin * shaft[0] + cos * shaft[1]])
        side *= math.exp(jitter.normal(0.0, 0.15))
        tip = tip + jitter.normal(0.0, 0.3 * width, 2)
    normal = np.array([-shaft[1], shaft[0]])
    origin = tip - TIP_AT * side * shaft - 0.5 * side * normal
    corners = np.array([origin, origin + side * shaft, origin + side * normal], np.float32)
    target = np.array([[0, 0], [CROP_SIZE, 0], [0, CROP_SIZE]], np.float32)
    to_crop = cv2.getAffineTransform(corners, target)
    shrink = cv2.INTER_AREA if side > CROP_SIZE else cv2.INTER_LINEAR
    crop = cv2.warpAffine(frame, to_crop, (CROP_SIZE, CROP_SIZE), flags=shrink)
    # The mask's own pixels map through the same affine, scaled from its size to the frame's.
    mask_to_crop = to_crop @ np.array([[scale[0], 0, 0], [0, scale[1], 0], [0, 0, 1]])
    inside = cv2.warpAffine(
        mask.astype(np.float32), mask_to_crop.astype(np.float32), (CROP_SIZE, CROP_SIZE)
    )
    gain = OUTSIDE_GAIN + (1.0 - OUTSIDE_GAIN) * inside[..., None]
    return (crop * gain).astype(np.uint8)


@dataclass(frozen=True)
class Crops:
    """Tip crops with their classes, as ``orstream export crops`` writes them and ``orstream
    train classifier`` reads them.

    Attributes:
        images: RGB uint8 [N, CROP_SIZE, CROP_SIZE, 3].
        labels: class index into ``orstream.labels.INSTRUMENT_CODES`` per crop (0: none).
        seeds: the phantom case each crop came from.
        source: how they were made (segmenter, seeds, settings), recorded in the card.
    """

    images: np.ndarray
    labels: np.ndarray
    seeds: np.ndarray
    source: dict[str, object]

    def __len__(self) -> int:
        return len(self.labels)


def write_crops(path: Path, crops: Crops) -> None:
    """Write ``crops`` to ``path`` (``.npz``), atomically."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        np.savez(
            handle,
            images=crops.images,
            labels=crops.labels,
            seeds=crops.seeds,
            source=np.array(json.dumps(crops.source)),
        )
    os.replace(partial, path)


def read_crops(path: Path) -> Crops:
    """The crops of a file :func:`write_crops` wrote.

    Raises:
        OrstreamError: the file is missing or is not such a file.
    """
    if not path.is_file():
        raise OrstreamError(f"{path}: crops file not found (orstream export crops writes one)")
    try:
        with np.load(path, allow_pickle=False) as saved:
            crops = Crops(
                saved["images"],
                saved["labels"].astype(np.int64),
                saved["seeds"].astype(np.int64),
                json.loads(str(saved["source"])),
            )
    except (OSError, ValueError, KeyError) as error:
        raise OrstreamError(f"{path}: not a crops file ({error})") from None
    size = (CROP_SIZE, CROP_SIZE, 3)
    if crops.images.shape[1:] != size or crops.images.dtype != np.uint8:
        raise OrstreamError(f"{path}: crops must be uint8 {list(size)}")
    if not len(crops.labels) == len(crops.seeds) == len(crops.images):
        raise OrstreamError(f"{path}: crops, labels and seeds differ in number")
    return crops
