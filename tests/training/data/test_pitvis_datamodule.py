"""The PitVis data module on tiny real MP4s written with PyAV."""

from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from orstream.errors import OrstreamError
from orstream.pitvis.csv_files import Annotations, read_annotations, write_annotations
from orstream.training.data.pitvis_datamodule import (
    CACHE_FOLDER,
    PitVisDataModule,
    TrainClips,
    load_video,
    pad_collate,
    resampled_timeline,
)

FPS = 8
SIZE = (48, 64)


def grey_by_frame(index: int, height: int, width: int) -> np.ndarray:
    """Each frame's grey level tells its index, 4 levels apart (H.264 keeps it within 1)."""
    return np.full((height, width, 3), 8 + 4 * index, dtype=np.uint8)


def write_video(
    path: Path,
    frames: int,
    image: Callable[[int, int, int], np.ndarray] = grey_by_frame,
    fps: int = FPS,
    size: tuple[int, int] = (64, 96),
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.height, stream.width = size
        stream.pix_fmt = "yuv420p"
        stream.options = {"qp": "0", "preset": "ultrafast"}
        for index in range(frames):
            frame = av.VideoFrame.from_ndarray(image(index, *size), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def default_labels(seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """Out of patient for the first second, then steps 1, 2, ... with an instrument each."""
    step = np.array([-1] + [1 + t // 2 for t in range(seconds - 1)], dtype=np.int64)
    instruments = np.array(
        [[-1, -1]] + [[1 + t % 18, 2 + t % 17 if t % 3 == 0 else -2] for t in range(seconds - 1)],
        dtype=np.int64,
    )
    instruments[2] = [0, -2]  # inside, nothing visible
    return step, instruments


def write_case(
    root: Path,
    video: int,
    seconds: int,
    image: Callable[[int, int, int], np.ndarray] = grey_by_frame,
    labels: tuple[np.ndarray, np.ndarray] | None = None,
    annotated_seconds: int | None = None,
) -> None:
    write_video(root / "videos" / f"video_{video:02d}.mp4", seconds * FPS, image)
    annotated = annotated_seconds or seconds
    step, instruments = labels if labels is not None else default_labels(annotated)
    write_annotations(
        root / "annotations" / f"annotations_{video:02d}.csv",
        Annotations(video, np.arange(annotated, dtype=np.int64), step, instruments),
    )


def write_dataset(root: Path, videos: list[int], seconds: int = 6) -> Path:
    for video in videos:
        write_case(root, video, seconds + video % 2)
    return root


def test_each_second_shows_frame_round_t_times_fps_with_its_labels(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", [1])
    for sample_fps in (1.0, 2.0):
        video = load_video(
            root / "videos/video_01.mp4",
            root / "annotations/annotations_01.csv",
            SIZE,
            sample_fps,
            None,
            2.0,
        )
        times = np.arange(7 * sample_fps) / sample_fps
        assert video.frames.shape == (len(times), *SIZE, 3)
        expected = 8 + 4 * np.round(times * FPS)
        assert np.abs(video.frames.mean(axis=(1, 2, 3)) - expected).max() <= 1.5
        step, instruments = default_labels(7)
        rows = np.floor(times).astype(int)
        assert (video.step_code == step[rows]).all()
        assert (video.instrument_code == instruments[rows]).all()
    assert video.step_class[::2][:2].tolist() == [0, 1]  # out of patient -> class 0
    hot_rows = [np.flatnonzero(row).tolist() for row in video.instrument_hot[::2]]
    assert hot_rows[:4] == [[], [1, 2], [0], [3]]
    assert video.instrument_known[::2].tolist()[:4] == [False, True, True, True]


def test_disk_cache_is_written_reused_and_keyed_by_content(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", [1, 2])
    data = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE)
    data.setup("fit")
    cached = sorted((root / CACHE_FOLDER).glob("*.npy"))
    assert len(cached) == 2
    np.save(cached[0], np.zeros_like(np.load(cached[0])))  # a cache hit must read the file
    again = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE)
    again.setup("fit")
    loaded = {v.video: v.frames for v in again.train_data + again.val_data}
    assert sum(not frames.any() for frames in loaded.values()) == 1
    write_case(root, 1, 7, image=lambda i, h, w: grey_by_frame(i + 1, h, w))
    changed = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE)
    changed.setup("fit")
    assert len(list((root / CACHE_FOLDER).glob("*.npy"))) == 3
    assert changed.train_data[0].frames.any()


def test_split_is_by_video_deterministic_and_explicit_when_asked(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", [1, 2, 3, 4, 5])
    first = PitVisDataModule(str(root), val_fraction=0.4, split_seed=3).split()
    second = PitVisDataModule(str(root), val_fraction=0.4, split_seed=3).split()
    assert first == second
    train, val = first
    assert len(val) == 2 and set(train) | set(val) == {1, 2, 3, 4, 5}
    assert not set(train) & set(val)
    train, val = PitVisDataModule(str(root), val_videos=[4]).split()
    assert set(val) == {4} and set(train) == {1, 2, 3, 5}
    held_out = write_dataset(tmp_path / "held_out", [11])
    train, val = PitVisDataModule(str(root), val_root=str(held_out)).split()
    assert set(train) == {1, 2, 3, 4, 5} and set(val) == {11}
    with pytest.raises(OrstreamError, match=r"val_videos \[9\]"):
        PitVisDataModule(str(root), val_videos=[9]).split()


def test_training_clips_only_score_outputs_with_their_whole_history(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", [1, 2])
    data = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE)
    data.setup("fit")
    torch.manual_seed(0)
    clips = TrainClips(data.train_data, 4, 3, clips_per_video=200, augment=True)
    seen_start = seen_later = False
    video = data.train_data[0]
    for index in range(len(clips)):
        clip = clips[index]
        assert clip["frames"].shape == (4, 3, *SIZE)
        assert float(clip["frames"].min()) >= 0.0 and float(clip["frames"].max()) <= 1.0
        starts = [
            s
            for s in range(len(video) - 3)
            if torch.equal(clip["step"], torch.from_numpy(video.step_class[s : s + 4]))
            and torch.equal(clip["instruments"], torch.from_numpy(video.instrument_hot[s : s + 4]))
        ]
        assert len(starts) == 1
        if starts[0] == 0:
            seen_start = True
            assert clip["step_mask"].all()
            assert clip["instrument_mask"].tolist() == [False, True, True, True]
        else:
            seen_later = True
            assert clip["step_mask"].tolist() == [False, False, True, True]
    assert seen_start and seen_later
    whole = TrainClips(data.train_data, None, 3, clips_per_video=1, augment=False)[0]
    assert whole["step_mask"].all() and len(whole["step"]) == len(video)
    assert torch.equal(whole["frames"][:, 0], torch.from_numpy(video.frames[..., 0]) / 255.0)


def test_speeds_resample_the_timeline_frames_and_labels_alike(tmp_path: Path) -> None:
    assert resampled_timeline(7, 2.0).tolist() == [0, 2, 4, 6]
    assert resampled_timeline(3, 0.5).tolist() == [0, 0, 1, 1, 2, 2]
    assert resampled_timeline(9, 1.5).tolist() == [0, 1, 3, 4, 6, 7]
    root = write_dataset(tmp_path / "data", [1, 2])  # video 1: 7 s
    data = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE)
    data.setup("fit")
    video = data.train_data[0]
    clips = TrainClips(data.train_data, None, 3, 1, augment=False, speeds=(0.5, 1.0, 2.0))
    assert len(clips) == 3 and clips.lengths() == [[14, 7, 4]]
    for index, speed in enumerate((0.5, 1.0, 2.0)):
        clip = clips[index]
        timeline = resampled_timeline(len(video), speed)
        assert torch.equal(clip["step"], torch.from_numpy(video.step_class[timeline]))
        assert torch.equal(
            clip["frames"][:, 0], torch.from_numpy(video.frames[timeline, ..., 0]) / 255
        )
        assert clip["step_mask"].all()
    windows = TrainClips(data.train_data, 4, 3, 1, augment=False, speeds=(0.5,))
    assert windows.lengths() == [[4]] and len(windows[0]["step"]) == 4
    with pytest.raises(OrstreamError, match="speeds must be a list of positive speeds"):
        PitVisDataModule(str(root), speeds=[1.0, 0.0])


def test_grouped_loader_batches_cases_by_their_length_at_the_speed_drawn(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for video, seconds in enumerate([4, 4, 8, 8, 5], start=1):
        write_case(root, video, seconds, image=lambda i, h, w: np.full((h, w, 3), 90, np.uint8))
    data = PitVisDataModule(
        str(root),
        val_videos=[5],
        input_size=SIZE,
        batch_size=2,
        group_by_length=True,
        speeds=[0.5, 1.0, 2.0],
    )
    data.setup("fit")
    loader = data.train_dataloader()
    seen = set()
    for epoch in range(6):
        loader.sampler.set_epoch(epoch)  # type: ignore[attr-defined]
        lengths = [batch["step_mask"].sum(1).tolist() for batch in loader]
        assert sorted(n for batch in lengths for n in batch) != [] and len(lengths) == 2
        (_, longest), (shortest, _) = sorted((min(batch), max(batch)) for batch in lengths)
        assert longest <= 1.5 * shortest  # cut from the lengths' order (jitter: 0.8-1.2)
        seen.update(n for batch in lengths for n in batch)
    assert {2, 4, 8, 16} <= seen  # 4 and 8 s cases at 2x, 1x and 0.5x speed


def test_padding_extends_every_field_and_masks_the_padding(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", [1, 2])
    data = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE, augment=False)
    data.setup("fit")
    clips = TrainClips(data.train_data + data.val_data, None, 1, 1, augment=False)
    batch = pad_collate([clips[0], clips[1]])
    lengths = [len(v) for v in data.train_data + data.val_data]
    assert batch["frames"].shape == (2, max(lengths), 3, *SIZE)
    assert batch["step_mask"].sum(1).tolist() == lengths
    assert not batch["instrument_mask"][0, lengths[0] :].any()


def test_grouped_loader_batches_whole_videos_of_similar_length(tmp_path: Path) -> None:
    root = tmp_path / "data"
    for video, seconds in enumerate([3, 3, 9, 9, 4], start=1):
        write_case(root, video, seconds, image=lambda i, h, w: np.full((h, w, 3), 90, np.uint8))
    data = PitVisDataModule(
        str(root), val_videos=[5], input_size=SIZE, batch_size=2, group_by_length=True
    )
    data.setup("fit")
    torch.manual_seed(0)
    batches = list(data.train_dataloader())
    assert sorted(tuple(batch["step_mask"].sum(1).tolist()) for batch in batches) == [
        (3, 3),
        (9, 9),
    ]
    assert all(batch["step_mask"].all() for batch in batches)  # nothing padded


def test_instrument_frequencies_count_frames_inside_the_patient(tmp_path: Path) -> None:
    root = write_dataset(tmp_path / "data", [1, 2])
    data = PitVisDataModule(str(root), val_videos=[2], input_size=SIZE)
    data.setup("fit")
    _, instruments = default_labels(7)
    inside = instruments[instruments[:, 0] >= 0]
    expected = np.zeros(19)
    for code in range(19):
        expected[code] = (inside == code).any(axis=1).mean()
    np.testing.assert_allclose(data.instrument_frequencies(), expected)
    assert data.instrument_frequencies()[0] == 1 / 6  # one of six inside seconds shows nothing


def test_bad_datasets_are_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(OrstreamError, match="dataset root not found"):
        PitVisDataModule(str(tmp_path / "nowhere")).setup("fit")
    root = tmp_path / "data"
    (root / "videos").mkdir(parents=True)
    with pytest.raises(OrstreamError, match="annotations: folder missing"):
        PitVisDataModule(str(root)).setup("fit")
    (root / "annotations").mkdir()
    with pytest.raises(OrstreamError, match=r"no video_NN\.mp4"):
        PitVisDataModule(str(root)).setup("fit")
    write_dataset(root, [1, 2])
    write_video(root / "videos" / "video_03.mp4", 8)
    with pytest.raises(OrstreamError, match=r"annotations_03\.csv: annotations missing"):
        PitVisDataModule(str(root)).setup("fit")
    write_case(root, 3, 3, annotated_seconds=7)
    with pytest.raises(OrstreamError, match=r"video_03\.mp4: video lasts 3\.0 s but .* 7 s"):
        PitVisDataModule(str(root), val_videos=[1]).setup("fit")
    write_case(root, 3, 3)
    (root / "videos" / "video_03.mp4").write_text("not a video")
    with pytest.raises(OrstreamError, match=r"video_03\.mp4: not a video file"):
        PitVisDataModule(str(root), val_videos=[1]).setup("fit")
    write_video(root / "videos" / "video_03.mp4", 3 * FPS)
    content = (root / "videos" / "video_03.mp4").read_bytes()
    (root / "videos" / "video_03.mp4").write_bytes(content[: len(content) // 2])
    with pytest.raises(OrstreamError, match=r"video_03\.mp4: .*truncated"):
        PitVisDataModule(str(root), val_videos=[1]).setup("fit")


def test_reads_a_phantom_dataset_and_records_its_generator(tmp_path: Path) -> None:
    from orstream.cli import main

    root = tmp_path / "phantom"
    arguments = ["--cases", "2", "--seconds", "6", "--width", "96", "--height", "64"]
    assert main(["phantom", "make", "--out", str(root), "--seed", "7", *arguments]) == 0
    data = PitVisDataModule(str(root), val_fraction=0.5, input_size=SIZE)
    data.setup("fit")
    for video in data.train_data + data.val_data:
        annotations = read_annotations(root / "annotations" / f"annotations_{video.video:02d}.csv")
        assert len(video) == len(annotations.time) == 6
        assert (video.step_code == annotations.step).all()
        assert video.frames.shape == (6, *SIZE, 3) and video.frames.std() > 5  # a real picture
    described = data.describe()
    assert described["phantom"]["seed"] == 7
    assert sorted(described["train_videos"] + described["val_videos"]) == [1, 2]
