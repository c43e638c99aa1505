"""``orstream export trt``: argument checks and calibration feeding run everywhere; building and
loading an engine runs only where TensorRT and a CUDA GPU are (marker ``tensorrt``)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from orstream.cli import main
from orstream.errors import OrstreamError
from orstream.export.precision.calibration import Calibration
from orstream.export.tensorrt.profiles import batch_profiles
from orstream.package.engine_manifest import TENSORRT_MISSING, read_manifest
from orstream.package.loading import ModelPackage, load_package, sha256_file

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None
IMAGE_PROFILE = "image:1x3x112x192,1x3x112x192,1x3x112x192"


@pytest.fixture(scope="module")
def workflow_path(project_root: Path) -> Path:
    return project_root / "edge" / "packages" / "pitvis_workflow"


@pytest.fixture(scope="module")
def workflow(workflow_path: Path) -> ModelPackage:
    return load_package(workflow_path)


def frames(count: int, height: int = 120, width: int = 200) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def error_line(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    return err


@pytest.mark.skipif(HAS_TENSORRT, reason="checks the message shown where TensorRT is absent")
def test_without_tensorrt_the_command_says_so_in_one_line(
    workflow_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = error_line(
        ["export", "trt", "--package", str(workflow_path), "--fp16", "--max-batch", "4"], capsys
    )
    assert err == f"orstream: error: {TENSORRT_MISSING}\n"
    assert not (workflow_path / "engines").exists()
    # said before any calibration frame is read: this source fails only when it is read
    calib = "phantom://?seed=abc"
    argv = ["export", "trt", "--package", str(workflow_path), "--int8", "--calib", calib]
    assert error_line(argv, capsys) == f"orstream: error: {TENSORRT_MISSING}\n"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--profile", "frame:1x3,1x3,1x3"], "pitvis_workflow has no input 'frame'"),
        (["--profile", "image:1x3x112x192"], "expected three shapes"),
        (["--profile", IMAGE_PROFILE], "takes a dynamic batch, so every graph input needs a"),
        (["--profile", IMAGE_PROFILE, "--max-batch", "4"], "--max-batch sets every input's"),
        (["--max-batch", "0"], "--max-batch 0: pitvis_workflow takes 1 to N rows"),
        (["--workspace", "0"], "--workspace must be at least 1 MB, not 0"),
        (["--int8"], "--int8 needs calibration frames: --calib SOURCE"),
        (["--calib", "frames.npy"], "--calib is only used with --int8"),
        (["--int8", "--calib", "missing.npy"], "--calib missing.npy: file not found"),
    ],
)
def test_arguments_are_checked_before_tensorrt(
    workflow_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    err = error_line(["export", "trt", "--package", str(workflow_path), *extra], capsys)
    assert message in err


def test_missing_package_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = error_line(["export", "trt", "--package", str(tmp_path / "nope")], capsys)
    assert "model package" in err and "not found" in err


def test_fp16_and_int8_are_exclusive(workflow_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export", "trt", "--package", str(workflow_path), "--fp16", "--int8"])
    assert exit_info.value.code == 2


# --- where TensorRT and a CUDA GPU exist -----------------------------------------------------


def _has_cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


needs_tensorrt = pytest.mark.skipif(not HAS_TENSORRT, reason="needs TensorRT")


@pytest.fixture()
def package_copy(workflow_path: Path, tmp_path: Path) -> ModelPackage:
    if not _has_cuda():
        pytest.skip("needs a CUDA GPU")
    return load_package(Path(shutil.copytree(workflow_path, tmp_path / "package")))


@pytest.mark.tensorrt
@needs_tensorrt
def test_builds_reuses_and_loads_an_engine(package_copy: ModelPackage) -> None:
    from orstream.edge.backends.tensorrt_engines import load_engine
    from orstream.export.tensorrt.build import build_engine

    profiles = batch_profiles(package_copy.card, 2)
    built = build_engine(package_copy, "fp16", profiles)
    assert not built.reused
    assert sha256_file(built.plan) == built.manifest.engine_sha256
    assert read_manifest(built.plan.with_suffix(".json")) == built.manifest
    assert list(built.plan.parent.glob("timing-*.cache"))
    assert build_engine(package_copy, "fp16", profiles).reused
    assert load_engine(package_copy, "fp16", profiles) is not None
    with pytest.raises(OrstreamError, match="no fp32 engine"):
        load_engine(package_copy, "fp32", profiles)
    data = bytearray(built.plan.read_bytes())
    data[len(data) // 2] ^= 0xFF
    built.plan.write_bytes(bytes(data))
    with pytest.raises(OrstreamError, match="tampered, truncated or replaced"):
        load_engine(package_copy, "fp16", profiles)


@pytest.mark.tensorrt
@needs_tensorrt
def test_builds_an_int8_engine_from_calibration_frames(package_copy: ModelPackage) -> None:
    from orstream.export.tensorrt.build import build_engine

    calibration = Calibration("test frames", (frames(4), frames(3)))
    profiles = batch_profiles(package_copy.card, 2)
    built = build_engine(package_copy, "int8", profiles, calibration=calibration)
    assert built.manifest.key.precision == "int8"
    assert sha256_file(built.plan) == built.manifest.engine_sha256
    record = built.manifest.calibration
    assert record is not None and (record.frames, record.sha256) == (7, calibration.sha256)
    ranges = built.plan.with_name(built.plan.stem + record.cache_suffix)
    assert ranges.stat().st_size > 0
    # the same frames again: the ranges beside the engine, no calibration pass
    again = build_engine(package_copy, "int8", profiles, calibration=calibration, rebuild=True)
    assert again.manifest.calibration == record
    assert again.graph is not None and not again.graph.calibrated
    other = Calibration("other frames", (frames(2, height=100),))
    with pytest.raises(OrstreamError, match="--rebuild to calibrate on them"):
        build_engine(package_copy, "int8", profiles, calibration=other)
