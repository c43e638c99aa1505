"""The edge's video-text model: zero-shot results of their own, searchable clips, prompts."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from orstream.edge.models.video_text_model import TextRefused, UnknownStream, VideoTextModel
from orstream.edge.models.video_text_runner import VideoTextRunner
from orstream.export.onnx.parity import phantom_frames
from orstream.package.loading import load_package
from orstream.streams.frame import Frame
from orstream.video_search import PromptChange, SearchRequest

S = 1_000_000_000


def feed(model: VideoTextModel, stream: str, count: int) -> list[Frame]:
    frames = [
        Frame(image, pts_ns=round(i * 2.5 * S), capture_ns=i, index=i * 60, stream_id=stream)
        for i, image in enumerate(phantom_frames(count))
    ]
    for frame in frames:
        model.infer([frame])
    return frames


@pytest.fixture
def model(random_videotext_package: Path) -> VideoTextModel:
    return VideoTextModel(VideoTextRunner.load(load_package(random_videotext_package)))


def test_results_carry_only_the_zero_shot_step(model: VideoTextModel) -> None:
    frame = Frame(phantom_frames(1)[0], pts_ns=0, capture_ns=5, index=0, stream_id="cam0")
    (result,) = model.infer([frame])
    assert result.kinds == ("zeroshot_step",)
    assert result.step is None and result.instruments is None
    assert result.models == (model.label,) and result.capture_ns == 5
    zeroshot = result.zeroshot_step
    assert zeroshot is not None
    assert zeroshot.prompt == model.prompts()[zeroshot.code]
    assert model.rate_hz == pytest.approx(0.4) and model.clip_ns == 10 * S


def test_search_finds_the_clip_a_text_is_nearest(model: VideoTextModel) -> None:
    frames = feed(model, "cam0", 12)
    answer = model.search(SearchRequest("the suction near the sella", limit=20))
    assert answer.stream_id == "cam0" and answer.searched == 12
    assert answer.model == model.label and answer.latency_ms > 0
    # Moments are at least a clip (10 s = 4 frames here) apart, best first.
    ends = sorted(m.pts_ns for m in answer.moments)
    assert all(b - a >= 10 * S for a, b in itertools.pairwise(ends))
    query = model.runner.embed_texts(["the suction near the sella"])[0]
    best = answer.moments[0]
    memory = model._memories["cam0"]
    scores = {c.pts_ns: float(c.embedding @ query) for c in memory._clips}
    assert best.score == pytest.approx(max(scores.values()), abs=1e-5)
    index = [f.pts_ns for f in frames].index(best.pts_ns)
    assert best.index == frames[index].index
    assert best.start_pts_ns == frames[max(0, index - 3)].pts_ns  # the clip's 4 frames
    recent = model.search(SearchRequest("the suction near the sella", seconds=5, limit=20))
    assert recent.searched == 3  # the frames at 22.5, 25 and 27.5 s


def test_unknown_streams_and_bad_texts_are_refused(model: VideoTextModel) -> None:
    with pytest.raises(UnknownStream, match="no clips yet"):
        model.search(SearchRequest("suction"))
    feed(model, "endo", 2)
    feed(model, "exo", 2)
    with pytest.raises(UnknownStream, match="name the stream to search: endo, exo"):
        model.search(SearchRequest("suction"))
    with pytest.raises(UnknownStream, match="no clips of stream 'cam9'"):
        model.search(SearchRequest("suction", stream_id="cam9"))
    with pytest.raises(TextRefused, match="the text is too long"):
        model.search(SearchRequest("word " * 100, stream_id="endo"))


def test_prompts_change_at_run_time_and_back(model: VideoTextModel) -> None:
    package = model.prompts()
    changed = model.set_prompts(PromptChange({3: "the sphenoid sinus is opened"}))
    assert changed[3] == "the sphenoid sinus is opened"
    assert {k: v for k, v in changed.items() if k != 3} == {
        k: v for k, v in package.items() if k != 3
    }
    frame = Frame(phantom_frames(1)[0], pts_ns=0, capture_ns=0, index=0, stream_id="cam0")
    zeroshot = model.infer([frame])[0].zeroshot_step
    assert zeroshot is not None and zeroshot.prompt == changed[zeroshot.code]
    with pytest.raises(TextRefused, match="prompt 1 is too long"):
        model.set_prompts(PromptChange({3: "word " * 100}, reset=True))
    assert model.prompts() == changed  # refused: nothing changed, not even the reset
    assert model.set_prompts(PromptChange(reset=True)) == package
    np.testing.assert_array_equal(model.runner.prompts.embeddings, model.package.step_prompts())
