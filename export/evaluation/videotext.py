"""A video-text package scored on held-out phantom cases, through the edge's own runner.

Three measures, each as a user of the package meets it:

- **retrieval**: every narrated clip of the cases (its frames at the times training sampled,
  fed one by one from a fresh state) against every narration, embedded by the package's text
  graph; text->video and video->text recall at 1, 5 and 10 (a hit: the clip's own narration,
  or its own clip, among the k most similar).
- **zero-shot steps**: each case played as a live stream at the card's clip rate through
  :class:`~orstream.edge.models.video_text_runner.VideoTextRunner` (online, smoothed as the
  edge smooths it); each annotated second takes the latest prediction, as the edge's PitVis
  CSVs do; scored with the PitVis step metric per case and averaged.
- **linear probe**: a softmax regression fitted on the clip embeddings of the training cases
  (their annotated steps), then run online on the held-out cases like the zero-shot steps:
  what the embedding holds about steps beyond what the prompts reach.

Beside them, a supervised workflow package (the shipped recognizer by default) plays the same
cases at its own rate and is scored the same way.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from orstream.edge.models.video_text_runner import MAX_TEXTS, VideoTextRunner
from orstream.edge.models.workflow_runner import StreamFrame, WorkflowRunner
from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage, load_package
from orstream.pitvis.csv_files import read_annotations
from orstream.pitvis.layout import annotations_path, video_path
from orstream.pitvis.metrics import video_step_metrics
from orstream.step_smoothing import StepSmoother
from orstream.streams.sources.video_file import probe_video
from orstream.training.data.frame_cache import load_frames
from orstream.training.data.videotext_data import clip_texts

RECALL_KS = (1, 5, 10)
PROBE_STEPS = 500
PROBE_LR = 0.5
PROBE_L2 = 1e-3

Progress = Callable[[str], None]


def progress_to_stderr(message: str) -> None:
    print(f"[eval] {message}", file=sys.stderr, flush=True)


@dataclass
class VideoTextReport:
    """The scores (see the module docstring); per-video dicts are keyed by video id."""

    videos: list[int]
    probe_videos: list[int]
    clips: int
    recall: dict[str, float]
    zeroshot_step_score: float
    zeroshot_per_video: dict[int, float]
    probe_step_score: float
    probe_per_video: dict[int, float]
    supervised: str | None = None
    supervised_step_score: float = math.nan
    supervised_per_video: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        return {
            "videos": self.videos,
            "probe_videos": self.probe_videos,
            "clips": self.clips,
            **self.recall,
            "zeroshot_step_score": self.zeroshot_step_score,
            "zeroshot_per_video": {str(k): v for k, v in self.zeroshot_per_video.items()},
            "probe_step_score": self.probe_step_score,
            "probe_per_video": {str(k): v for k, v in self.probe_per_video.items()},
            "supervised": self.supervised,
            "supervised_step_score": self.supervised_step_score,
            "supervised_per_video": {str(k): v for k, v in self.supervised_per_video.items()},
        }


@dataclass(frozen=True)
class _Played:
    """One case played live: per clip-rate frame its time, embedding and zero-shot step."""

    truth: np.ndarray
    times: np.ndarray
    embeddings: np.ndarray
    steps: np.ndarray


def recall(similarity: np.ndarray, k: int) -> float:
    """Fraction of rows of a square similarity whose own column is among their k largest."""
    k = min(k, similarity.shape[1])
    top = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
    return float((top == np.arange(len(similarity))[:, None]).any(axis=1).mean())


def per_second(times: np.ndarray, predictions: np.ndarray, seconds: int) -> np.ndarray:
    """The prediction in force at each second 0..seconds-1: the latest at or before it."""
    latest = np.searchsorted(times, np.arange(seconds), side="right") - 1
    return predictions[np.clip(latest, 0, None)]


def _frames(root: Path, video: int, times: np.ndarray) -> np.ndarray:
    path = video_path(root, video)
    info = probe_video(path)
    indices = np.minimum(np.round(times * info.fps).astype(np.int64), info.frame_count - 1)
    return load_frames(path, indices, (info.height, info.width), None)


def _play(runner: VideoTextRunner, root: Path, video: int) -> _Played:
    truth = read_annotations(annotations_path(root, video)).step
    fps = runner.package.card.clip.fps
    times = np.arange(0.0, len(truth), 1.0 / fps)
    frames = _frames(root, video, times)
    stream = f"video_{video}"
    runner.reset(stream)
    embeddings, steps = [], []
    for image in frames:
        prediction = runner.run([StreamFrame(stream, image)])[0]
        embeddings.append(prediction.embedding)
        steps.append(prediction.step)
    runner.forget(stream)
    return _Played(truth, times, np.stack(embeddings), np.array(steps))


def _truth_at(case: _Played) -> np.ndarray:
    """The annotated step at each clip-rate frame of a case (the second it falls in)."""
    return case.truth[np.minimum(case.times.astype(np.int64), len(case.truth) - 1)]


def _score(truth: np.ndarray, times: np.ndarray, steps: np.ndarray) -> float:
    return video_step_metrics(truth, per_second(times, steps, len(truth))).score


def fit_probe(features: np.ndarray, labels: np.ndarray, classes: int) -> np.ndarray:
    """Weights [E + 1, C] of a softmax regression (with bias) fitted by full-batch gradient
    descent with a little L2: deterministic, no library beyond numpy."""
    x = np.hstack([features, np.ones((len(features), 1))]).astype(np.float64)
    onehot = np.eye(classes)[labels]
    weights = np.zeros((x.shape[1], classes))
    for _ in range(PROBE_STEPS):
        logits = x @ weights
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        weights -= PROBE_LR * (x.T @ (probs - onehot) / len(x) + PROBE_L2 * weights)
    return weights


def _probe_steps(
    weights: np.ndarray, embeddings: np.ndarray, codes: Sequence[int], min_dwell: int
) -> np.ndarray:
    x = np.hstack([embeddings, np.ones((len(embeddings), 1))])
    logits = x @ weights
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    smoother = StepSmoother(len(codes), min_dwell=min_dwell)
    return np.array([codes[smoother.update(row)] for row in probs])


def _retrieval(runner: VideoTextRunner, root: Path, videos: Sequence[int]) -> tuple[int, dict]:
    length = runner.package.card.clip.length
    samples = [s for s in clip_texts(root, videos, length) if s.level == "clip" and not s.silent]
    if len(samples) < 2:
        raise OrstreamError(f"{root}: fewer than 2 narrated clips in videos {list(videos)}")
    clips = []
    for video in sorted({s.video for s in samples}):
        mine = [s for s in samples if s.video == video]
        frames = _frames(root, video, np.array([t for s in mine for t in s.times]))
        for start in range(0, len(mine), runner.max_batch):
            rows = range(start, min(start + runner.max_batch, len(mine)))
            for row in rows:
                runner.reset(f"clip_{row}")
            for t in range(length):
                batch = [StreamFrame(f"clip_{row}", frames[row * length + t]) for row in rows]
                predictions = runner.run(batch)
            clips += [p.embedding for p in predictions]
            for row in rows:
                runner.forget(f"clip_{row}")
    texts = [s.text for s in samples]
    embedded = np.concatenate(
        [runner.embed_texts(texts[i : i + MAX_TEXTS]) for i in range(0, len(texts), MAX_TEXTS)]
    )
    similarity = embedded @ np.stack(clips).T
    scores = {f"t2v_r{k}": recall(similarity, k) for k in RECALL_KS}
    scores.update({f"v2t_r{k}": recall(similarity.T, k) for k in RECALL_KS})
    return len(samples), scores


def _supervised(package: ModelPackage, root: Path, videos: Sequence[int]) -> dict[int, float]:
    from orstream.edge.backends import CPU_BACKENDS, create_backend

    runner = WorkflowRunner(create_backend(CPU_BACKENDS, package), package.card)
    scores = {}
    for video in videos:
        truth = read_annotations(annotations_path(root, video)).step
        times = np.arange(0.0, len(truth), 1.0 / package.card.clip.fps)
        stream = f"video_{video}"
        steps = [
            runner.run([StreamFrame(stream, image)])[0].step
            for image in _frames(root, video, times)
        ]
        runner.forget(stream)
        scores[video] = _score(truth, times, np.array(steps))
    return scores


def _mean(values: dict[int, float]) -> float:
    kept = [v for v in values.values() if not math.isnan(v)]
    return float(np.mean(kept)) if kept else math.nan


def evaluate_videotext(
    package_path: Path,
    data: Path,
    videos: Sequence[int] | None = None,
    probe_videos: Sequence[int] | None = None,
    supervised: Path | None = None,
    progress: Progress = progress_to_stderr,
) -> VideoTextReport:
    """Score the package (module docstring).

    Args:
        package_path: a ``video_text`` package.
        data: a phantom dataset (videos, annotations, narrations, titles).
        videos: the held-out cases; default the package's validation cases.
        probe_videos: the cases the probe is fitted on; default the package's training cases.
        supervised: a workflow package to score beside it (None: none).

    Raises:
        OrstreamError: a package of another kind, no cases to score or to fit the probe on, a
            case missing from ``data``, or a case listed on both sides.
    """
    package = load_package(package_path)
    package.text_section()  # another kind of package is refused here
    if supervised is not None and load_package(supervised).card.task != "workflow_recognition":
        raise OrstreamError(f"{supervised} is not a workflow recognition package")
    cases = package.card.training.cases
    videos = list(videos if videos is not None else cases.get("val", []))
    probe_videos = list(probe_videos if probe_videos is not None else cases.get("train", []))
    if not videos:
        raise OrstreamError("no held-out cases: pass --videos (the card lists no val cases)")
    if not probe_videos:
        raise OrstreamError("no cases to fit the probe on: pass --probe-videos")
    both = sorted(set(videos) & set(probe_videos))
    if both:
        raise OrstreamError(f"videos {both} are both held out and probe training cases")
    for video in [*videos, *probe_videos]:
        if not video_path(data, video).is_file():
            raise OrstreamError(f"{video_path(data, video)}: no such video in {data}")
    runner = VideoTextRunner.load(package)
    progress(f"retrieval over the narrated clips of videos {videos}")
    clips, scores = _retrieval(runner, data, videos)
    played = {}
    for video in [*probe_videos, *videos]:
        progress(f"playing video {video} at {package.card.clip.fps:g} fps")
        played[video] = _play(runner, data, video)
    codes = runner.codes
    index = {code: i for i, code in enumerate(codes)}
    features = np.concatenate([played[v].embeddings for v in probe_videos])
    labels = np.array([index[int(step)] for v in probe_videos for step in _truth_at(played[v])])
    progress(f"fitting the linear probe on {len(features)} clip embeddings")
    weights = fit_probe(features, labels, len(codes))
    zeroshot, probe = {}, {}
    for video in videos:
        case = played[video]
        zeroshot[video] = _score(case.truth, case.times, case.steps)
        steps = _probe_steps(weights, case.embeddings, codes, runner.min_dwell)
        probe[video] = _score(case.truth, case.times, steps)
    report = VideoTextReport(
        videos=videos,
        probe_videos=probe_videos,
        clips=clips,
        recall=scores,
        zeroshot_step_score=_mean(zeroshot),
        zeroshot_per_video=zeroshot,
        probe_step_score=_mean(probe),
        probe_per_video=probe,
    )
    if supervised is not None:
        progress(f"the supervised recognizer {supervised} on the same videos")
        report.supervised = str(supervised)
        report.supervised_per_video = _supervised(load_package(supervised), data, videos)
        report.supervised_step_score = _mean(report.supervised_per_video)
    return report
