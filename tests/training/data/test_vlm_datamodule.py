"""The vision-language data: held-out cases, sequences and their labels, one-source batches."""

from pathlib import Path

import pytest

from orstream.training.data.vlm_datamodule import IGNORE, SourceBatches, VLMDataModule
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


def test_batches_hold_one_source_and_cover_every_sample(
    phantoms: tuple[Path, Path], tmp_path: Path
) -> None:
    module = data(phantoms, tmp_path, 1)
    seen: set[int] = set()
    for batch in module.train_dataloader():
        # Full batches of one source: a source's last one is filled up with its own repeats.
        assert batch.features.shape[0] == batch.input_ids.shape[0] == len(batch.index) == 4
        assert {module.train_samples[i].source for i in batch.index.tolist()} == {batch.source}
        seen |= set(batch.index.tolist())
    assert seen == set(range(len(module.train_samples)))


def test_source_batches_are_the_same_global_batches_on_any_number_of_ranks() -> None:
    sources = ["a", "b", "a", "a", "b", "a", "b", "a", "a"]  # 6 a, 3 b
    alone = SourceBatches(sources, 4, shuffle=True, seed=7)
    ranks = [SourceBatches(sources, 2, True, num_replicas=2, rank=r, seed=7) for r in (0, 1)]
    for epoch in (0, 1):
        for sampler in (alone, *ranks):
            sampler.set_epoch(epoch)
        whole = list(alone)
        shares = [list(rank) for rank in ranks]
        assert len(whole) == len(alone) == 12  # a: 6 -> 8, b: 3 -> 4
        assert [len(share) for share in shares] == [len(rank) for rank in ranks] == [6, 6]
        for step in range(3):
            batch = whole[step * 4 : (step + 1) * 4]
            assert len({sources[i] for i in batch}) == 1
            first, second = (share[step * 2 : (step + 1) * 2] for share in shares)
            assert first + second == batch  # rank r takes the r-th slice of the global batch
        assert set(whole) == set(range(len(sources)))
    alone.set_epoch(0)
    zero = list(alone)
    alone.set_epoch(1)
    assert list(alone) != zero  # reshuffled per epoch
    in_order = list(SourceBatches(sources, 4, shuffle=False))
    assert in_order == [0, 2, 3, 5, 7, 8, 0, 2, 1, 4, 6, 1]
