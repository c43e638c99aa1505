"""The edge's video-text runner: zero-shot steps per stream, batched streams, run-time prompts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from orstream.edge.models.video_text_runner import MAX_TEXTS, VideoTextRunner
from orstream.edge.models.workflow_runner import StreamFrame
from orstream.errors import OrstreamError
from orstream.export.onnx.parity import phantom_frames
from orstream.labels import STEP_CODES
from orstream.package.loading import load_package


@pytest.fixture
def runner(random_videotext_package: Path) -> VideoTextRunner:
    return VideoTextRunner.load(load_package(random_videotext_package))


def test_streams_batched_together_get_what_each_gets_alone(runner: VideoTextRunner) -> None:
    frames = phantom_frames(6)
    together = [
        runner.run([StreamFrame("a", frames[t]), StreamFrame("b", frames[5 - t])]) for t in range(6)
    ]
    assert runner.calls == 6  # two streams, one call per step (max_batch 3)
    for stream, order in (("a", range(6)), ("b", range(5, -1, -1))):
        runner.forget(stream)
        alone = [runner.run([StreamFrame(stream, frames[t])])[0] for t in order]
        column = 0 if stream == "a" else 1
        for pair, single in zip(together, alone, strict=True):
            np.testing.assert_allclose(pair[column].embedding, single.embedding, atol=1e-5)
            assert pair[column].step == single.step


def test_zero_shot_probabilities_follow_the_prompts(runner: VideoTextRunner) -> None:
    frame = phantom_frames(1)[0]
    prediction = runner.run([StreamFrame("s", frame)])[0]
    assert prediction.probs.shape == (len(STEP_CODES),)
    assert prediction.probs.sum() == pytest.approx(1.0)
    assert prediction.step in STEP_CODES
    np.testing.assert_allclose(np.linalg.norm(prediction.embedding), 1.0, atol=1e-5)
    code = STEP_CODES[4]
    scale = runner.text.logit_scale
    expected = scale * runner.prompts.embeddings @ prediction.embedding
    np.testing.assert_allclose(
        np.log(prediction.probs) - np.log(prediction.probs).max(),
        expected - expected.max(),
        atol=1e-5,
    )
    before = runner.prompts
    after = runner.set_prompts({code: "the sella is opened with a drill"})
    assert after.as_dict()[code] == "the sella is opened with a drill"
    changed = np.flatnonzero((after.embeddings != before.embeddings).any(axis=1))
    assert changed.tolist() == [STEP_CODES.index(code)]
    np.testing.assert_allclose(
        after.embeddings[STEP_CODES.index(code)],
        runner.embed_texts(["the sella is opened with a drill"])[0],
        atol=1e-6,
    )
    assert runner.set_prompts({}, reset=True).texts == before.texts
    # A reset with a new text lands whole: the package's prompts, one of them replaced.
    both = runner.set_prompts({code: "a drill on the sella"}, reset=True)
    assert [t for t, b in zip(both.texts, before.texts, strict=True) if t != b] == [
        "a drill on the sella"
    ]


def test_bad_prompts_change_nothing(runner: VideoTextRunner) -> None:
    before = runner.prompts
    with pytest.raises(OrstreamError, match="no step 99 among the package's steps"):
        runner.set_prompts({99: "anything"})
    with pytest.raises(OrstreamError, match="prompt 1 is empty"):
        runner.set_prompts({1: "   "})
    with pytest.raises(OrstreamError, match="prompt 1 is too long"):
        runner.set_prompts({1: "word " * 80})
    with pytest.raises(OrstreamError, match="no prompt to set"):
        runner.set_prompts({})
    with pytest.raises(OrstreamError, match="prompt 2 is too long"):
        runner.set_prompts({1: "fine", 2: "word " * 80}, reset=True)
    with pytest.raises(OrstreamError, match=f"at most {MAX_TEXTS}"):
        runner.embed_texts(["a"] * (MAX_TEXTS + 1))
    assert runner.prompts is before


def test_a_discontinuity_starts_the_window_again(runner: VideoTextRunner) -> None:
    frames = phantom_frames(5)
    for frame in frames[:4]:
        runner.run([StreamFrame("s", frame)])
    restarted = runner.run([StreamFrame("s", frames[4], discontinuity=True)])[0]
    fresh = runner.run([StreamFrame("t", frames[4])])[0]
    np.testing.assert_allclose(restarted.embedding, fresh.embedding, atol=1e-6)


def test_a_package_of_another_kind_is_refused(random_workflow_package: Path) -> None:
    with pytest.raises(OrstreamError, match="is a workflow_recognition package, not video_text"):
        VideoTextRunner.load(load_package(random_workflow_package))
