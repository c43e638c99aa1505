"""TensorRT engine manifests: what an engine was built from and for, and the check before loading.

A package's ``engines/`` folder holds one ``<key>.plan`` (a serialised TensorRT engine) per
build, each with ``<key>.json`` beside it (:class:`EngineManifest`). ``<key>`` is the start of
the cache key: the sha256 of a canonical JSON of :class:`EngineKey` (sha256 of the ONNX,
precision, optimisation profiles, GPU name, compute capability, SM count and TensorRT version).
A TensorRT engine is only valid on the GPU model and TensorRT release it was built with, so an
engine whose manifest does not match the host, the package's ONNX or its own bytes is refused
(:func:`check_engine`) and never deserialised.

The CUDA and driver versions are recorded for diagnosis but are not part of the key: TensorRT
ties an engine to its own version and the device, not to the CUDA minor version it ran on.

Reading the host is the edge's (:func:`orstream.edge.backends.host_probe.read_host_info`): this
module needs only pydantic and the standard library, so it is tested on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orstream.errors import OrstreamError, describe_validation_error
from orstream.package.card import SHA256_PATTERN
from orstream.package.loading import sha256_file

ENGINES_DIR = "engines"
PLAN_SUFFIX = ".plan"
MANIFEST_SUFFIX = ".json"
MANIFEST_FORMAT: Literal[1] = 1
SHORT_KEY_LENGTH = 16
"""Hex characters of the cache key that name the plan file (64 bits: collisions are not a
concern among the handful of engines one package holds, and the manifest keeps the full key)."""

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8")
TENSORRT_MISSING = (
    "TensorRT is not installed (its Python package comes from NVIDIA's index); "
    "engines cannot be built on this host"
)


class _Strict(BaseModel):
    """Unknown keys are errors, so an edited or foreign manifest never passes silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def format_shape(shape: tuple[int, ...]) -> str:
    """A shape as the command line writes it: ``1x3x144x256``."""
    return "x".join(str(d) for d in shape)


class Profile(_Strict):
    """The shapes one graph input may take in an optimisation profile: ``min <= opt <= max``
    in every dimension, all of one rank."""

    name: str = Field(min_length=1)
    min: tuple[int, ...] = Field(min_length=1)
    opt: tuple[int, ...] = Field(min_length=1)
    max: tuple[int, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _ordered(self) -> Profile:
        if not len(self.min) == len(self.opt) == len(self.max):
            raise ValueError(
                f"profile {self.name!r}: min, opt and max must have the same rank "
                f"({format_shape(self.min)}, {format_shape(self.opt)}, {format_shape(self.max)})"
            )
        if min(self.min) < 1:
            raise ValueError(f"profile {self.name!r}: every dimension must be at least 1")
        if any(not a <= b <= c for a, b, c in zip(self.min, self.opt, self.max, strict=True)):
            raise ValueError(
                f"profile {self.name!r}: need min <= opt <= max in every dimension, got "
                f"{format_shape(self.min)}, {format_shape(self.opt)}, {format_shape(self.max)}"
            )
        return self

    def describe(self) -> str:
        """``name:min,opt,max``, the form ``--profile`` takes."""
        shapes = (format_shape(s) for s in (self.min, self.opt, self.max))
        return f"{self.name}:" + ",".join(shapes)


def canonical_profiles(profiles: tuple[Profile, ...]) -> tuple[Profile, ...]:
    """Profiles sorted by input name: the order ``--profile`` options were given in does not
    change the engine, so it does not change the key."""
    return tuple(sorted(profiles, key=lambda p: p.name))


def describe_profiles(profiles: tuple[Profile, ...]) -> str:
    return " ".join(p.describe() for p in profiles) if profiles else "none (static shapes)"


class EngineKey(_Strict):
    """Everything an engine's validity depends on; its :meth:`digest` is the cache key."""

    onnx_sha256: str = Field(pattern=SHA256_PATTERN)
    precision: Precision
    profiles: tuple[Profile, ...] = ()
    gpu_name: str = Field(min_length=1)
    compute_capability: tuple[int, int]
    sm_count: int = Field(gt=0)
    tensorrt_version: str = Field(min_length=1)

    @field_validator("profiles")
    @classmethod
    def _canonical_order(cls, profiles: tuple[Profile, ...]) -> tuple[Profile, ...]:
        names = [p.name for p in profiles]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"more than one profile for input(s) {duplicates}")
        return canonical_profiles(profiles)

    def digest(self) -> str:
        """Hex sha256 of the key's canonical JSON (sorted keys, no whitespace)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    @property
    def short(self) -> str:
        """The start of :meth:`digest` that names ``engines/<short>.plan``."""
        return self.digest()[:SHORT_KEY_LENGTH]

    def describe_target(self) -> str:
        """``NVIDIA A100 (sm_80, 108 SMs, TensorRT 10.3.0)``."""
        return describe_target(
            self.gpu_name, self.compute_capability, self.sm_count, self.tensorrt_version
        )


def describe_target(
    gpu_name: str, compute_capability: tuple[int, int], sm_count: int, tensorrt_version: str
) -> str:
    major, minor = compute_capability
    return f"{gpu_name} (sm_{major}{minor}, {sm_count} SMs, TensorRT {tensorrt_version})"


@dataclass(frozen=True)
class HostInfo:
    """The GPU and software an engine would be built for or loaded on."""

    gpu_name: str
    compute_capability: tuple[int, int]
    sm_count: int
    tensorrt_version: str
    cuda_version: str
    driver_version: str

    def describe(self) -> str:
        return describe_target(
            self.gpu_name, self.compute_capability, self.sm_count, self.tensorrt_version
        )


def engine_key(
    onnx_sha256: str, precision: Precision, profiles: tuple[Profile, ...], host: HostInfo
) -> EngineKey:
    """The key of an engine built from this ONNX with these settings on ``host``."""
    return EngineKey(
        onnx_sha256=onnx_sha256,
        precision=precision,
        profiles=profiles,
        gpu_name=host.gpu_name,
        compute_capability=host.compute_capability,
        sm_count=host.sm_count,
        tensorrt_version=host.tensorrt_version,
    )


class CalibrationRecord(_Strict):
    """What an INT8 engine was calibrated on; the ranges calibrated on those frames are kept in
    ``engines/<key>.<sha256[:16]>.ranges.json``."""

    source: str
    frames: int = Field(gt=0)
    sha256: str = Field(pattern=SHA256_PATTERN)

    @property
    def cache_suffix(self) -> str:
        return f".{self.sha256[:SHORT_KEY_LENGTH]}.ranges.json"


class EngineManifest(_Strict):
    """The record beside ``engines/<key>.plan``: what it was built from, for and with."""

    format: Literal[1] = MANIFEST_FORMAT
    key: EngineKey
    cache_key: str = Field(pattern=SHA256_PATTERN, description="key.digest() at build time")
    cuda_version: str
    driver_version: str
    engine_sha256: str = Field(pattern=SHA256_PATTERN)
    created: AwareDatetime
    orstream_version: str
    calibration: CalibrationRecord | None = None
    """INT8 engines: the calibration frames."""

    @classmethod
    def for_engine(
        cls,
        key: EngineKey,
        host: HostInfo,
        engine_sha256: str,
        created: datetime,
        calibration: CalibrationRecord | None = None,
    ) -> EngineManifest:
        """The manifest of a plan just serialised for ``key`` on ``host``."""
        from orstream import __version__

        return cls(
            key=key,
            cache_key=key.digest(),
            cuda_version=host.cuda_version,
            driver_version=host.driver_version,
            engine_sha256=engine_sha256,
            created=created,
            orstream_version=__version__,
            calibration=calibration,
        )

    @property
    def plan_name(self) -> str:
        return self.cache_key[:SHORT_KEY_LENGTH] + PLAN_SUFFIX

    @property
    def manifest_name(self) -> str:
        return self.cache_key[:SHORT_KEY_LENGTH] + MANIFEST_SUFFIX


def engine_paths(package_root: Path, key: EngineKey) -> tuple[Path, Path]:
    """``(engines/<key>.plan, engines/<key>.json)`` inside a package folder."""
    folder = package_root / ENGINES_DIR
    return folder / (key.short + PLAN_SUFFIX), folder / (key.short + MANIFEST_SUFFIX)


def write_manifest(folder: Path, manifest: EngineManifest) -> Path:
    """Write ``<key>.json`` into ``folder`` atomically and return its path."""
    path = folder / manifest.manifest_name
    partial = path.with_name(path.name + ".partial")
    partial.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(partial, path)
    return path


def read_manifest(path: Path) -> EngineManifest:
    """Parse and validate an engine manifest; OrstreamError with one line otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OrstreamError(f"{path}: engine manifest not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OrstreamError(f"{path}: cannot read engine manifest ({error})") from None
    try:
        data: Any = json.loads(text)
    except json.JSONDecodeError as error:
        raise OrstreamError(
            f"{path}: not valid JSON (line {error.lineno} column {error.colno}: {error.msg})"
        ) from None
    try:
        return EngineManifest.model_validate(data)
    except ValidationError as error:
        raise OrstreamError(
            f"{path}: invalid engine manifest, {describe_validation_error(error)}"
        ) from None


def check_engine(
    manifest: EngineManifest,
    host: HostInfo,
    plan_path: Path,
    onnx_sha256: str,
    precision: Precision,
    profiles: tuple[Profile, ...],
) -> None:
    """Refuse an engine that is not the one this host and package ask for.

    Every difference is named in one line: the GPU, compute capability, SM count or TensorRT
    version it was built for; the ONNX it was built from (the package's ``model.onnx`` changed
    since); the precision or profiles asked for; a manifest edited after the build (its fields
    no longer give its cache key); a plan file that is missing, named for another key, or whose
    bytes are not the ones the manifest recorded (tampered, truncated or replaced).

    Args:
        manifest: the manifest beside the plan.
        host: the host about to load the engine.
        plan_path: the ``engines/<key>.plan`` file; its package is the folder above ``engines``.
        onnx_sha256: sha256 of the package's ``model.onnx`` now.
        precision: the precision asked for.
        profiles: the optimisation profiles asked for.

    Raises:
        OrstreamError: one line naming what differs and how to rebuild.
    """
    key = manifest.key
    problems: list[str] = []
    host_fields = {
        "GPU": (key.gpu_name, host.gpu_name),
        "compute capability": (key.compute_capability, host.compute_capability),
        "SM count": (key.sm_count, host.sm_count),
        "TensorRT version": (key.tensorrt_version, host.tensorrt_version),
    }
    differing = [name for name, (built, here) in host_fields.items() if built != here]
    if differing:
        problems.append(
            f"engine built for {key.describe_target()} but this host has {host.describe()} "
            f"({', '.join(differing)} differ{'s' if len(differing) == 1 else ''})"
        )
    if key.onnx_sha256 != onnx_sha256:
        problems.append(
            f"engine built from ONNX sha256 {key.onnx_sha256[:12]}... but the package's "
            f"model.onnx is now {onnx_sha256[:12]}..."
        )
    if key.precision != precision:
        problems.append(f"engine built for {key.precision}, {precision} asked for")
    wanted = canonical_profiles(profiles)
    if key.profiles != wanted:
        problems.append(
            f"engine built with profiles {describe_profiles(key.profiles)}, "
            f"{describe_profiles(wanted)} asked for"
        )
    if manifest.cache_key != key.digest():
        problems.append(
            f"manifest fields give cache key {key.short}, not its recorded "
            f"{manifest.cache_key[:SHORT_KEY_LENGTH]} (edited after the build)"
        )
    if plan_path.name != manifest.plan_name:
        problems.append(f"plan file {plan_path.name} is not the manifest's {manifest.plan_name}")
    if not plan_path.is_file():
        problems.append(f"plan file {plan_path} is missing")
    else:
        actual = sha256_file(plan_path)
        if actual != manifest.engine_sha256:
            problems.append(
                f"plan sha256 {actual[:12]}... is not the manifest's "
                f"{manifest.engine_sha256[:12]}... (tampered, truncated or replaced)"
            )
    if problems:
        package = plan_path.parent.parent
        raise OrstreamError(
            f"refusing engine {plan_path}: {'; '.join(problems)}: rebuild with "
            f"orstream export trt --package {package} --rebuild"
        )
