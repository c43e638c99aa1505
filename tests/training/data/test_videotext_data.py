"""Clips and texts of a phantom dataset for the video-text model: narrated clips, step runs
and the whole case, silent cases without their narrations, frames at the sample times."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orstream.errors import OrstreamError
from orstream.pitvis.csv_files import read_annotations
from orstream.pitvis.layout import annotations_path
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.training.data.videotext_data import ClipTextDataset, clip_texts, step_description


@pytest.fixture(scope="module")
def phantom(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("videotext")
    write_dataset(PhantomSpec(2, 30, seed=31, width=160, height=96, fps=6.0), root)
    return root


def test_each_case_gives_its_clips_its_step_runs_and_its_title(phantom: Path) -> None:
    samples = clip_texts(phantom, [1, 2], frames_per_clip=4, silent=[2])
    for video in (1, 2):
        mine = [s for s in samples if s.video == video]
        clips = [s for s in mine if s.level == "clip"]
        assert len(clips) == 3  # 30 s in 10 s clips
        assert clips[0].times == (1.25, 3.75, 6.25, 8.75)
        steps = read_annotations(annotations_path(phantom, video)).step
        runs = 1 + int(np.count_nonzero(np.diff(steps)))
        segments = [s for s in mine if s.level == "segment"]
        assert 2 <= len(segments) <= runs + 1  # step runs of 3 s or more, and the whole case
        assert segments[-1].times == (3.75, 11.25, 18.75, 26.25)  # the whole case: its title
        assert all(s.silent == (video == 2) for s in mine)
        assert all(s.text == step_description(s.step) for s in segments[:-1])
        for clip in clips:  # a step of the clip's own seconds
            assert clip.step in steps[int(clip.times[0]) : int(clip.times[-1]) + 1]
    assert all(s.text for s in samples if s.video == 1)
    assert all(s.text == "" for s in samples if s.video == 2 and s.level == "clip")
    described = {s.text for s in samples if s.video == 1 and s.level == "segment"}
    steps = read_annotations(annotations_path(phantom, 1)).step.tolist()
    long_runs = {code for code in steps if steps.count(code) >= 3}  # each code is one run here
    assert {step_description(code) for code in long_runs} <= described
    assert len(described) == len(long_runs) + 1  # and the title


def test_the_dataset_serves_each_sample_s_frames_normalised(phantom: Path) -> None:
    samples = clip_texts(phantom, [1], frames_per_clip=4)
    dataset = ClipTextDataset(phantom, samples, (48, 80))
    frames, index = dataset[0]
    assert frames.shape == (4, 3, 48, 80) and index == 0
    assert -3 < float(frames.min()) < 0 < float(frames.max()) < 3
    first, second = dataset[0][0], dataset[1][0]  # different clips, different pictures
    assert not np.allclose(first.numpy(), second.numpy())
    assert len(dataset) == len(samples)


def test_a_missing_narration_file_is_one_clear_error(phantom: Path) -> None:
    with pytest.raises(OrstreamError, match=r"narrations_07\.csv: no such file"):
        clip_texts(phantom, [7], frames_per_clip=4)
    with pytest.raises(OrstreamError, match="at least 1"):
        clip_texts(phantom, [1], frames_per_clip=0)


def test_live_windows_end_every_stride_named_by_the_step_they_end_in(phantom: Path) -> None:
    whole = clip_texts(phantom, [1], frames_per_clip=4)
    windowed = clip_texts(phantom, [1], frames_per_clip=4, window_s=2, stride_s=1)
    extra = [s for s in windowed if s not in whole]
    steps = read_annotations(annotations_path(phantom, 1)).step
    assert len(extra) == len(steps) - 1  # windows ending at seconds 2, 3, ..., the last
    changes = 0
    for end, sample in enumerate(extra, start=2):
        assert sample.level == "segment" and sample.text == step_description(sample.step)
        assert sample.times == pytest.approx((end - 1.75, end - 1.25, end - 0.75, end - 0.25))
        assert sample.step == steps[end - 1]  # the step of the window's last second
        changes += int(steps[end - 2] != steps[end - 1])
    assert changes > 0  # some windows cross a step change, named by the step they end in
    apart = clip_texts(phantom, [1], frames_per_clip=4, window_s=2)
    assert len([s for s in apart if s not in whole]) == len(steps) // 2  # stride: the window
    with pytest.raises(OrstreamError, match="positive seconds"):
        clip_texts(phantom, [1], frames_per_clip=4, window_s=2, stride_s=0)
