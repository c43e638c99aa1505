"""Which TensorRT engine of a package to load on this host, and loading it only after its checks.

A package's ``engines/`` folder may hold several engines (``<key>.plan`` + ``<key>.json``,
:mod:`orstream.package.engine_manifest`): for other GPUs, other TensorRT releases, other precisions.
:func:`select_engine` picks one, simply:

1. the engines whose manifest names this host (GPU name, compute capability, SM count and
   TensorRT version) and the package's ``model.onnx`` as it is now;
2. of the precision asked for; when none is asked, the first of int8, fp16, fp32 present
   (faster first: the golden check at load holds each precision to its own tolerance);
3. with optimisation profiles that cover the card's input shapes (batch 1), and for a
   package with a dynamic batch a profile for every input that also covers the rows asked
   for (``max_batch``), or exactly the profiles asked for;
4. that engine must then pass :func:`~orstream.package.engine_manifest.check_engine` in full (its
   plan's bytes are the ones the manifest recorded, the manifest was not edited).

When no engine qualifies the refusal is one line naming what differs and how to rebuild
(``orstream export trt --package PKG --rebuild``); nothing is deserialised. A tampered engine
is refused rather than passed over for another one, so it cannot go unnoticed.

Only :func:`import_tensorrt` and :func:`load_engine` need TensorRT (and torch, to read the
GPU); everything else reads files and runs on any machine. The export (``orstream export trt``)
uses this module's loading, since the edge may not import the export.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from orstream.edge.backends.host_probe import read_host_info
from orstream.errors import OrstreamError
from orstream.package.engine_manifest import (
    ENGINES_DIR,
    MANIFEST_SUFFIX,
    PLAN_SUFFIX,
    TENSORRT_MISSING,
    EngineManifest,
    HostInfo,
    Precision,
    Profile,
    canonical_profiles,
    check_engine,
    read_manifest,
)
from orstream.package.loading import ModelPackage, sha256_file

PRECISION_PREFERENCE: tuple[Precision, ...] = ("int8", "fp16", "fp32")
"""The order engines are preferred in when no precision is asked for."""


def import_tensorrt() -> ModuleType:
    """The ``tensorrt`` module; OrstreamError with :data:`TENSORRT_MISSING` when absent."""
    try:
        import tensorrt
    except ImportError:
        raise OrstreamError(TENSORRT_MISSING) from None
    return tensorrt


@dataclass(frozen=True)
class EngineFile:
    """An engine of a package: its plan file and the manifest beside it."""

    plan: Path
    manifest: EngineManifest

    def describe(self) -> str:
        """``<plan name> (fp16 for NVIDIA A100 (sm_80, 108 SMs, TensorRT 10.3.0))``."""
        key = self.manifest.key
        return f"{self.plan.name} ({key.precision} for {key.describe_target()})"


def list_engines(package: ModelPackage) -> tuple[list[EngineFile], list[str]]:
    """The engines in the package's ``engines/`` folder, by manifest, and one line for each
    manifest that cannot be read (it and its plan are never used)."""
    folder = package.root / ENGINES_DIR
    engines: list[EngineFile] = []
    unreadable: list[str] = []
    for path in sorted(folder.glob(f"*{MANIFEST_SUFFIX}")) if folder.is_dir() else ():
        try:
            manifest = read_manifest(path)
        except OrstreamError as error:
            unreadable.append(str(error))
            continue
        engines.append(EngineFile(path.with_suffix(PLAN_SUFFIX), manifest))
    return engines, unreadable


def _covers_card(profiles: tuple[Profile, ...], package: ModelPackage, rows: int) -> bool:
    """Every profile's range holds the shape the card gives its input, and ``rows`` rows of
    it; with a dynamic batch every input has a profile."""
    inputs = package.card.graph_inputs()
    if package.card.dynamic_batch and {p.name for p in profiles} != set(inputs):
        return False
    for profile in profiles:
        shape = inputs.get(profile.name, (None,))[0]
        if shape is None or len(shape) != len(profile.min):
            return False
        for batch in {shape[0], rows}:
            ranges = zip(profile.min, (batch, *shape[1:]), profile.max, strict=True)
            if not all(low <= dim <= high for low, dim, high in ranges):
                return False
    return True


def engine_max_batch(engine: EngineFile, package: ModelPackage) -> int:
    """The most rows per call ``engine`` takes: 1 for a package whose graphs run batch 1,
    else the smallest batch its inputs' profiles reach."""
    profiles = engine.manifest.key.profiles
    if not package.card.dynamic_batch or not profiles:
        return 1
    return min(profile.max[0] for profile in profiles)


def _built_for(engine: EngineFile, host: HostInfo, onnx_sha256: str) -> bool:
    key = engine.manifest.key
    return (
        key.gpu_name == host.gpu_name
        and key.compute_capability == host.compute_capability
        and key.sm_count == host.sm_count
        and key.tensorrt_version == host.tensorrt_version
        and key.onnx_sha256 == onnx_sha256
    )


def _rebuild_hint(package: ModelPackage, precision: Precision | None, max_batch: int) -> str:
    flag = {"fp16": " --fp16", "int8": " --int8 --calib FRAMES"}.get(precision or "", "")
    if max_batch > package.card.max_batch:
        flag += f" --max-batch {max_batch}"
    return f"orstream export trt --package {package.root}{flag}"


def select_engine(
    package: ModelPackage,
    host: HostInfo,
    precision: Precision | None = None,
    profiles: tuple[Profile, ...] | None = None,
    max_batch: int = 1,
) -> EngineFile:
    """The engine of ``package`` to load on ``host`` (the module docstring says which).

    Args:
        package: the model package.
        host: the host about to load it.
        precision: the precision asked for; None prefers int8, then fp16, then fp32.
        profiles: the exact optimisation profiles asked for; None accepts any that cover the
            card's input shapes and ``max_batch`` rows of them.
        max_batch: the rows per call the engine must take (a dynamic batch).

    Raises:
        OrstreamError: one line: no engines, none of the precision or profiles asked for, none
            built for this host or this ``model.onnx`` (naming what differs), or the chosen
            engine's plan or manifest fails its check.
    """
    folder = package.root / ENGINES_DIR
    engines, unreadable = list_engines(package)
    unreadable_note = f" ({'; '.join(unreadable)})" if unreadable else ""
    if not engines:
        raise OrstreamError(
            f"no TensorRT engine in {folder}{unreadable_note}: build one with "
            f"{_rebuild_hint(package, precision, max_batch)}"
        )
    wanted_profiles = None if profiles is None else canonical_profiles(profiles)
    wanted = [
        engine
        for engine in engines
        if (precision is None or engine.manifest.key.precision == precision)
        and (
            _covers_card(engine.manifest.key.profiles, package, max_batch)
            if wanted_profiles is None
            else engine.manifest.key.profiles == wanted_profiles
        )
    ]
    if not wanted:
        asked = f"{precision or 'usable'} engine" + (
            " with the profiles asked for"
            if wanted_profiles is not None
            else f" for {max_batch} rows per call"
            if max_batch > 1
            else ""
        )
        held = ", ".join(engine.describe() for engine in engines)
        raise OrstreamError(
            f"{folder} holds no {asked} (it holds {held}): build one with "
            f"{_rebuild_hint(package, precision, max_batch)}"
        )
    wanted.sort(key=lambda engine: PRECISION_PREFERENCE.index(engine.manifest.key.precision))
    onnx_sha256 = sha256_file(package.model_path)
    matching = [engine for engine in wanted if _built_for(engine, host, onnx_sha256)]
    chosen = matching[0] if matching else wanted[0]
    key = chosen.manifest.key
    try:
        # Names every difference (host, ONNX, bytes, edits) in one line ending in how to rebuild.
        check_engine(chosen.manifest, host, chosen.plan, onnx_sha256, key.precision, key.profiles)
    except OrstreamError as error:
        others = len(wanted) - 1
        if matching or not others:
            raise
        raise OrstreamError(
            f"none of the {len(wanted)} engines in {folder} is for this host; {error}"
        ) from None
    return chosen


@dataclass(frozen=True)
class LoadedEngine:
    """A deserialised ``tensorrt.ICudaEngine``, the runtime that owns it, and its file."""

    engine: Any
    runtime: Any
    file: EngineFile


def load_engine(
    package: ModelPackage,
    precision: Precision | None = None,
    profiles: tuple[Profile, ...] | None = None,
    host: HostInfo | None = None,
    device: int = 0,
    max_batch: int = 1,
) -> LoadedEngine:
    """Select the package's engine for this host (:func:`select_engine`) and deserialise it.

    The plan's bytes are hashed again as they are read, so a file replaced between the check
    and the read is refused too.

    Raises:
        OrstreamError: TensorRT is missing, no CUDA GPU ``device``, the engine is refused, or
            TensorRT returns no engine for bytes it should accept.
    """
    trt = import_tensorrt()
    host = host or read_host_info(device, tensorrt_version=str(trt.__version__))
    chosen = select_engine(package, host, precision, profiles, max_batch)
    data = chosen.plan.read_bytes()
    if hashlib.sha256(data).hexdigest() != chosen.manifest.engine_sha256:
        raise OrstreamError(
            f"refusing engine {chosen.plan}: it changed while being loaded: rebuild with "
            f"orstream export trt --package {package.root} --rebuild"
        )
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        raise OrstreamError(
            f"TensorRT returned no engine for {chosen.plan} (its log above says why): rebuild "
            f"with orstream export trt --package {package.root} --rebuild"
        )
    return LoadedEngine(engine=engine, runtime=runtime, file=chosen)
