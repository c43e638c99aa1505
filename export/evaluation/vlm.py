"""A vision-language package scored on held-out phantom questions, with and without reasoning.

The questions are those training holds out (:mod:`orstream.vlm.questions.surgical_questions` on the
held-out cases, :mod:`orstream.vlm.questions.slide_questions` on the held-out slides; by default the
ones the package's training record names, with its question seed, window and stride). Each is asked
as serving asks it: a surgical question with its window's frames (one per second, the frame
training encoded for that second, at the frame encoder's input size) and a slide question with
the slide file, through the package's own encoders (:class:`~orstream.vlm.visual.visual_input.
VisualEncoders`), laid out as training laid it out (``Question: ...`` with the options of a
multiple-choice question, ``Answer: ``), and answered greedily by the
:class:`~orstream.vlm.answering.answer_engine.AnswerEngine`, several at once.

Without reasoning the answer is forced to start with an empty ``<think></think>``: the model
then writes ``<answer>...</answer>`` at once, and the scored text is the forced start plus what
it wrote (so a well-formed answer stays well formed). Scoring is exact
(:func:`~orstream.vlm.questions.answer_scoring.score_answer`): ``accuracy`` over every question,
``by_type`` per question type, ``format_ok`` the share well formed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from orstream.errors import OrstreamError
from orstream.package.loading import ModelPackage, load_package
from orstream.vlm.answering.answer_backend import AnswerEnd
from orstream.vlm.answering.answer_engine import NO_REASONING, AnswerEngine
from orstream.vlm.answering.onnx_language import open_vlm_package, vlm_section
from orstream.vlm.answering.torch_language import Runtime, open_language
from orstream.vlm.prompt_layout import question_prompt
from orstream.vlm.questions.answer_scoring import score_answer
from orstream.vlm.questions.question_items import QuestionItem

Progress = Callable[[str], None]
CONCURRENT = 8
"""Questions asked at once (the engine decodes them in one batch)."""


@dataclass(frozen=True)
class Scores:
    """Exact scores of one way of asking."""

    accuracy: float
    by_type: dict[str, float]
    format_ok: float
    questions: int

    def as_json(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "by_type": self.by_type,
            "format_ok": self.format_ok,
            "questions": self.questions,
        }


@dataclass(frozen=True)
class VLMReport:
    """Scores with reasoning and without, and what was asked."""

    package: str
    runtime: str
    with_reasoning: Scores
    without_reasoning: Scores
    cases: list[str]
    answers: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "package": self.package,
            "runtime": self.runtime,
            **self.with_reasoning.as_json(),
            "without_reasoning": self.without_reasoning.as_json(),
            "cases": self.cases,
        }


def held_out(package: ModelPackage) -> tuple[list[int], list[str], Mapping[str, Any]]:
    """(held-out videos, held-out slides, the training data record) of a package."""
    data = package.card.training.data
    videos = data.get("val_videos")
    slides = data.get("val_slides")
    return (
        [int(v) for v in videos] if isinstance(videos, list) else [],  # type: ignore[arg-type]
        [str(s) for s in slides] if isinstance(slides, list) else [],
        data,
    )


def question_items(
    package: ModelPackage,
    data: Path | None,
    slides: Path | None,
    videos: list[int] | None = None,
    slide_names: list[str] | None = None,
) -> list[QuestionItem]:
    """The held-out questions of ``data`` (a surgical phantom) and ``slides`` (a slide phantom).

    Raises:
        OrstreamError: no data given, or no held-out case or slide to ask about.
    """
    from orstream.vlm.questions.slide_questions import slide_questions
    from orstream.vlm.questions.surgical_questions import STRIDE_S, WINDOW_S, dataset_questions

    recorded_videos, recorded_slides, record = held_out(package)
    videos = videos if videos is not None else recorded_videos
    slide_names = slide_names if slide_names is not None else recorded_slides
    if data is None and slides is None:
        raise OrstreamError("give --data (surgical phantom), --slides (slide phantom) or both")
    items: list[QuestionItem] = []
    if data is not None:
        if not videos:
            raise OrstreamError(f"{package.root} records no held-out cases; give --videos")
        seed = int(record.get("question_seed", 0))
        window = int(record.get("window_s", WINDOW_S))
        stride = int(record.get("stride_s", STRIDE_S))
        items += dataset_questions(data, videos, seed, window, stride)
    if slides is not None:
        if not slide_names:
            raise OrstreamError(f"{package.root} records no held-out slides; give --slide-names")
        items += slide_questions(slides, slide_names)
    return items


class _Clips:
    """Each held-out case's per-second frames, decoded once, at the frame encoder's size."""

    def __init__(self, root: Path, package: ModelPackage) -> None:
        self.root = root
        encoders = vlm_section(package).encoders
        if encoders.frame_package is None:
            raise OrstreamError(f"{package.root} records no frame package to encode clips")
        shape = load_package(Path(encoders.frame_package)).card.inputs[0].shape
        self.size = (shape[2], shape[3])
        self._cases: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def frames(self, item: QuestionItem) -> np.ndarray:
        from orstream.pitvis.csv_files import read_annotations
        from orstream.pitvis.layout import annotations_path, video_path
        from orstream.streams.sources.video_file import probe_video
        from orstream.training.data.frame_cache import load_frames

        assert item.start_s is not None and item.end_s is not None
        if item.case not in self._cases:
            video = int(item.case.removeprefix("video_"))
            path = video_path(self.root, video)
            fps = probe_video(path).fps
            seconds = read_annotations(annotations_path(self.root, video)).time
            indices = np.array([round(float(t) * fps) for t in seconds], dtype=np.int64)
            self._cases[item.case] = (seconds, load_frames(path, indices, self.size, None))
        seconds, frames = self._cases[item.case]
        first = int(np.searchsorted(seconds, item.start_s))
        last = int(np.searchsorted(seconds, item.end_s))
        return frames[first:last]


def evaluate_vlm(
    package_path: Path,
    data: Path | None,
    slides: Path | None,
    *,
    runtime: Runtime = "onnx",
    videos: list[int] | None = None,
    slide_names: list[str] | None = None,
    max_questions: int | None = None,
    max_new_tokens: int = 96,
    progress: Progress = lambda _: None,
) -> VLMReport:
    """Answer the held-out questions twice (with and without reasoning) and score them.

    Args:
        max_questions: ask at most this many, spread evenly over the list.

    Raises:
        OrstreamError: as :func:`question_items`, a package or data that cannot be read.
    """
    package = open_vlm_package(package_path)
    items = question_items(package, data, slides, videos, slide_names)
    if max_questions is not None and max_questions < len(items):
        picks = np.linspace(0, len(items) - 1, max_questions).round().astype(int)
        items = [items[i] for i in sorted(set(picks.tolist()))]
    engine = AnswerEngine.open(package, open_language(package, runtime), max_batch=CONCURRENT)
    clips = _Clips(data, package) if data is not None else None
    features: dict[tuple[str, int | None, int | None], np.ndarray] = {}
    progress(f"encoding the clips and slides of {len(items)} questions")
    for item in items:
        key = (item.case, item.start_s, item.end_s)
        if key not in features:
            assert engine.encoders is not None
            if item.source == "surgical":
                assert clips is not None
                features[key] = engine.encoders.clip_features(clips.frames(item))
            else:
                assert slides is not None
                path = slides / "slides" / f"{item.case}.tiff"
                features[key] = engine.encoders.slide_features(path)

    def answer(item: QuestionItem, reasoning: bool) -> str:
        prompt = engine.prepare(
            question_prompt(item),
            item.source,
            features[(item.case, item.start_s, item.end_s)],
            reasoning=reasoning,
        )
        stream = engine.stream_prepared(prompt, max_new_tokens)
        pieces = [] if reasoning else [NO_REASONING]
        while True:
            try:
                pieces.append(next(stream))
            except StopIteration as stop:
                assert isinstance(stop.value, AnswerEnd)
                return "".join(pieces)

    results: dict[bool, list[str]] = {}
    try:
        with ThreadPoolExecutor(CONCURRENT) as pool:
            for reasoning in (True, False):
                progress(
                    f"answering {len(items)} questions {'with' if reasoning else 'without'} "
                    "reasoning"
                )
                results[reasoning] = list(pool.map(answer, items, [reasoning] * len(items)))
    finally:
        engine.close()
    answers = [
        {
            "id": item.id,
            "truth": item.answer,
            "with": results[True][n],
            "without": results[False][n],
        }
        for n, item in enumerate(items)
    ]
    return VLMReport(
        package=str(package.root),
        runtime=runtime,
        with_reasoning=_scores(items, results[True]),
        without_reasoning=_scores(items, results[False]),
        cases=sorted({item.case for item in items}),
        answers=answers,
    )


def _scores(items: list[QuestionItem], texts: list[str]) -> Scores:
    by_type: dict[str, list[bool]] = defaultdict(list)
    formats = []
    for item, text in zip(items, texts, strict=True):
        score = score_answer(item, text)
        by_type[item.kind].append(score.correct)
        formats.append(score.format_ok)
    every = [right for results in by_type.values() for right in results]
    return Scores(
        accuracy=float(np.mean(every)) if every else 0.0,
        by_type={kind: float(np.mean(r)) for kind, r in sorted(by_type.items())},
        format_ok=float(np.mean(formats)) if formats else 0.0,
        questions=len(items),
    )
