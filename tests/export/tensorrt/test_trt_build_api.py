"""``build_engine`` against TensorRT 11's Python builder API, with no TensorRT here.

TensorRT 11 removed the precision builder flags (``BuilderFlag.FP16``, ``BuilderFlag.INT8``)
and the calibrator interface (``IBuilderConfig.int8_calibrator``,
``set_calibration_profile``). :class:`StandInTensorRT` offers only the builder calls that 11.x
documents, as slotted classes, so touching a removed one fails here as it would there; it
records what it was given. The plan bytes it returns are a marker, not an engine: these tests
check the calls and the files orstream writes around them, never that anything runs. The
real build is the ``tensorrt``-marked tests in test_trt_command.py.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import onnx
import pytest
from gpu_hosts import H200
from onnx import TensorProto
from project_paths import PACKAGES

from orstream.errors import OrstreamError
from orstream.export.onnx.graph_probe import tensor_types
from orstream.export.precision.calibration import read_calibration
from orstream.export.tensorrt import build as trt_build
from orstream.package.engine_manifest import read_manifest
from orstream.package.loading import ModelPackage, load_package, sha256_file

PLAN = b"stand-in plan bytes, not an engine"


@dataclass
class Calls:
    network_flags: list[int] = field(default_factory=list)
    parsed: list[onnx.ModelProto] = field(default_factory=list)
    cleared_flags: list[int] = field(default_factory=list)
    workspace: list[int] = field(default_factory=list)


class StandInTensorRT:
    """The builder surface of TensorRT 11.4's Python API that orstream uses, nothing more."""

    __version__ = "11.4.0.106"

    def __init__(self) -> None:
        calls = self.calls = Calls()

        class Logger:
            __slots__ = ()
            WARNING = 2

            def __init__(self, severity: int) -> None:
                pass

        class NetworkDefinitionCreationFlag:
            __slots__ = ()
            STRONGLY_TYPED = 1  # accepted and ignored by 11.x: every network is strongly typed

        class MemoryPoolType:
            __slots__ = ()
            WORKSPACE = 0

        class BuilderFlag:
            __slots__ = ()
            TF32 = 7  # no FP16, BF16, INT8 or FP8 flags in 11.x

        class TimingCache:
            __slots__ = ("data",)

            def __init__(self, data: bytes) -> None:
                self.data = data

            def serialize(self) -> bytes:
                return self.data + b"+timings"

        class Config:
            __slots__ = ("cache",)

            def __init__(self) -> None:
                self.cache: TimingCache | None = None

            def set_memory_pool_limit(self, pool: int, size: int) -> None:
                calls.workspace.append(size)

            def clear_flag(self, flag: int) -> None:
                calls.cleared_flags.append(flag)

            def add_optimization_profile(self, profile: Any) -> int:
                return 0

            def create_timing_cache(self, data: bytes) -> TimingCache:
                return TimingCache(data)

            def set_timing_cache(self, cache: TimingCache, ignore_mismatch: bool) -> bool:
                self.cache = cache
                return True

            def get_timing_cache(self) -> TimingCache | None:
                return self.cache

        class Network:
            __slots__ = ()

        class Builder:
            __slots__ = ()

            def __init__(self, logger: Logger) -> None:
                pass

            def create_network(self, flags: int = 0) -> Network:
                calls.network_flags.append(flags)
                return Network()

            def create_builder_config(self) -> Config:
                return Config()

            def build_serialized_network(self, network: Network, config: Config) -> bytes:
                return PLAN

        class OnnxParser:
            __slots__ = ()
            num_errors = 0

            def __init__(self, network: Network, logger: Logger) -> None:
                pass

            def parse_from_file(self, path: str) -> bool:
                calls.parsed.append(onnx.load(path))
                return True

        class Runtime:
            __slots__ = ()

            def __init__(self, logger: Logger) -> None:
                pass

            def deserialize_cuda_engine(self, plan: bytes) -> object:
                return object()

        self.Logger = Logger
        self.NetworkDefinitionCreationFlag = NetworkDefinitionCreationFlag
        self.MemoryPoolType = MemoryPoolType
        self.BuilderFlag = BuilderFlag
        self.Builder = Builder
        self.OnnxParser = OnnxParser
        self.Runtime = Runtime


@pytest.fixture()
def trt(monkeypatch: pytest.MonkeyPatch) -> StandInTensorRT:
    stand_in = StandInTensorRT()
    host = replace(H200, tensorrt_version=stand_in.__version__)
    monkeypatch.setattr(trt_build, "import_tensorrt", lambda: stand_in)
    monkeypatch.setattr(trt_build, "read_host_info", lambda tensorrt_version: host)
    return stand_in


@pytest.fixture()
def package(tmp_path: Path) -> ModelPackage:
    return load_package(Path(shutil.copytree(PACKAGES / "pitvis_workflow", tmp_path / "pkg")))


def _float_types(model: onnx.ModelProto) -> set[int]:
    types = tensor_types(model)
    return {types[n.output[0]] for n in model.graph.node if n.op_type == "Conv"}


def test_fp16_builds_a_strongly_typed_network_from_the_fp16_graph(
    trt: StandInTensorRT, package: ModelPackage
) -> None:
    built = trt_build.build_engine(package, "fp16", (), workspace_mb=256)
    assert trt.calls.network_flags == [1 << 1]
    (parsed,) = trt.calls.parsed
    assert _float_types(parsed) == {TensorProto.FLOAT16}
    assert [v.type.tensor_type.elem_type for v in parsed.graph.input] == [TensorProto.FLOAT] * 13
    assert trt.calls.workspace == [256 << 20]
    assert trt.calls.cleared_flags == []  # TF32 only matters to fp32 engines
    assert built.plan.read_bytes() == PLAN
    assert read_manifest(built.plan.with_suffix(".json")).engine_sha256 == sha256_file(built.plan)
    assert built.graph is not None and built.graph.check.max_abs_diff < built.graph.check.allowed
    cache = trt_build.timing_cache_path(package.root, trt_build.read_host_info("11.4.0.106"))
    assert cache.read_bytes() == b"+timings"


def test_fp32_engines_are_built_without_tf32(trt: StandInTensorRT, package: ModelPackage) -> None:
    trt_build.build_engine(package, "fp32", ())
    assert trt.calls.cleared_flags == [trt.BuilderFlag.TF32]
    (parsed,) = trt.calls.parsed
    assert parsed.SerializeToString() == onnx.load(package.model_path).SerializeToString()


def test_int8_builds_from_calibrated_qdq_and_keeps_the_ranges(
    trt: StandInTensorRT, package: ModelPackage
) -> None:
    frames = read_calibration("phantom://?seed=5&seconds=24&width=320&height=180", 1.0, 24)
    built = trt_build.build_engine(package, "int8", (), calibration=frames)
    (parsed,) = trt.calls.parsed
    ops = {node.op_type for node in parsed.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    record = built.manifest.calibration
    assert record is not None and record.sha256 == frames.sha256
    ranges = built.plan.with_name(built.plan.stem + record.cache_suffix)
    assert ranges.is_file()
    assert built.graph is not None and built.graph.calibrated
    again = trt_build.build_engine(package, "int8", (), calibration=frames, rebuild=True)
    assert again.graph is not None and not again.graph.calibrated  # read back from the file
    assert trt.calls.parsed[1].SerializeToString() == parsed.SerializeToString()


def test_tensorrt_before_10_is_refused(trt: StandInTensorRT, package: ModelPackage) -> None:
    trt.__version__ = "8.6.1"
    with pytest.raises(OrstreamError, match=r"TensorRT 8\.6\.1 is too old"):
        trt_build.build_engine(package, "fp16", ())
    assert trt.calls.parsed == []
