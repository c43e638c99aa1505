"""The segmenter data module on a tiny phantom dataset: targets, prompts, augmentation, split."""

import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from orstream.cli import main
from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENTS
from orstream.training.data.segmenter_datamodule import (
    PROMPT_BOX,
    PROMPT_POINTS,
    PROMPT_TEXT,
    SegmenterDataModule,
    TargetSamples,
    prompt_bits,
    resize_mask,
    tight_box,
)

SIZE = (48, 80)
FPS = 10
SECONDS = 12
CLASSES = [*INSTRUMENTS.values(), "sella"]
# A disc of sella in every frame (cut where an instrument is in front, as the phantom does).
DISC = ((160, 90), 30)


def png(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert image is not None, path
    return image


def make_phantom(out: Path) -> Path:
    """Two 12 s phantom cases at 320x180, 10 fps, without anatomy masks."""
    code = main(
        [
            "phantom",
            "make",
            "--out",
            str(out),
            "--cases",
            "2",
            "--seconds",
            str(SECONDS),
            "--width",
            "320",
            "--height",
            "180",
            "--fps",
            str(FPS),
            "--seed",
            "3",
        ]
    )
    assert code == 0
    # Older phantoms have no anatomy/: the instruments-only case is tested on that layout.
    shutil.rmtree(out / "anatomy", ignore_errors=True)
    return out


def add_disc_anatomy(root: Path) -> None:
    for mask_dir in sorted((root / "masks").glob("video_*")):
        out = root / "anatomy" / mask_dir.name
        out.mkdir(parents=True)
        for path in sorted(mask_dir.glob("*.png")):
            instruments = png(path)
            anatomy = np.zeros_like(instruments)
            cv2.circle(anatomy, DISC[0], DISC[1], 101, -1)
            anatomy[instruments > 0] = 0
            cv2.imwrite(str(out / path.name), anatomy)


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_phantom(tmp_path_factory.mktemp("segmenter_data") / "phantom")


@pytest.fixture(scope="module")
def with_anatomy(phantom: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("segmenter_anatomy") / "phantom"
    shutil.copytree(phantom, root, ignore=shutil.ignore_patterns(".orstream_cache"))
    add_disc_anatomy(root)
    return root


def expected_targets(root: Path, min_area: int, anatomy: bool) -> list[tuple[int, int, int]]:
    """(video, second, code) of every class with min_area pixels, read straight from the PNGs."""
    found = []
    for video in (1, 2):
        for second in range(SECONDS):
            folders = ["masks", "anatomy"] if anatomy else ["masks"]
            for folder in folders:
                label = png(root / folder / f"video_{video:02d}" / f"{second:05d}.png")
                codes, counts = np.unique(label, return_counts=True)
                for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
                    small = resize_mask(label == code, SIZE)
                    if code and count >= min_area and small.any():
                        found.append((video, second, code))
    return sorted(found)


def module(root: Path, **kwargs: object) -> SegmenterDataModule:
    settings: dict[str, object] = {"input_size": SIZE, "classes": CLASSES, "min_area": 20}
    settings["val_max_targets"] = None
    data = SegmenterDataModule(str(root), **{**settings, **kwargs})
    data.setup("fit")
    return data


def all_targets(data: SegmenterDataModule) -> list[tuple[int, int, int]]:
    assert data.train_targets is not None and data.val_targets is not None
    rows: list[tuple[int, int, int]] = []
    for targets in (data.train_targets, data.val_targets):
        rows += zip(
            targets.video.tolist(), targets.time.tolist(), targets.code.tolist(), strict=True
        )
    return sorted(rows)


def test_without_anatomy_the_targets_are_the_instruments(phantom: Path) -> None:
    data = module(phantom)
    assert all_targets(data) == expected_targets(phantom, 20, anatomy=False)
    assert all_targets(data), "the phantom shows no instrument: the test needs one"
    assert data.train_targets is not None
    assert set(data.train_targets.video.tolist()).isdisjoint(data.val_targets.video.tolist())


def test_anatomy_adds_sella_targets_with_their_masks(with_anatomy: Path) -> None:
    data = module(with_anatomy)
    assert all_targets(data) == expected_targets(with_anatomy, 20, anatomy=True)
    targets = data.train_targets
    assert targets is not None
    sella = np.flatnonzero(targets.code == 101)
    assert len(sella) == SECONDS  # a disc in every second of the training video
    assert (targets.class_index[sella] == CLASSES.index("sella")).all()
    index = int(sella[0])
    label = png(with_anatomy / "anatomy" / f"video_{targets.video[index]:02d}" / "00000.png")
    np.testing.assert_array_equal(targets.mask(index), resize_mask(label == 101, SIZE))
    # Instrument targets point at their code's class.
    instrument = np.flatnonzero(targets.code != 101)
    for row in instrument:
        assert CLASSES[targets.class_index[row]] == INSTRUMENTS[int(targets.code[row])]


def test_min_area_and_classes_select_targets(with_anatomy: Path) -> None:
    data = module(with_anatomy)
    big = SegmenterDataModule(
        str(with_anatomy), input_size=SIZE, classes=CLASSES, min_area=2000, val_max_targets=None
    )
    big.setup("fit")
    assert all_targets(big) == expected_targets(with_anatomy, 2000, anatomy=True)
    assert len(all_targets(big)) < len(all_targets(data))
    only_sella = SegmenterDataModule(
        str(with_anatomy), input_size=SIZE, classes=["sella"], min_area=20, val_max_targets=None
    )
    only_sella.setup("fit")
    assert {code for _, _, code in all_targets(only_sella)} == {101}
    assert only_sella.train_targets is not None
    assert (only_sella.train_targets.class_index == 0).all()


def test_each_target_shows_frame_round_t_times_fps(phantom: Path) -> None:
    data = module(phantom)
    targets = data.train_targets
    assert targets is not None
    index = len(targets) - 1
    video, second = int(targets.video[index]), int(targets.time[index])
    with av.open(str(phantom / "videos" / f"video_{video:02d}.mp4")) as container:
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    expected = cv2.resize(frames[round(second * FPS)], SIZE[::-1], interpolation=cv2.INTER_AREA)
    shown = targets.frames[targets.frame[index]].astype(int)
    assert np.abs(shown - expected).mean() < 2.0
    neighbour = cv2.resize(
        frames[round(second * FPS) - 3], SIZE[::-1], interpolation=cv2.INTER_AREA
    )
    assert np.abs(shown - neighbour).mean() > np.abs(shown - expected).mean()


def test_training_samples_keep_box_and_click_on_the_flipped_mask(with_anatomy: Path) -> None:
    data = module(with_anatomy)
    assert data.train_targets is not None
    samples = TargetSamples(data.train_targets, data.mask_size, {"box+points": 1.0})
    torch.manual_seed(0)
    flipped = 0
    for _ in range(24):
        index = int(torch.randint(len(samples), ()))
        sample = samples[index]
        mask = sample["mask"].numpy() > 0.5
        original = data.train_targets.mask(index)
        if not np.array_equal(mask, original):
            np.testing.assert_array_equal(mask, original[:, ::-1])
            flipped += 1
        assert sample["image"].shape == (3, *SIZE)
        assert float(sample["image"].min()) >= 0.0 and float(sample["image"].max()) <= 1.0
        assert sample["mask_low"].shape == data.mask_size == (SIZE[0] // 4, SIZE[1] // 4)
        assert int(sample["prompt"]) == PROMPT_BOX | PROMPT_POINTS
        x, y = sample["point"].long().tolist()
        assert mask[y, x], "the first click is inside the (flipped) mask"
        tight = tight_box(mask)
        sides = np.array([tight[2] - tight[0] + 1, tight[3] - tight[1] + 1] * 2)
        assert (np.abs(sample["box"].numpy() - tight) <= 0.1 * sides + 1e-4).all()
    assert 0 < flipped < 24


def test_validation_samples_are_fixed_tight_and_deepest(with_anatomy: Path) -> None:
    data = module(with_anatomy)
    batch = next(iter(data.val_dataloader()))
    again = next(iter(data.val_dataloader()))
    for key in ("image", "mask", "box", "point"):
        torch.testing.assert_close(batch[key], again[key])
    assert (batch["prompt"] == 0).all()
    for mask, box, point in zip(batch["mask"], batch["box"], batch["point"], strict=True):
        binary = mask.numpy() > 0.5
        np.testing.assert_array_equal(box.numpy(), tight_box(binary))
        distance = cv2.distanceTransform(np.pad(binary, 1).astype(np.uint8), cv2.DIST_L2, 5)
        x, y = point.long().tolist()
        assert distance[y + 1, x + 1] >= 0.7 * distance.max()


def test_prompt_types_follow_the_weights(phantom: Path) -> None:
    data = module(phantom)
    assert data.train_targets is not None
    samples = TargetSamples(data.train_targets, data.mask_size, {"text": 1.0, "box": 0.0})
    assert {int(samples[i]["prompt"]) for i in range(len(samples))} == {PROMPT_TEXT}
    assert prompt_bits("points+box+text") == PROMPT_POINTS | PROMPT_BOX | PROMPT_TEXT


def test_split_by_val_root_and_sampling_budget(phantom: Path, with_anatomy: Path) -> None:
    data = module(phantom, val_root=str(with_anatomy), samples_per_epoch=5, batch_size=2)
    assert data.train_targets is not None and data.val_targets is not None
    assert set(data.train_targets.video.tolist()) == {1, 2}
    assert 101 in data.val_targets.code.tolist()
    batches = list(data.train_dataloader())
    assert [len(batch["mask"]) for batch in batches] == [2, 2]  # 5 samples, last short one dropped
    capped = module(with_anatomy, val_max_targets=4)
    assert capped.val_targets is not None and len(capped.val_targets) == 4
    described = capped.describe()
    assert described["classes"] == CLASSES
    assert sum(described["val_targets"].values()) == 4


def test_bad_datasets_are_one_clear_error(phantom: Path, tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="dataset root not found"):
        module(tmp_path / "nowhere")
    broken = tmp_path / "broken"
    shutil.copytree(phantom, broken, ignore=shutil.ignore_patterns(".orstream_cache"))
    add_disc_anatomy(broken)
    cv2.imwrite(str(broken / "anatomy" / "video_01" / "00003.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(OrstreamError, match=r"00003.png: not a single-channel 8-bit mask"):
        module(broken)
    (broken / "anatomy" / "video_01" / "00003.png").unlink()
    with pytest.raises(OrstreamError, match=r"00003.png: mask missing"):
        module(broken)
    shutil.rmtree(broken / "masks" / "video_02")
    with pytest.raises(OrstreamError, match=r"masks missing for video_02\.mp4"):
        module(broken)
    with pytest.raises(OrstreamError, match="unknown classes"):
        SegmenterDataModule(str(phantom), classes=["scalpel"])
    with pytest.raises(OrstreamError, match="unknown prompt type 'lasso'"):
        SegmenterDataModule(str(phantom), prompt_weights={"box+lasso": 1.0})
