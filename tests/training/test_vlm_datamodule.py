"""The vision-language data: held-out cases, sequences and their labels, one-source batches."""

from pathlib import Path

import pytest
import torch

from orstream.training.vlm_datamodule import IGNORE, SourceBatches, VLMDataModule
from tests.project_paths import PROJECT_ROOT


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from orstream.slides.phantom.dataset_writer import write_slide_dataset
    from orstream.streams.phantom.writer import PhantomSpec, write_dataset

    root = tmp_path_factory.mktemp("vlm_data")
    write_dataset(PhantomSpec(3, 24, seed=51, width=160, height=96, fps=2.0), root / "surgical")
    write_slide_dataset(root / "slides", 3, seed=53, size=1024)
    return root / "surgical", root / "slides"


def data(phantoms: tuple[Path, Path], tmp_path: Path, stage: int) -> VLMDataModule:
    module = VLMDataModule(
        surgical_root=str(phantoms[0]),
        slide_root=str(phantoms[1]),
        val_videos=[3],
        val_slides=["slide_001"],
        tokenizer=str(tmp_path / "tokenizer.json"),
        frame_package=str(PROJECT_ROOT / "edge" / "packages" / "imis_segmenter"),
        cache_dir=str(tmp_path / "cache"),
        batch_size=4,
        stage=stage,
        vocab_size=700,
    )
    module.setup("fit")
    return module


def test_held_out_cases_and_slides_stay_out_of_training(
    phantoms: tuple[Path, Path], tmp_path: Path
) -> None:
    for stage in (1, 2):
        module = data(phantoms, tmp_path, stage)
        trained = {s.case for s in module.train_samples}
        assert trained == {"video_01", "video_02", "slide_002", "slide_003"}
        assert {s.case for s in module.val_samples} == {"video_03", "slide_001"}
    assert all(s.item is not None for s in module.val_samples)


def test_only_the_target_is_learnt_and_visual_slots_match_the_features(
    phantoms: tuple[Path, Path], tmp_path: Path
) -> None:
    module = data(phantoms, tmp_path, 2)
    tokenizer = module.tokenizer
    surgical = next(s for s in module.train_samples if s.source == "surgical")
    ids, labels, features = module.sequence(surgical)
    assert features.shape == (8 * 4, 128)
    assert ids.count(tokenizer.image_id) == len(features)
    learnt = [i for i, label in zip(ids, labels, strict=True) if label != IGNORE]
    assert tokenizer.decode(learnt) == surgical.target
    assert learnt[-1] == tokenizer.eos_id
    slide = next(s for s in module.train_samples if s.source == "slide")
    assert module.sequence(slide)[2].shape == (16, 512)


def test_batches_hold_one_source_and_cover_every_sample_once(
    phantoms: tuple[Path, Path], tmp_path: Path
) -> None:
    module = data(phantoms, tmp_path, 1)
    loader = module.train_dataloader()
    seen = 0
    for batch in loader:
        assert batch.features.shape[0] == batch.input_ids.shape[0] <= 4
        assert batch.input_ids.dtype == torch.long
        seen += len(batch.input_ids)
    assert seen == len(module.train_samples)
    sources = ["a", "b", "a", "a", "b"]
    sampler = SourceBatches(sources, 2, shuffle=True)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 3
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert all(len({sources[i] for i in b}) == 1 for b in batches)
