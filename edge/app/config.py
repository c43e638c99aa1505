"""``edge.yaml``: the typed configuration of ``orstream edge run``, one section per stage.

Every section is strict: an unknown key is an error naming the key, so a typo never runs
silently with a default. Example::

    source:
      uri: rtsp://192.168.1.20:8554/endoscope
      stream_id: or3
    model:
      package: /opt/orstream/packages/pitvis_workflow
      backends: [tensorrt:cuda, torch:cuda, onnxruntime]   # the default
    segmentation:
      package: /opt/orstream/packages/imis_segmenter
      rate_hz: 2
    overlay:
      stale_after_ms: 250
    record:
      path: /data/or3.mp4
    rtsp:
      port: 8554
    grpc:
      address: 0.0.0.0:50051
    results:
      dir: /data/or3-results
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from orstream.edge.backends import parse_device, parse_preference
from orstream.errors import OrstreamError, describe_validation_error

DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
DEFAULT_BACKENDS = ("tensorrt:cuda", "torch:cuda", "onnxruntime")
"""Most wanted first: a TensorRT engine built for this host, else torch on the GPU, else ONNX
Runtime on ``device``; each must pass the package's golden check (``backend_reason`` in the
status says which ran and why the others did not)."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _BackendChoice(_Section):
    """What runs a model's graphs: a backend preference and the device of entries naming none."""

    backends: tuple[str, ...] = Field(
        default=DEFAULT_BACKENDS,
        min_length=1,
        description='preference: "name" or "name:device" (cpu, cuda, cuda:N), first that works',
    )
    device: str = Field(default="cpu", description="device of backends that name none")

    @field_validator("device")
    @classmethod
    def _known_device(cls, device: str) -> str:
        try:
            return parse_device(device)
        except OrstreamError as error:
            raise ValueError(str(error)) from None

    @field_validator("backends")
    @classmethod
    def _known_backends(cls, backends: tuple[str, ...]) -> tuple[str, ...]:
        for entry in backends:
            try:
                parse_preference(entry, "cpu")
            except OrstreamError as error:
                raise ValueError(str(error)) from None
        return backends


class PortConfig(_Section):
    """A stage's input port; ``policy`` None picks by the source (live or not)."""

    capacity: int = Field(default=1, ge=1)
    policy: Literal["latest", "drop_oldest", "block"] | None = None


class SourceConfig(_Section):
    uri: str
    stream_id: str = "cam0"
    realtime: bool = Field(
        default=False, description="play files at their own frame rate instead of flat out"
    )


class ModelConfig(_BackendChoice):
    package: Path
    rate_hz: float | None = Field(default=None, gt=0)
    port: PortConfig = PortConfig(capacity=1)


class SegmentationConfig(_BackendChoice):
    """Live masks on the feed and ``Prompt`` over gRPC; the encoder and the decoder each run
    on the first backend of ``backends`` that works for them."""

    package: Path
    rate_hz: float | None = Field(
        default=None, gt=0, description="frames per second to segment (default: the card's)"
    )
    classes: tuple[str, ...] | None = Field(
        default=None,
        description="class names prompted on every segmented frame (default: the instruments "
        "the recognizer reports, plus anatomy; every class without a recognizer)",
    )
    min_score: float = Field(default=0.5, ge=0, le=1, description="smallest predicted IoU shown")
    keep_frames: int = Field(default=30, ge=1, description="recent frames kept for prompts")
    keep_embeddings: int = Field(
        default=16, ge=1, description="image embeddings of segmented frames kept for prompts"
    )


class OverlayConfig(_Section):
    enabled: bool = True
    stale_after_ms: float = Field(default=250.0, ge=0)
    no_signal_after_ms: float = Field(default=1000.0, gt=0)
    port: PortConfig = PortConfig(capacity=24)


class RecordConfig(_Section):
    path: Path


class RtspConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8554, ge=0, le=65535)
    path: str = "/live"


class DisplayConfig(_Section):
    enabled: bool = False


class GrpcConfig(_Section):
    enabled: bool = True
    address: str = DEFAULT_GRPC_ADDRESS
    reflection: bool = False
    max_message_mb: float = Field(default=4.0, gt=0)
    drain_s: float = Field(default=2.0, ge=0)


class ResultsConfig(_Section):
    dir: Path
    video: int | None = Field(
        default=None, ge=0, description="PitVis video number (default: from the source name)"
    )


class EdgeConfig(_Section):
    source: SourceConfig
    model: ModelConfig | None = None
    segmentation: SegmentationConfig | None = None
    overlay: OverlayConfig = OverlayConfig()
    record: RecordConfig | None = None
    rtsp: RtspConfig | None = None
    display: DisplayConfig = DisplayConfig()
    grpc: GrpcConfig = GrpcConfig()
    results: ResultsConfig | None = None


def parse_config(data: Any, where: str) -> EdgeConfig:
    """Validate a config mapping; OrstreamError naming ``where`` and the first problem."""
    if not isinstance(data, dict):
        raise OrstreamError(f"{where}: expected a mapping of sections, got {type(data).__name__}")
    try:
        return EdgeConfig.model_validate(data)
    except ValidationError as error:
        raise OrstreamError(f"{where}: {describe_validation_error(error)}") from None


def load_config(path: Path) -> EdgeConfig:
    """Read and validate an ``edge.yaml``; paths in it are relative to the file's folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OrstreamError(f"{path}: config not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise OrstreamError(f"{path}: cannot read config ({error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise OrstreamError(f"{path}: not valid YAML ({' '.join(str(error).split())})") from None
    config = parse_config(data, str(path))
    return _relative_to(config, path.parent)


def _relative_to(config: EdgeConfig, folder: Path) -> EdgeConfig:
    def fix(value: Path) -> Path:
        return value if value.is_absolute() else folder / value

    updates: dict[str, Any] = {}
    if config.model is not None:
        updates["model"] = config.model.model_copy(update={"package": fix(config.model.package)})
    if config.record is not None:
        updates["record"] = config.record.model_copy(update={"path": fix(config.record.path)})
    if config.results is not None:
        updates["results"] = config.results.model_copy(update={"dir": fix(config.results.dir)})
    return config.model_copy(update=updates)
