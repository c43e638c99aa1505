"""Data of the vision-language model's stages: visual tokens with the text they should produce.

- **stage 1** (alignment, GMAI-VL's first stage): each narrated clip of the surgical phantom
  with its narration, each question window (every ``stride_s`` seconds) with what its last
  second shows (the step's description and the instruments in view: the narrations cover 10 s
  apiece, too few to align the live windows the questions ask about), each slide with its
  caption; the prompt is the visual tokens and ``Describe what is seen.``;
- **stage 2** (instruction tuning): the questions of
  :mod:`orstream.vlm.questions.surgical_questions` and
  :mod:`orstream.vlm.questions.slide_questions`, answered
  ``<think>...</think><answer>...</answer>``;
- **stage 3** (GRPO, :mod:`orstream.training.modules.grpo`): the same questions; the model answers
  them itself and is rewarded against each sample's ``item``, so the targets serve only
  validation's next-token metrics.

A sequence is the prompt as :mod:`orstream.vlm.prompt_layout` lays it out (``<bos>``, one
``<image>`` per visual token, the prompt text), then the target and ``<eos>``; only the target
and ``<eos>`` are learnt (the labels of the rest are ignored).
A clip is ``window_s`` frames spread over its seconds (a question's window has exactly that
many seconds), each frame ``frame_grid`` tokens (and an instrument token with
``instrument_package``); a slide is ``slide_regions`` tokens. Batches
hold one source (surgical or slide), whose token counts and widths agree.

Held out: the cases ``val_videos`` and slides ``val_slides``, every question and narration of
them. The text tokenizer is learnt from the training cases' and slides' text (narrations,
titles, captions, both stages' prompts and targets) the first time and saved at ``tokenizer``;
later runs (stage 2 after stage 1) read it from there, so both stages share its ids.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from orstream.errors import OrstreamError
from orstream.pitvis.csv_files import read_annotations
from orstream.pitvis.layout import (
    TITLES_FILE,
    annotations_path,
    find_annotated_videos,
    narrations_path,
    video_stem,
)
from orstream.training.data.videotext_data import step_description
from orstream.training.distributed.batches import GlobalBatchSampler
from orstream.vlm.prompt_layout import DESCRIBE_PROMPT, prompt_ids, question_prompt
from orstream.vlm.questions.question_items import QuestionItem
from orstream.vlm.questions.slide_questions import slide_questions
from orstream.vlm.questions.surgical_questions import (
    STRIDE_S,
    WINDOW_S,
    dataset_questions,
    instrument_words,
    list_words,
)
from orstream.vlm.text_tokenizer import DEFAULT_VOCAB_SIZE, TextTokenizer

IGNORE = -100
Row = tuple[list[int], list[int], np.ndarray, str, int]
"""One sequence as the loader's dataset gives it: ids, labels, features, source, sample."""


@dataclass(frozen=True)
class VLMSample:
    """One training or held-out sequence before tokenizing.

    Attributes:
        source: ``surgical`` or ``slide``.
        case: ``video_NN`` or ``slide_NNN``.
        seconds: the rows of the case's per-second tokens the clip takes (surgical).
        prompt: the text after the visual tokens.
        target: the text the model learns to write.
        item: the question (stages 2 and 3), to score a generated answer against.
    """

    source: str
    case: str
    seconds: tuple[int, ...]
    prompt: str
    target: str
    item: QuestionItem | None = None


@dataclass
class VLMBatch:
    """Sequences of one source: ids and labels [B, T] (right-padded), features [B, N, F], and
    each sequence's sample index [B] (a sample repeated to fill a batch comes twice)."""

    input_ids: Tensor
    labels: Tensor
    features: Tensor
    source: str
    index: Tensor


class VLMDataModule(L.LightningDataModule):
    """Args:
    surgical_root: a surgical phantom (PitVis layout with narrations), or None.
    slide_root: a slide phantom, or None.
    val_videos: surgical cases held out.
    val_slides: slides held out.
    tokenizer: the tokenizer file: read when it exists, else learnt and written there.
    frame_package: the interactive segmentation package whose image encoder makes the frame
        tokens.
    slide_package: the slide package whose patch encoder makes the slide tokens (None: the
        shipped one).
    frame_grid: tokens per frame, (rows, columns) of the embedding map.
    instrument_package: the instrument classification package that makes each frame's
        instrument token (None: frames have none).
    slide_regions: tokens per slide, (rows, columns) of regions.
    window_s: seconds (and frames) of a question's clip.
    stride_s: seconds between question windows.
    question_seed: the seed of the questions' wording.
    cache_dir: where frame and slide tokens are cached (None: under each root, ``cache``).
    batch_size: sequences per batch.
    stage: 1 (alignment), 2 (instruction tuning) or 3 (GRPO); linked from the model.
    vocab_size: the model's token ids, the tokenizer's most; linked from the model.
    feature_widths: the model's vision feature width per source; linked from the model.
    num_workers: DataLoader workers.
    """

    def __init__(
        self,
        surgical_root: str | None = None,
        slide_root: str | None = None,
        val_videos: list[int] | None = None,
        val_slides: list[str] | None = None,
        tokenizer: str = "runs/vlm/tokenizer.json",
        frame_package: str = "edge/packages/imis_segmenter",
        slide_package: str | None = None,
        frame_grid: tuple[int, int] = (2, 2),
        instrument_package: str | None = None,
        slide_regions: tuple[int, int] = (4, 4),
        window_s: int = WINDOW_S,
        stride_s: int = STRIDE_S,
        question_seed: int = 0,
        cache_dir: str | None = None,
        batch_size: int = 16,
        stage: int = 1,
        vocab_size: int = DEFAULT_VOCAB_SIZE,
        feature_widths: dict[str, int] | None = None,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if surgical_root is None and slide_root is None:
            raise OrstreamError("give data.surgical_root, data.slide_root or both")
        if stage not in (1, 2, 3):
            raise OrstreamError(f"stage must be 1, 2 or 3, not {stage}")
        self.surgical_root = Path(surgical_root) if surgical_root else None
        self.slide_root = Path(slide_root) if slide_root else None
        self.val_videos = list(val_videos or [])
        self.val_slides = list(val_slides or [])
        self.tokenizer_path = Path(tokenizer)
        self.frame_package = Path(frame_package)
        self.slide_package = Path(slide_package) if slide_package else None
        self.frame_grid = (frame_grid[0], frame_grid[1])
        self.instrument_package = Path(instrument_package) if instrument_package else None
        self.slide_regions = (slide_regions[0], slide_regions[1])
        self.window_s, self.stride_s = window_s, stride_s
        self.question_seed = question_seed
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.batch_size, self.stage, self.vocab_size = batch_size, stage, vocab_size
        self.feature_widths = dict(feature_widths or {"surgical": 128, "slide": 512})
        self.num_workers = num_workers
        self.tokens: dict[str, np.ndarray] = {}
        self.train_samples: list[VLMSample] = []
        self.val_samples: list[VLMSample] = []
        self._tokenizer: TextTokenizer | None = None

    @property
    def tokenizer(self) -> TextTokenizer:
        if self._tokenizer is None:
            raise RuntimeError("the data module is not set up")
        return self._tokenizer

    def prepare_data(self) -> None:
        """Set up once in one process per node before every rank sets up: the tokenizer is
        learnt and the visual tokens are cached by this process alone, and the other ranks read
        them (under DDP, ranks setting up at once would learn and write them together)."""
        self.setup("fit")

    def setup(self, stage: str) -> None:
        if self._tokenizer is not None:
            return
        train_videos, train_slides = self._cases()
        samples_1 = self._alignment_samples(train_videos, train_slides)
        samples_2 = self._question_samples(train_videos, train_slides)
        if self.tokenizer_path.is_file():
            self._tokenizer = TextTokenizer.load(self.tokenizer_path)
        else:
            corpus = [s.prompt for s in samples_1 + samples_2]
            corpus += [s.target for s in samples_1 + samples_2] + self._titles(train_videos)
            self._tokenizer = TextTokenizer.train(corpus, self.vocab_size)
            self.tokenizer_path.parent.mkdir(parents=True, exist_ok=True)
            self._tokenizer.save(self.tokenizer_path)
        if self.tokenizer.vocab_size > self.vocab_size:
            raise OrstreamError(
                f"{self.tokenizer_path}: {self.tokenizer.vocab_size} ids, the model has "
                f"{self.vocab_size} (model.model_kwargs.vocab_size)"
            )
        self.train_samples = samples_1 if self.stage == 1 else samples_2
        if self.stage == 1:
            self.val_samples = self._alignment_samples(self.val_videos, self.val_slides)
        else:
            self.val_samples = self._question_samples(self.val_videos, self.val_slides)
        self._encode(train_videos + self.val_videos, train_slides + self.val_slides)

    def train_dataloader(self) -> DataLoader[Row]:
        return self._loader(self.train_samples, shuffle=True)

    def val_dataloader(self) -> DataLoader[Row]:
        return self._loader(self.val_samples, shuffle=False)

    def describe(self) -> dict[str, Any]:
        """What trained the model, for the checkpoint."""
        return {
            "stage": self.stage,
            "surgical_root": str(self.surgical_root) if self.surgical_root else None,
            "slide_root": str(self.slide_root) if self.slide_root else None,
            "val_videos": self.val_videos,
            "val_slides": self.val_slides,
            "frame_package": str(self.frame_package),
            "slide_package": str(self.slide_package) if self.slide_package else None,
            "frame_grid": list(self.frame_grid),
            "instrument_package": str(self.instrument_package) if self.instrument_package else None,
            "slide_regions": list(self.slide_regions),
            "window_s": self.window_s,
            "stride_s": self.stride_s,
            "question_seed": self.question_seed,
            "train_samples": len(self.train_samples),
            "val_samples": len(self.val_samples),
        }

    def prompt_ids(self, sample: VLMSample) -> tuple[Tensor, Tensor]:
        """(ids [1, T] of ``<bos>``, the image slots and the prompt; features [1, N, F]): what
        generation starts from."""
        features = self.features(sample)
        ids = prompt_ids(self.tokenizer, len(features), sample.prompt)
        return torch.tensor([ids]), torch.from_numpy(features)[None]

    def features(self, sample: VLMSample) -> np.ndarray:
        """The visual tokens [N, F] of a sample."""
        tokens = self.tokens[sample.case]
        if sample.source == "slide":
            return tokens
        clip = tokens[list(sample.seconds)]
        return clip.reshape(-1, clip.shape[-1])

    def sequence(self, sample: VLMSample) -> tuple[list[int], list[int], np.ndarray]:
        """(ids, labels, features) of a whole training sequence."""
        features = self.features(sample)
        prompt = prompt_ids(self.tokenizer, len(features), sample.prompt)
        target = [*self.tokenizer.encode(sample.target), self.tokenizer.eos_id]
        labels = [IGNORE] * len(prompt) + target
        return prompt + target, labels, features

    def _cases(self) -> tuple[list[int], list[str]]:
        videos: list[int] = []
        if self.surgical_root is not None:
            found = list(find_annotated_videos(self.surgical_root))
            missing = set(self.val_videos) - set(found)
            if missing:
                raise OrstreamError(f"{self.surgical_root}: no held-out videos {sorted(missing)}")
            videos = [v for v in found if v not in self.val_videos]
        slides: list[str] = []
        if self.slide_root is not None:
            labels = self.slide_root / "labels.csv"
            if not labels.is_file():
                raise OrstreamError(f"{labels}: missing (expected a slide phantom)")
            with labels.open(newline="") as handle:
                found_slides = [row["slide"] for row in csv.DictReader(handle)]
            missing_slides = set(self.val_slides) - set(found_slides)
            if missing_slides:
                raise OrstreamError(f"{labels}: no held-out slides {sorted(missing_slides)}")
            slides = [s for s in found_slides if s not in self.val_slides]
        return videos, slides

    def _alignment_samples(self, videos: list[int], slides: list[str]) -> list[VLMSample]:
        samples: list[VLMSample] = []
        if self.surgical_root is not None:
            for video in videos:
                seconds = read_annotations(annotations_path(self.surgical_root, video)).time
                for start, end, text in _narrations(narrations_path(self.surgical_root, video)):
                    first = int(np.searchsorted(seconds, start))
                    last = int(np.searchsorted(seconds, end)) - 1
                    rows = np.linspace(first, last, self.window_s).round().astype(int)
                    samples.append(
                        VLMSample("surgical", video_stem(video), tuple(rows), DESCRIBE_PROMPT, text)
                    )
                samples += self._window_descriptions(video)
        if self.slide_root is not None:
            wanted = set(slides)
            for row in _csv_rows(self.slide_root / "captions.csv"):
                if row["slide"] in wanted:
                    samples.append(
                        VLMSample("slide", row["slide"], (), DESCRIBE_PROMPT, row["caption"])
                    )
        return samples

    def _window_descriptions(self, video: int) -> list[VLMSample]:
        assert self.surgical_root is not None
        annotations = read_annotations(annotations_path(self.surgical_root, video))
        samples = []
        for first in range(0, len(annotations.time) - self.window_s + 1, self.stride_s):
            last = first + self.window_s - 1
            text = step_description(int(annotations.step[last]))
            codes = sorted({int(c) for c in annotations.instruments[last] if c > 0})
            if codes:
                names = list_words([f"the {instrument_words(c)}" for c in codes])
                text += f" In view: {names}."
            rows = tuple(range(first, last + 1))
            samples.append(VLMSample("surgical", video_stem(video), rows, DESCRIBE_PROMPT, text))
        return samples

    def _question_samples(self, videos: list[int], slides: list[str]) -> list[VLMSample]:
        items: list[QuestionItem] = []
        if self.surgical_root is not None and videos:
            items += dataset_questions(
                self.surgical_root, videos, self.question_seed, self.window_s, self.stride_s
            )
        if self.slide_root is not None and slides:
            items += slide_questions(self.slide_root, slides)
        samples = []
        for item in items:
            seconds: tuple[int, ...] = ()
            if item.source == "surgical":
                assert item.start_s is not None and item.end_s is not None
                seconds = tuple(range(item.start_s, item.end_s))
            samples.append(
                VLMSample(item.source, item.case, seconds, question_prompt(item), item.target, item)
            )
        return samples

    def _titles(self, videos: list[int]) -> list[str]:
        if self.surgical_root is None:
            return []
        wanted = {str(v) for v in videos}
        rows = _csv_rows(self.surgical_root / TITLES_FILE)
        return [row["title"] for row in rows if row["int_video"] in wanted]

    def _encode(self, videos: list[int], slides: list[str]) -> None:
        """Every case's and slide's visual tokens, checked against the model's widths."""
        from orstream.slides.slide_models import SlideModels
        from orstream.training.data.vlm_features import case_tokens, slide_tokens
        from orstream.vlm.visual.frame_features import FrameFeatures

        if self.surgical_root is not None and videos:
            encoder = FrameFeatures(
                self.frame_package, self.frame_grid, instruments=self.instrument_package
            )
            self._check_width("surgical", encoder.width)
            cache = self.cache_dir or self.surgical_root / "cache"
            for video in videos:
                self.tokens[video_stem(video)] = case_tokens(
                    self.surgical_root, video, encoder, cache
                )
        if self.slide_root is not None and slides:
            models = SlideModels(self.slide_package, threads=1)
            self._check_width("slide", models.spec.inputs[0].shape[2])
            cache = self.cache_dir or self.slide_root / "cache"
            for slide in slides:
                self.tokens[slide] = slide_tokens(
                    self.slide_root, slide, models, self.slide_regions, cache
                )

    def _check_width(self, source: str, width: int) -> None:
        if self.feature_widths.get(source) != width:
            raise OrstreamError(
                f"the {source} features are {width} wide, the model's projector takes "
                f"{self.feature_widths.get(source)} (model.model_kwargs.feature_widths)"
            )

    def _loader(self, samples: list[VLMSample], shuffle: bool) -> DataLoader[Row]:
        sampler = SourceBatches.for_run(
            self.trainer, [s.source for s in samples], self.batch_size, shuffle
        )
        return DataLoader(
            _Sequences(self, samples),
            batch_size=self.batch_size,
            sampler=sampler,
            collate_fn=collate_sequences(self.tokenizer.pad_id),
            num_workers=self.num_workers,
        )


class _Sequences(Dataset[Row]):
    def __init__(self, data: VLMDataModule, samples: list[VLMSample]) -> None:
        self.data, self.samples = data, samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Row:
        sample = self.samples[index]
        return (*self.data.sequence(sample), sample.source, index)


class SourceBatches(GlobalBatchSampler):
    """Global batches of one source each (a batch's token counts and widths must agree).

    Each source's samples are shuffled (or kept in order when not ``shuffle``) and cut into
    global batches; a source's last, shorter batch is filled up with repeats of the source's
    first samples in that order, so every global batch is full and one rank's share is exactly
    ``batch_size`` samples of one source, which the DataLoader cuts back out of the flat stream.
    With ``shuffle`` the batches' order is shuffled too. Validation counts each sample once
    (:meth:`LitVLM.validation_step` keys its rows by sample), so the repeats change no metric.
    """

    def __init__(self, sources: list[str], batch_size: int, shuffle: bool, **kwargs: Any):
        super().__init__(len(sources), batch_size, **kwargs)
        self.sources, self.shuffle = sources, shuffle
        self.by_source = [
            [i for i, s in enumerate(sources) if s == source] for source in sorted(set(sources))
        ]

    def epoch_samples(self) -> int:
        step = self.global_batch_size
        return sum(-(-len(indices) // step) * step for indices in self.by_source)

    def global_batches(self, generator: torch.Generator, variant: list[int]) -> list[list[int]]:
        step = self.global_batch_size
        batches: list[list[int]] = []
        for indices in self.by_source:
            if self.shuffle:
                indices = [indices[i] for i in torch.randperm(len(indices), generator=generator)]
            filled = -(-len(indices) // step) * step
            indices = [indices[i % len(indices)] for i in range(filled)]
            batches += [indices[i : i + step] for i in range(0, filled, step)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches), generator=generator)]
        return batches


def collate_sequences(pad_id: int) -> Any:
    """The collate function padding ids with ``pad_id`` and labels with the ignored label."""

    def collate(rows: list[Row]) -> VLMBatch:
        length = max(len(row[0]) for row in rows)
        ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
        labels = torch.full((len(rows), length), IGNORE, dtype=torch.long)
        for row, (sequence, targets, _, _, _) in enumerate(rows):
            ids[row, : len(sequence)] = torch.tensor(sequence)
            labels[row, : len(targets)] = torch.tensor(targets)
        features = torch.from_numpy(np.stack([row[2] for row in rows]))
        index = torch.tensor([row[4] for row in rows])
        return VLMBatch(ids, labels, features, rows[0][3], index)

    return collate


def _narrations(path: Path) -> list[tuple[float, float, str]]:
    return [(float(r["int_start"]), float(r["int_end"]), r["text"]) for r in _csv_rows(path)]


def _csv_rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise OrstreamError(f"{path}: missing")
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))
