"""The online workflow runner: state carried and reset, PitVis slots well formed."""

from pathlib import Path

import numpy as np
import pytest

from orstream.edge.backends import create_backend
from orstream.edge.models.workflow_runner import WorkflowRunner
from orstream.errors import OrstreamError
from orstream.labels import INSTRUMENT_SLOT_CODES, OUT_OF_PATIENT, STEP_CODES, UNUSED_SLOT
from orstream.package.loading import load_package


@pytest.fixture()
def runner(random_workflow_package: Path) -> WorkflowRunner:
    package = load_package(random_workflow_package)
    return WorkflowRunner(create_backend(["onnxruntime"], package), package.card, min_dwell=1)


def _frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (72, 128, 3), dtype=np.uint8) for _ in range(count)]


def test_state_is_carried_between_frames(runner: WorkflowRunner) -> None:
    frames = _frames(6)
    carried = [runner(frame).step_probs for frame in frames]
    alone = [runner(frame, discontinuity=True).step_probs for frame in frames]
    # Same frame, different history: the temporal model must see the past.
    assert not np.allclose(carried[-1], alone[-1])
    np.testing.assert_allclose(carried[0], alone[0], atol=1e-6)


def test_discontinuity_restarts_the_stream(runner: WorkflowRunner) -> None:
    frames = _frames(5, seed=1)
    first = [runner(frame).step_probs for frame in frames]
    for frame in _frames(3, seed=2):
        runner(frame)
    again = [runner(frame, discontinuity=i == 0).step_probs for i, frame in enumerate(frames)]
    np.testing.assert_allclose(np.stack(first), np.stack(again), atol=1e-6)


def test_predictions_are_pitvis_codes(runner: WorkflowRunner) -> None:
    for frame in _frames(8, seed=3):
        prediction = runner(frame)
        assert prediction.step in STEP_CODES
        assert set(prediction.instruments) <= INSTRUMENT_SLOT_CODES
        assert np.isclose(prediction.step_probs.sum(), 1.0)
        if prediction.step == OUT_OF_PATIENT:
            assert prediction.instruments == (OUT_OF_PATIENT, UNUSED_SLOT)
        else:
            first, second = prediction.instruments
            assert first >= 0 and second != OUT_OF_PATIENT
            assert second == UNUSED_SLOT or second > 0


def test_streams_batched_in_one_call_get_what_each_would_alone() -> None:
    from project_paths import PACKAGES

    from orstream.edge.models.workflow_runner import StreamFrame

    package = load_package(PACKAGES / "pitvis_workflow")
    assert package.card.dynamic_batch
    batched = WorkflowRunner(create_backend(["onnxruntime"], package), package.card)
    alone = WorkflowRunner(create_backend(["onnxruntime"], package), package.card, max_batch=1)
    streams = {f"s{i}": _frames(5, seed=i) for i in range(5)}
    for step in range(5):
        frames = [
            StreamFrame(s, images[step], step == 3 and s == "s2") for s, images in streams.items()
        ]
        together = batched.run(frames)
        one_by_one = alone.run(frames)
        for a, b in zip(together, one_by_one, strict=True):
            assert (a.step, a.instruments) == (b.step, b.instruments)
            np.testing.assert_allclose(a.step_probs, b.step_probs, atol=1e-5)
            np.testing.assert_allclose(a.instrument_probs, b.instrument_probs, atol=1e-5)
    assert (batched.calls, alone.calls) == (5, 25)  # one backend call per step for 5 streams
    with pytest.raises(OrstreamError, match="one frame per stream"):
        batched.run([StreamFrame("s0", streams["s0"][0]), StreamFrame("s0", streams["s0"][1])])
