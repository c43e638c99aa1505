"""INT8 calibration frames (``orstream export trt --int8 --calib SOURCE``): a .npy of frames, a
video file, a PitVis-layout data set and a phantom case, sampled at the card's rate; the state
fed as a running stream would feed it; the manifest record that keeps an engine tied to its
frames. None of this needs TensorRT."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
from gpu_hosts import H200

from orstream.edge.backends.onnxruntime_backend import OnnxRuntimeBackend
from orstream.errors import OrstreamError
from orstream.export.precision.calibration import Calibration, calibration_runs, read_calibration
from orstream.export.tensorrt.build import (
    calibration_cache_path,
    calibration_record,
    check_calibration,
)
from orstream.package.engine_manifest import EngineManifest, engine_key
from orstream.package.loading import ModelPackage, load_package
from orstream.streams.phantom.source import PhantomSource
from orstream.streams.phantom.writer import PhantomSpec, write_dataset
from orstream.streams.sources.pyav_source import PyAVSource


def frames(count: int, seed: int = 0, height: int = 120, width: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, height, width, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def workflow(project_root: Path) -> ModelPackage:
    return load_package(project_root / "edge" / "packages" / "pitvis_workflow")


@pytest.fixture(scope="module")
def data_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two phantom cases of 4 s at 24 fps in the PitVis layout."""
    root = tmp_path_factory.mktemp("calibration") / "data"
    write_dataset(PhantomSpec(cases=2, seconds=4, seed=3, width=160, height=96), root)
    return root


def test_npy_frames_are_taken_as_they_are_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "frames.npy"
    np.save(path, frames(5))
    calibration = read_calibration(str(path), rate_hz=1.0, limit=3)
    assert len(calibration.clips) == 1
    np.testing.assert_array_equal(calibration.clips[0], frames(5)[:3])
    for bad, message in [
        (frames(2).astype(np.float32), r"expected RGB uint8 frames \[N, H, W, 3\]"),
        (frames(2)[..., :1], r"got uint8 \[2, 120, 200, 1\]"),
    ]:
        np.save(path, bad)
        with pytest.raises(OrstreamError, match=message):
            read_calibration(str(path), 1.0)
    path.write_bytes(b"not numpy")
    with pytest.raises(OrstreamError, match=r"not a numpy \.npy file"):
        read_calibration(str(path), 1.0)


def test_a_video_is_sampled_at_the_models_rate(data_set: Path) -> None:
    video = data_set / "videos" / "video_01.mp4"
    calibration = read_calibration(str(video), rate_hz=2.0, limit=100)
    decoded = [frame.image for frame in PyAVSource(video).frames()]
    assert len(decoded) == 96
    # 4 s at 2 Hz: every 12th frame of the 24 fps file, from the first
    (clip,) = calibration.clips
    np.testing.assert_array_equal(clip, np.stack(decoded[::12]))
    assert read_calibration(str(video), 2.0, limit=3).frame_count == 3


def test_a_data_set_gives_one_clip_per_video_sharing_the_frames(data_set: Path) -> None:
    calibration = read_calibration(str(data_set), rate_hz=1.0, limit=100)
    assert [len(clip) for clip in calibration.clips] == [4, 4]
    assert not np.array_equal(calibration.clips[0], calibration.clips[1])
    shared = read_calibration(str(data_set), rate_hz=1.0, limit=5)
    assert [len(clip) for clip in shared.clips] == [3, 2]
    np.testing.assert_array_equal(shared.clips[1], calibration.clips[1][:2])


def test_a_phantom_case_is_rendered_at_the_models_rate() -> None:
    uri = "phantom://?seed=3&seconds=6&width=160&height=96"
    calibration = read_calibration(uri, rate_hz=1.0, limit=4)
    source = PhantomSource(seed=3, seconds=6, width=160, height=96, fps=1.0, paced=False)
    expected = np.stack([frame.image for frame in source.frames(limit=4)])
    np.testing.assert_array_equal(calibration.clips[0], expected)
    with pytest.raises(OrstreamError, match="unknown parameter 'loop'"):
        read_calibration(uri + "&loop=1", 1.0)


def test_bad_sources_are_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    for source, message in [
        (str(tmp_path / "missing.mp4"), "missing.mp4: file not found"),
        (str(tmp_path / "notes.txt"), "expected a .npy file of frames, a video file"),
        (str(tmp_path / "empty"), "no videos/video_NN.mp4 in it"),
    ]:
        with pytest.raises(OrstreamError, match=message):
            read_calibration(source, 1.0)
    with pytest.raises(OrstreamError, match="--calib-frames must be at least 1, not 0"):
        read_calibration(str(tmp_path / "notes.txt"), 1.0, limit=0)


def test_the_sha256_names_the_frames() -> None:
    same = Calibration("a", (frames(3),)), Calibration("b", (frames(3),))
    assert same[0].sha256 == same[1].sha256
    assert Calibration("a", (frames(3, seed=1),)).sha256 != same[0].sha256
    # the same frames cut into other clips feed other states: another calibration
    assert Calibration("a", (frames(3)[:1], frames(3)[1:])).sha256 != same[0].sha256


def test_runs_carry_the_state_and_restart_it_with_each_clip(workflow: ModelPackage) -> None:
    card = workflow.card
    calibration = Calibration("test", (frames(3), frames(2, seed=1)))
    backend = OnnxRuntimeBackend(intra_op_threads=1)
    backend.load(workflow)
    batches: list[dict[str, np.ndarray]] = []

    def run(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batches.append({name: value.copy() for name, value in inputs.items()})
        return backend.infer(inputs)

    runs = list(calibration_runs(workflow, calibration, run))
    assert len(batches) == len(runs) == 5
    for batch in batches:
        assert list(batch) == list(card.graph_inputs())
        for name, (shape, dtype) in card.graph_inputs().items():
            assert batch[name].shape == shape and batch[name].dtype == dtype
    state_inputs = [s.input for s in card.state]
    for before, after in itertools.pairwise(batches[:3]):
        expected = card.next_state(backend.infer(before))
        for name in state_inputs:
            np.testing.assert_array_equal(after[name], expected[name])
    assert any(batches[1][name].any() for name in state_inputs)
    # the second clip starts from the initial state, as a new stream does
    assert all(not batches[3][name].any() for name in state_inputs)


def _int8_manifest(calibration: Calibration) -> EngineManifest:
    key = engine_key("0" * 64, "int8", (), H200)
    return EngineManifest.for_engine(
        key, H200, "1" * 64, datetime(2026, 11, 28, tzinfo=UTC), calibration_record(calibration)
    )


def test_an_engine_is_not_reused_for_other_calibration_frames(tmp_path: Path) -> None:
    own = Calibration("case 1", (frames(4),))
    manifest = _int8_manifest(own)
    assert EngineManifest.model_validate_json(manifest.model_dump_json()) == manifest
    plan = tmp_path / "engines" / manifest.plan_name
    check_calibration(manifest, plan, own)
    check_calibration(manifest, plan, None)  # loading checks the host, not the frames
    other = Calibration("case 2", (frames(4, seed=2),))
    with pytest.raises(OrstreamError) as refused:
        check_calibration(manifest, plan, other)
    message = str(refused.value)
    assert "calibrated on 4 frames from case 1" in message and "--rebuild" in message
    assert (
        calibration_cache_path(plan, own).name
        == (f"{plan.stem}.{own.sha256[:16]}.ranges.json")
        != calibration_cache_path(plan, other).name
    )
