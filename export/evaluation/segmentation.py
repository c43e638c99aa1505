"""Interactive segmentation scored in the IMIS protocol on a phantom dataset.

Data: a dataset root in the PitVis layout with ``videos/video_NN.mp4``,
``masks/video_NN/TTTTT.png`` (pixel = instrument code) and, when present,
``anatomy/video_NN/TTTTT.png`` (pixel = anatomy code, 101 = sella); mask TTTTT belongs to frame
``round(TTTTT * fps)``. A *target* is one class of the package present in one annotated frame
with at least :data:`MIN_AREA` pixels (the training data's threshold).

Every target is prompted three ways, each on its own:

- points: a first click on the target pixel farthest from its boundary, then a corrective click
  per round from the largest error region (``training.data.click_simulation.next_click``), with all
  clicks so far and the previous round's low-resolution logits as the mask prompt; scored after
  each of :data:`ROUNDS` clicks ("points" is the last round);
- box: the tight box of the truth;
- text: the class name.

The package runs as the edge runs it (:class:`orstream.edge.models.segmenter_model.SegmenterModel`):
the best of 3 candidates by predicted IoU, upscaled to the frame. Dice and IoU are computed at the
frame's full resolution with the mask at probability 0.5 (logit 0), averaged over an image's
targets, then over images; per kind (instrument, anatomy) over the images that have that kind.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from orstream.edge.models.segmenter_model import ImageEmbedding, SegmenterModel
from orstream.errors import OrstreamError
from orstream.labels import ANATOMY
from orstream.package.loading import load_package
from orstream.pitvis import layout
from orstream.segmentation.mask_scores import Score, mask_box, score_mask
from orstream.segmentation.prompts import Prompt
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.click_simulation import Click, next_click
from orstream.training.data.frame_cache import load_frames
from orstream.training.data.label_masks import read_label_png

MIN_AREA = 100
"""Fewest full-resolution pixels of a class in a frame for it to be a target (as in training)."""
ROUNDS = (1, 3, 5)
"""Clicks after which the points prompt is scored; the last is the "points" score."""
PROMPTS = ("points", "box", "text")
KINDS = ("instrument", "anatomy")
DECODE_CHUNK = 16
"""Full-resolution frames decoded at once."""

Progress = Callable[[int, int], None]
"""Called with (images done, images in all) as the evaluation goes."""


@dataclass(frozen=True)
class TargetResult:
    """One target's scores: ``scores[key]`` for the keys of :func:`score_keys`."""

    code: int
    kind: str
    scores: dict[str, Score]


@dataclass(frozen=True)
class SegmentationReport:
    """Mean scores over images (None where no image has a target of that kind)."""

    images: int
    targets: int
    targets_by_kind: dict[str, int]
    means: dict[str, Score]
    """Keys of :func:`score_keys`: "points", "box", "text" and "round_N"."""
    by_kind: dict[str, dict[str, Score | None]]
    """kind -> prompt ("points", "box", "text") -> mean score."""

    def to_json(self) -> dict[str, object]:
        """The report as ``orstream eval segmentation --json`` prints it."""
        return {
            "images": self.images,
            "targets": self.targets,
            **{prompt: self.means[prompt].as_dict() for prompt in PROMPTS},
            "rounds": {str(n): self.means[f"round_{n}"].as_dict() for n in ROUNDS},
            "by_kind": {
                kind: {
                    prompt: None if score is None else score.as_dict()
                    for prompt, score in prompts.items()
                }
                for kind, prompts in self.by_kind.items()
            },
        }


def score_keys() -> tuple[str, ...]:
    return (*PROMPTS, *(f"round_{n}" for n in ROUNDS))


def evaluate_target(
    model: SegmenterModel,
    embedding: ImageEmbedding,
    truth: np.ndarray,
    name: str,
    rng: np.random.Generator,
) -> dict[str, Score]:
    """Scores of one target (boolean mask at the frame's size) under every prompt."""
    scores = {
        "box": score_mask(model.segment(embedding, Prompt(box=mask_box(truth))).mask, truth),
        "text": score_mask(model.segment(embedding, Prompt(text=name)).mask, truth),
    }
    clicks: list[Click] = []
    prediction = np.zeros_like(truth)
    logits = None
    score = Score(0.0, 0.0)
    for round_ in range(1, max(ROUNDS) + 1):
        # depth 1: the click lands where the error region is deepest, as a careful user would.
        click = next_click(prediction, truth, rng, depth=1.0)
        if click is not None:  # None: the mask is already perfect and stays so
            clicks.append(click)
            answer = model.segment(
                embedding,
                Prompt(
                    points=tuple((float(c.x), float(c.y)) for c in clicks),
                    point_labels=tuple(int(c.positive) for c in clicks),
                    mask_logits=logits,
                ),
            )
            prediction, logits = answer.mask, answer.low_res_logits
            score = score_mask(prediction, truth)
        if round_ in ROUNDS:
            scores[f"round_{round_}"] = score
    scores["points"] = scores[f"round_{max(ROUNDS)}"]
    return scores


@dataclass(frozen=True)
class _Image:
    video: int
    time: int
    frame: int
    mask: Path
    anatomy: Path | None


def _targets(image: _Image, shape: tuple[int, int], codes: set[int]) -> dict[int, np.ndarray]:
    """Code -> boolean mask of each target of an annotated frame."""
    labels = [read_label_png(image.mask, shape)]
    if image.anatomy is not None:
        labels.append(read_label_png(image.anatomy, shape))
    targets = {}
    for label in labels:
        present, counts = np.unique(label, return_counts=True)
        for code, count in zip(present.tolist(), counts.tolist(), strict=True):
            if code in codes and count >= MIN_AREA:
                targets[code] = label == code
    return targets


def select_images(
    root: Path, codes: set[int], every: float, max_images: int | None
) -> list[tuple[Path, tuple[int, int], list[_Image]]]:
    """Per video: (path, frame shape, annotated frames with a target), annotated frames at
    least ``every`` seconds apart, at most ``max_images`` in all."""
    has_anatomy = layout.has_anatomy(root)
    selected = []
    total = 0
    for video, path in layout.find_masked_videos(root).items():
        if max_images is not None and total >= max_images:
            break
        info = probe_video(path)
        shape = (info.height, info.width)
        images = []
        last = -math.inf
        for second in layout.mask_seconds(root, video):
            if second - last < every:
                continue
            image = _Image(
                video=video,
                time=second,
                frame=min(round(second * info.fps), info.frame_count - 1),
                mask=layout.mask_path(root, video, second),
                anatomy=layout.anatomy_path(root, video, second) if has_anatomy else None,
            )
            if not _targets(image, shape, codes):
                continue
            last = second
            images.append(image)
            total += 1
            if max_images is not None and total >= max_images:
                break
        if images:
            selected.append((path, shape, images))
    return selected


def _frames(path: Path, shape: tuple[int, int], images: Sequence[_Image]) -> Iterator[np.ndarray]:
    for start in range(0, len(images), DECODE_CHUNK):
        chunk = images[start : start + DECODE_CHUNK]
        indices = np.asarray([image.frame for image in chunk], dtype=np.int64)
        yield from load_frames(path, indices, shape, cache_dir=None)


def _mean(scores: Sequence[Score]) -> Score:
    return Score(float(np.mean([s.dice for s in scores])), float(np.mean([s.iou for s in scores])))


def summarize(per_image: Sequence[Sequence[TargetResult]]) -> SegmentationReport:
    """Means over each image's targets, then over images (and per kind over the images that
    have that kind)."""
    images = [targets for targets in per_image if targets]
    if not images:
        raise OrstreamError("no targets to score")
    means = {
        key: _mean([_mean([t.scores[key] for t in targets]) for targets in images])
        for key in score_keys()
    }
    by_kind: dict[str, dict[str, Score | None]] = {}
    for kind in KINDS:
        of_kind = [[t for t in targets if t.kind == kind] for targets in images]
        of_kind = [targets for targets in of_kind if targets]
        by_kind[kind] = {
            prompt: (
                _mean([_mean([t.scores[prompt] for t in targets]) for targets in of_kind])
                if of_kind
                else None
            )
            for prompt in PROMPTS
        }
    return SegmentationReport(
        images=len(images),
        targets=sum(len(targets) for targets in images),
        targets_by_kind={
            kind: sum(t.kind == kind for targets in images for t in targets) for kind in KINDS
        },
        means=means,
        by_kind=by_kind,
    )


def evaluate_segmentation(
    package_path: Path,
    data: Path,
    *,
    every: float = 1.0,
    max_images: int | None = None,
    progress: Progress | None = None,
) -> SegmentationReport:
    """Score the package on the dataset ``data`` (module docstring).

    Args:
        every: seconds between the annotated frames used (1: every annotated second).
        max_images: stop after this many frames with a target.
        progress: called after each image with (done, total).

    Raises:
        OrstreamError: a package that is not an interactive segmentation package, a dataset
            that is missing, malformed or has no target of the package's classes, bad options.
    """
    if not every > 0:
        raise OrstreamError(f"--every must be above 0 seconds, not {every:g}")
    if max_images is not None and max_images < 1:
        raise OrstreamError(f"--max-images must be at least 1, not {max_images}")
    model = SegmenterModel.load(load_package(package_path))
    if model.point_slots < max(ROUNDS):
        raise OrstreamError(
            f"the package's decoder takes {model.point_slots} clicks; the protocol needs "
            f"{max(ROUNDS)}"
        )
    names = {code: name for name, code in model.classes.items()}
    selected = select_images(Path(data), set(names), every, max_images)
    total = sum(len(images) for _, _, images in selected)
    if not total:
        raise OrstreamError(
            f"{data}: no targets (no class of the package covers {MIN_AREA} pixels in a mask)"
        )
    per_image: list[list[TargetResult]] = []
    for path, shape, images in selected:
        for image, frame in zip(images, _frames(path, shape, images), strict=True):
            embedding = model.embed(frame)
            results = []
            for code, truth in sorted(_targets(image, shape, set(names)).items()):
                rng = np.random.default_rng([image.video, image.time, code])
                scores = evaluate_target(model, embedding, truth, names[code], rng)
                kind = "anatomy" if code in ANATOMY else "instrument"
                results.append(TargetResult(code, kind, scores))
            per_image.append(results)
            if progress is not None:
                progress(len(per_image), total)
    return summarize(per_image)


class StderrProgress:
    """``images done/total`` on one stderr line, refreshed at most twice a second."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self.shown < 0.5 and done < total:
            return
        self.shown = now
        rate = done / max(1e-6, now - self.start)
        print(
            f"\rsegmentation eval: {done}/{total} images ({100 * done // total}%), "
            f"{rate:.1f} images/s\033[K",
            end="\n" if done >= total else "",
            file=sys.stderr,
            flush=True,
        )
