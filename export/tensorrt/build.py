"""TensorRT engines from a package's ``model.onnx``, written against TensorRT's Python API.

:func:`build_engine` takes the graph of the precision asked for
(:func:`orstream.export.tensorrt.engine_graph.engine_graph`: fp32 as exported, fp16 written into the
graph, INT8 as Q/DQ pairs calibrated on real frames), which must first pass the golden check
on ONNX Runtime. It parses that graph with ``tensorrt.OnnxParser`` into a strongly typed
network (``NetworkDefinitionCreationFlag.STRONGLY_TYPED``, which TensorRT 10 needs and 11
always applies: 11 has no fp16 or INT8 builder flags and no calibrator interface), sets the
workspace limit and one optimisation profile per ``--profile`` input, reuses a persistent
timing cache per host (``engines/timing-<host>.cache``), serialises the engine with
``Builder.build_serialized_network``, checks that ``Runtime.deserialize_cuda_engine`` accepts
it, and writes ``engines/<key>.plan`` with its manifest (:mod:`orstream.package.engine_manifest`).
fp32 engines are built without TF32, as the torch backend runs fp32, so that they meet the
fp32 tolerance of the golden check. Loading an engine is the edge's
(:func:`orstream.edge.backends.tensorrt_engines.load_engine`): it refuses an engine whose
manifest does not match the host, the package or the plan's bytes before deserialising
anything.

INT8 calibration ranges are kept beside the engine,
``engines/<key>.<frames sha256[:16]>.ranges.json``, and read back when the same frames
calibrate again; the manifest records the frames' source, count and sha256, and an engine
calibrated on other frames is not reused without ``--rebuild``.

TensorRT is imported inside functions: without it every entry point raises
:data:`~orstream.package.engine_manifest.TENSORRT_MISSING` as one line, before any calibration.
Preparing and checking the graph needs only ONNX and ONNX Runtime and runs anywhere.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory

import onnx

from orstream.edge.backends.host_probe import read_host_info
from orstream.edge.backends.tensorrt_engines import import_tensorrt
from orstream.errors import OrstreamError
from orstream.export.precision.calibration import Calibration
from orstream.export.tensorrt.engine_graph import EngineGraph, engine_graph
from orstream.package.engine_manifest import (
    ENGINES_DIR,
    CalibrationRecord,
    EngineManifest,
    HostInfo,
    Precision,
    Profile,
    check_engine,
    engine_key,
    engine_paths,
    read_manifest,
    write_manifest,
)
from orstream.package.loading import ModelPackage, sha256_file

DEFAULT_WORKSPACE_MB = 1024
MIN_TENSORRT_MAJOR = 10


def timing_cache_path(package_root: Path, host: HostInfo) -> Path:
    """``engines/timing-<host>.cache``: TensorRT's layer timings are only valid on the device,
    CUDA and TensorRT versions that measured them, so each host keeps its own cache."""
    identity = "|".join(
        (
            host.gpu_name,
            f"{host.compute_capability[0]}.{host.compute_capability[1]}",
            str(host.sm_count),
            host.tensorrt_version,
            host.cuda_version,
        )
    )
    tag = hashlib.sha256(identity.encode("utf-8")).hexdigest()[:16]
    return package_root / ENGINES_DIR / f"timing-{tag}.cache"


def calibration_record(calibration: Calibration) -> CalibrationRecord:
    """What the manifest says of ``calibration``."""
    return CalibrationRecord(
        source=calibration.source, frames=calibration.frame_count, sha256=calibration.sha256
    )


def check_calibration(
    manifest: EngineManifest, plan: Path, calibration: Calibration | None
) -> None:
    """Refuse to reuse an INT8 engine for calibration frames other than its own.

    Raises:
        OrstreamError: ``calibration`` differs from the one the manifest records.
    """
    recorded = manifest.calibration
    if calibration is None or recorded is None or recorded.sha256 == calibration.sha256:
        return
    raise OrstreamError(
        f"{plan} was calibrated on {recorded.frames} frames from {recorded.source} (sha256 "
        f"{recorded.sha256[:12]}...), not on these {calibration.frame_count} from "
        f"{calibration.source} (sha256 {calibration.sha256[:12]}...): --rebuild to calibrate "
        "on them"
    )


def calibration_cache_path(plan: Path, calibration: Calibration) -> Path:
    """``engines/<key>.<sha256[:16]>.ranges.json``: the INT8 ranges these frames gave."""
    return plan.with_name(plan.stem + calibration_record(calibration).cache_suffix)


@dataclass(frozen=True)
class BuiltEngine:
    """A plan on disk and its manifest; ``reused`` when a valid one was already there, else
    ``graph`` is the graph it was built from."""

    plan: Path
    manifest: EngineManifest
    reused: bool
    graph: EngineGraph | None = None


def build_engine(
    package: ModelPackage,
    precision: Precision,
    profiles: tuple[Profile, ...],
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    calibration: Calibration | None = None,
    rebuild: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> BuiltEngine:
    """Build (or reuse) the engine of ``package`` for this host.

    Args:
        package: the model package; the plan goes into its ``engines/`` folder.
        precision: ``fp32``, ``fp16`` or ``int8`` (which needs ``calibration``).
        profiles: shape ranges of graph inputs (checked against the card by the caller).
        workspace_mb: TensorRT's workspace memory pool limit.
        calibration: frames for INT8 calibration (:func:`~orstream.export.precision.calibration.
            read_calibration`).
        rebuild: build even when a valid engine for this key exists.
        progress: told of each step.

    Raises:
        OrstreamError: TensorRT is missing or older than 10, no CUDA GPU, the graph fails the
            golden check, the parser rejects it, the build fails, the existing engine is
            refused (without ``rebuild``), or TensorRT cannot deserialise what it just built.
    """
    trt = import_tensorrt()
    major = int(str(trt.__version__).split(".")[0])
    if major < MIN_TENSORRT_MAJOR:
        raise OrstreamError(
            f"TensorRT {trt.__version__} is too old: engines are built as strongly typed "
            f"networks, which need TensorRT {MIN_TENSORRT_MAJOR} or newer"
        )
    if precision == "int8" and calibration is None:
        raise OrstreamError("an int8 engine needs calibration frames (--calib)")
    host = read_host_info(tensorrt_version=str(trt.__version__))
    onnx_sha256 = sha256_file(package.model_path)
    key = engine_key(onnx_sha256, precision, profiles, host)
    plan_path, manifest_path = engine_paths(package.root, key)
    if manifest_path.is_file() and not rebuild:
        manifest = read_manifest(manifest_path)
        check_engine(manifest, host, plan_path, onnx_sha256, precision, profiles)
        check_calibration(manifest, plan_path, calibration)
        return BuiltEngine(plan_path, manifest, reused=True)

    graph = engine_graph(
        package,
        precision,
        calibration,
        calibration_cache_path(plan_path, calibration) if calibration else None,
        progress,
    )
    progress(graph.describe())
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))
    parser = trt.OnnxParser(network, logger)
    with TemporaryDirectory(prefix="orstream-trt-") as folder:
        graph_path = Path(folder) / f"{precision}.onnx"
        onnx.save(graph.model, graph_path)
        if not parser.parse_from_file(str(graph_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise OrstreamError(
                f"TensorRT's ONNX parser rejects the {precision} graph of {package.model_path}: "
                f"{errors}"
            )

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_mb << 20)
    if precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)
    if profiles:
        profile = builder.create_optimization_profile()
        for shapes in profiles:
            profile.set_shape(shapes.name, shapes.min, shapes.opt, shapes.max)
        config.add_optimization_profile(profile)

    cache_path = timing_cache_path(package.root, host)
    cache_bytes = cache_path.read_bytes() if cache_path.is_file() else b""
    timing_cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(timing_cache, False)  # never reuse timings measured elsewhere

    progress(f"building the {precision} engine with TensorRT {trt.__version__}")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise OrstreamError(
            f"TensorRT could not build an engine from {package.model_path} "
            f"({precision}, workspace {workspace_mb} MB); its log above says why"
        )
    plan = bytes(serialized)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    if engine is None:
        raise OrstreamError("TensorRT cannot deserialise the engine it just built")

    plan_path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(plan_path, plan)
    _write_atomic(cache_path, bytes(config.get_timing_cache().serialize()))
    manifest = EngineManifest.for_engine(
        key,
        host,
        hashlib.sha256(plan).hexdigest(),
        datetime.now(UTC),
        calibration_record(calibration) if precision == "int8" and calibration else None,
    )
    write_manifest(plan_path.parent, manifest)
    return BuiltEngine(plan_path, manifest, reused=False, graph=graph)


def _write_atomic(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
