"""``edge.yaml``: the typed configuration of ``orstream edge run``, one section per stage.

Every section is strict: an unknown key is an error naming the key, so a typo never runs
silently with a default. One stream (``source:``) or several (``sources:``), each with its own
id; every stream has its own video path, overlay, sinks and results, and the models serve them
all. ``record.path`` and ``results.dir`` take a ``{stream}`` placeholder; with several streams
and none given, each stream gets its own file (``or3-endo.mp4``) or folder (``results/endo``)
beside the path given. Example::

    sources:
      - {uri: "rtsp://192.168.1.20:8554/endoscope", stream_id: endo}
      - {uri: "rtsp://192.168.1.21:8554/exoscope", stream_id: exo}
    model:
      package: /opt/orstream/packages/pitvis_workflow
      backends: [tensorrt:cuda, torch:cuda, onnxruntime]   # the default
    segmentation:
      package: /opt/orstream/packages/imis_segmenter
      classifier: /opt/orstream/packages/instrument_classifier
      rate_hz: 2
    videotext:
      package: /opt/orstream/packages/ophclip
    overlay:
      stale_after_ms: 250
    record:
      path: /data/or3-{stream}.mp4
    rtsp:
      port: 8554
    grpc:
      address: 127.0.0.1:50051
    results:
      dir: /data/or3-results/{stream}
    server:                          # hand-offs to a job server (orstream server run)
      address: 10.0.0.5:50061
      tls_ca: /etc/orstream/ca.pem
      token_file: /etc/orstream/server.token
      outbox: /var/lib/orstream/outbox
      handoffs:
        - {kind: probe, every_s: 300, seconds: 30, streams: [endo]}
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from orstream.access.exposure import exposure_problem, is_loopback
from orstream.edge.backends import parse_device, parse_preference
from orstream.errors import OrstreamError, describe_validation_error
from orstream.jobs import JobSubmission
from orstream.streams.sinks.recording import Rotation
from orstream.streams.sources.reconnecting import Backoff

if TYPE_CHECKING:
    from orstream.streams.sinks.display import DisplaySettings

DEFAULT_GRPC_ADDRESS = "127.0.0.1:50051"
STREAM_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")
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


class ReconnectConfig(_Section):
    """How a feed (RTSP, UDP, V4L2) that is lost is opened again; files end at their end."""

    enabled: bool = True
    initial_s: float = Field(default=1.0, gt=0, description="wait before the first try")
    factor: float = Field(default=1.6, ge=1, description="each wait is this many times the last")
    max_s: float = Field(default=30.0, gt=0, description="no wait is longer")
    attempts: int | None = Field(
        default=None, ge=1, description="failed tries in a row before giving up (null: never)"
    )
    stall_s: float = Field(
        default=3.0, gt=0, description="a connected feed silent this long is reopened"
    )

    def backoff(self) -> Backoff | None:
        if not self.enabled:
            return None
        try:
            return Backoff(
                self.initial_s, self.factor, self.max_s, 0.2, self.attempts, self.stall_s
            )
        except OrstreamError as error:
            raise ValueError(str(error)) from None

    @model_validator(mode="after")
    def _consistent(self) -> ReconnectConfig:
        self.backoff()
        return self


class SourceConfig(_Section):
    """One stream: where its frames come from and its id (in results, gRPC and file names)."""

    uri: str = Field(min_length=1)
    stream_id: str | None = Field(
        default=None,
        description="id of the stream (default cam0, or camN for the Nth of several)",
    )
    realtime: bool = Field(
        default=False, description="play files at their own frame rate instead of flat out"
    )
    reconnect: ReconnectConfig = ReconnectConfig()
    stalled_after_ms: float = Field(
        default=1000.0,
        gt=0,
        description="a live stream without a frame this long shows as stalled (NO SIGNAL)",
    )

    @field_validator("stream_id")
    @classmethod
    def _valid_id(cls, stream_id: str | None) -> str | None:
        if stream_id is not None:
            check_stream_id(stream_id)
        return stream_id


def check_stream_id(stream_id: str) -> str:
    """A stream id names files, folders and RTSP paths: letters, digits, ``.``, ``_``, ``-``.

    Raises:
        ValueError: naming what is wrong (at most the first 64 characters of the id).
    """
    if not STREAM_ID.fullmatch(stream_id):
        shown = stream_id[:64] + ("..." if len(stream_id) > 64 else "")
        raise ValueError(
            f"stream id {shown!r} must be 1 to 64 letters, digits, '.', '_' or '-' "
            "(it names files, folders and RTSP paths)"
        )
    return stream_id


def per_stream(
    template: str, stream_id: str, several: bool, kind: Literal["file", "folder"]
) -> str:
    """A path for one stream: ``{stream}`` filled in; with several streams and no placeholder,
    a file ``name-<stream>.ext`` beside ``template``, or a folder ``template/<stream>``."""
    if "{stream}" in template:
        return template.replace("{stream}", stream_id)
    if not several:
        return template
    path = Path(template)
    if kind == "folder":
        return str(path / stream_id)
    return str(path.with_name(f"{path.stem}-{stream_id}{path.suffix}"))


def _check_placeholders(template: str, field: str) -> None:
    for _, name, _, _ in string.Formatter().parse(template.replace("{{", "").replace("}}", "")):
        if name is not None and name != "stream":
            raise ValueError(f"{field}: unknown placeholder {{{name}}} (known: {{stream}})")


class ModelConfig(_BackendChoice):
    package: Path
    rate_hz: float | None = Field(default=None, gt=0)
    port: PortConfig = PortConfig(capacity=1)
    instruments: Literal["auto", "masks", "recognizer"] = Field(
        default="auto",
        description="what names the instruments of the recognizer's results: the segmenter's "
        "masks named by the segmentation section's classifier (masks), the recognizer's own "
        "head (recognizer), or masks whenever that classifier is configured (auto)",
    )


class SegmentationConfig(_BackendChoice):
    """Live masks on the feed and ``Prompt`` over gRPC; the encoder and the decoder each run
    on the first backend of ``backends`` that works for them."""

    package: Path
    rate_hz: float | None = Field(
        default=None, gt=0, description="frames per second to segment (default: the card's)"
    )
    classifier: Path | None = Field(
        default=None,
        description="instrument classifier package naming the instruments found (without one "
        "no instrument mask is shown, only anatomy)",
    )
    classes: tuple[str, ...] | None = Field(
        default=None, description="class names to show (default: every class the models know)"
    )
    min_score: float = Field(default=0.5, ge=0, le=1, description="smallest predicted IoU shown")
    min_confidence: float = Field(
        default=0.4,
        ge=0,
        le=1,
        description="smallest classifier probability of an instrument's name that is shown",
    )
    keep_frames: int = Field(default=30, ge=1, description="recent frames kept for prompts")
    keep_embeddings: int = Field(
        default=16, ge=1, description="image embeddings of segmented frames kept for prompts"
    )


class VideoTextConfig(_BackendChoice):
    """Zero-shot steps, ``Search`` and ``SetPrompts`` over gRPC from a video-text package; its
    clip encoder and text encoder each run on the first backend of ``backends`` that works."""

    package: Path
    rate_hz: float | None = Field(
        default=None, gt=0, description="frames per second to embed (default: the card's)"
    )
    keep_s: float = Field(
        default=3600.0, gt=0, description="seconds of each stream's clips kept for Search"
    )


class OverlayConfig(_Section):
    enabled: bool = True
    stale_after_ms: float = Field(default=250.0, ge=0)
    no_signal_after_ms: float = Field(default=1000.0, gt=0)
    port: PortConfig = PortConfig(capacity=24)


class RecordConfig(_Section):
    """The overlay video as MP4 segments (``orstream.streams.sinks.recording``): a new segment
    on a frame-size change and, optionally, by duration or size, keeping at most ``max_files``;
    recording stops cleanly below ``min_free_mb`` of free space."""

    path: Path
    segment_s: float | None = Field(default=None, gt=0, description="segment length (s)")
    segment_mb: float | None = Field(default=None, gt=0, description="segment size (MB)")
    max_files: int | None = Field(default=None, ge=1, description="segments kept (oldest go)")
    min_free_mb: float = Field(default=500.0, ge=0, description="stop below this free space")

    def rotation(self) -> Rotation:
        return Rotation(self.segment_s, self.segment_mb, self.max_files, self.min_free_mb)

    @field_validator("path")
    @classmethod
    def _placeholders(cls, path: Path) -> Path:
        _check_placeholders(str(path), "record.path")
        return path


class RtspConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8554, ge=0, le=65535)
    path: str = "/live"


class DisplayConfig(_Section):
    """The overlay video on a local monitor (see ``orstream.streams.sinks.display``)."""

    enabled: bool = False
    fullscreen: bool = Field(
        default=False, description="cover the monitor, the picture letterboxed to it"
    )
    monitor: int | None = Field(
        default=None,
        ge=0,
        description="monitor number, as the window system lists them (xrandr --listmonitors); "
        "default: the primary monitor",
    )

    @model_validator(mode="after")
    def _enabled_when_set(self) -> DisplayConfig:
        if not self.enabled and (self.fullscreen or self.monitor is not None):
            raise ValueError("fullscreen and monitor need enabled: true")
        return self

    @classmethod
    def from_spec(cls, spec: str) -> DisplayConfig:
        """The section ``--display SPEC`` asks for: ``window`` (the default), ``fullscreen``,
        either with ``:N`` for monitor N, or a bare ``N`` (full screen on monitor N).

        Raises:
            OrstreamError: SPEC is none of these.
        """
        mode, _, number = spec.partition(":")
        if mode.isdecimal() and not number:
            mode, number = "fullscreen", mode
        if mode not in ("window", "fullscreen") or (number and not number.isdecimal()):
            raise OrstreamError(
                f"--display {spec!r}: expected window, fullscreen, window:N, fullscreen:N "
                "or N (a monitor number)"
            )
        monitor = int(number) if number else None
        return cls(enabled=True, fullscreen=mode == "fullscreen", monitor=monitor)

    def settings(self) -> DisplaySettings:
        """What the display sink is given."""
        # Imported here: the display pulls in GStreamer, which a config without one never needs.
        from orstream.streams.sinks.display import DisplaySettings

        return DisplaySettings(fullscreen=self.fullscreen, monitor=self.monitor)


class GrpcConfig(_Section):
    enabled: bool = True
    address: str = DEFAULT_GRPC_ADDRESS
    reflection: bool = False
    max_message_mb: float = Field(default=4.0, gt=0)
    drain_s: float = Field(default=2.0, ge=0)
    max_prompts: int = Field(
        default=2, ge=1, le=3, description="Prompt calls worked on at once; more are refused"
    )
    max_subscribers_per_client: int = Field(
        default=4,
        ge=1,
        le=16,
        description="Subscribe streams one client (token, or host without tokens) may hold",
    )
    tokens: Path | None = Field(
        default=None,
        description="tokens file (orstream tokens add): every call but health then needs a "
        "bearer token of the role its method needs",
    )
    tls_cert: Path | None = Field(default=None, description="server certificate chain (PEM)")
    tls_key: Path | None = Field(default=None, description="the certificate's private key (PEM)")
    tls_client_ca: Path | None = Field(
        default=None, description="CA certificates (PEM) clients must present a certificate of"
    )
    insecure: bool = Field(
        default=False,
        description="serve a non-loopback address without TLS and tokens (logged as a warning)",
    )

    @model_validator(mode="after")
    def _safe(self) -> GrpcConfig:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("grpc: give tls_cert and tls_key together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ValueError("grpc: tls_client_ca needs tls_cert and tls_key")
        problem = exposure_problem(
            self.address,
            tls=self.tls_cert is not None,
            tokens=self.tokens is not None,
            insecure=self.insecure,
        )
        if self.enabled and problem is not None:
            raise ValueError(problem)
        return self


class IceServerConfig(_Section):
    """A STUN or TURN server browsers and the edge may use to reach each other (none on a LAN,
    where the two see each other's addresses directly)."""

    urls: tuple[str, ...] = Field(min_length=1, description="e.g. stun:stun.example.org:3478")
    username: str | None = None
    credential: str | None = None


class WebConfig(_Section):
    """The OR dashboard in the browser (``orstream.edge.web``): the overlay video over WebRTC
    and the runtime's state. It takes the gRPC section's tokens and certificate, so the page
    and the API admit the same people; like gRPC, an address other than loopback needs both
    unless ``insecure``."""

    address: str = Field(description="HOST:PORT to serve the page on, e.g. 0.0.0.0:8080")
    ice_servers: tuple[IceServerConfig, ...] = Field(
        default=(), description="STUN/TURN servers (none: browsers on the edge's own network)"
    )
    max_viewers: int = Field(
        default=4, ge=1, le=32, description="video connections at once (each encodes its own)"
    )
    insecure: bool = Field(
        default=False,
        description="serve a non-loopback address without TLS and tokens (logged as a warning)",
    )
    latency_stamps: Path | None = Field(
        default=None,
        description="measure glass-to-glass latency: stamp a frame counter into every source "
        "frame (bottom left) and append each counter's capture time to this file "
        "(orstream bench dashboard reads both); off by default",
    )


class PrivacyConfig(_Section):
    """The privacy gate (``orstream.edge.overlay.privacy``): frames out of patient, or with no
    fresh result, are withheld from the recording and the RTSP output."""

    mode: Literal["blank", "blur"] = "blank"
    delay_s: float = Field(
        default=2.0,
        gt=0,
        le=10,
        description="how long a leaving frame may wait for the result after it (the recording "
        "and RTSP are this far behind the display)",
    )


class AuditConfig(_Section):
    """The audit log (``orstream.edge.service.audit``)."""

    path: Path = Field(description="JSON lines file the audit log is appended to")


class MetricsConfig(_Section):
    """Prometheus metrics served over HTTP (``orstream.edge.service.metrics``)."""

    address: str = Field(description="HOST:PORT to serve /metrics on, e.g. 127.0.0.1:9108")


class ResultsConfig(_Section):
    dir: Path
    video: int | None = Field(
        default=None, ge=0, description="PitVis video number (default: from the source name)"
    )

    @field_validator("dir")
    @classmethod
    def _placeholders(cls, folder: Path) -> Path:
        _check_placeholders(str(folder), "results.dir")
        return folder


def default_outbox() -> Path:
    """Where the outbox lives unless configured: the user's state folder, the same whatever
    folder the edge is started from (an outbox found again is what survives a restart)."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "orstream" / "outbox"


class RetryConfig(_Section):
    """Waits between tries to send a hand-off: exponential, with jitter, capped; sending never
    gives up (a server away for days is waited out)."""

    initial_s: float = Field(default=1.0, gt=0, description="wait after the first failure")
    factor: float = Field(default=2.0, ge=1, description="each wait is this many times the last")
    max_s: float = Field(default=60.0, gt=0, description="no wait is longer")
    jitter: float = Field(default=0.3, ge=0, lt=1, description="each wait spread by this share")

    @model_validator(mode="after")
    def _consistent(self) -> RetryConfig:
        if self.max_s < self.initial_s:
            raise ValueError("retry: max_s must be at least initial_s")
        return self


class HandOffRuleConfig(_Section):
    """An automatic hand-off: every ``every_s`` seconds of a stream, its last ``seconds``."""

    kind: str = Field(description="the server job kind, e.g. probe")
    every_s: float = Field(gt=0, description="stream seconds between hand-offs")
    seconds: float = Field(gt=0, description="stream seconds handed off each time")
    streams: tuple[str, ...] = Field(default=(), description="these streams (default: all)")
    params: dict[str, str] = Field(default_factory=dict, description="the kind's parameters")

    @model_validator(mode="after")
    def _a_job(self) -> HandOffRuleConfig:
        try:
            JobSubmission(self.kind, "check", (), self.params)
        except OrstreamError as error:
            raise ValueError(str(error)) from None
        return self


class ServerConfig(_Section):
    """Hand-offs to the server tier's job service through the edge's durable outbox
    (``orstream.edge.outbox``): from gRPC clients (``HandOff``) and automatic ones."""

    address: str = Field(description="the job server's HOST:PORT")
    token_file: Path | None = Field(
        default=None, description="file holding the bearer token (operator role) to call with"
    )
    tls_ca: Path | None = Field(default=None, description="connect over TLS, trusting this CA")
    insecure: bool = Field(
        default=False,
        description="send clips to a non-loopback server without TLS (patient video in the clear)",
    )
    outbox: Path = Field(default_factory=default_outbox, description="the outbox folder")
    max_items: int = Field(default=100, ge=1, description="hand-offs waiting or running at most")
    max_mb: float = Field(default=1024.0, gt=0, description="MB of their clips at most")
    keep_finished: int = Field(default=1000, ge=0, description="finished items kept for listing")
    clip_fps: float = Field(default=10.0, gt=0, le=60, description="clip frames per second")
    max_clip_s: float = Field(
        default=60.0,
        gt=0,
        le=600,
        description="stream seconds kept for clips, the longest hand-off (held in memory as "
        "JPEGs: about 1.8 MB a second of 1080p phantom video at 10 fps, per stream)",
    )
    default_clip_s: float = Field(default=10.0, gt=0, description="seconds when none are asked")
    max_in_flight: int = Field(default=4, ge=1, le=64, description="items sent at once")
    connect_timeout_s: float = Field(default=5.0, gt=0, description="wait to reach the server")
    keepalive_s: float = Field(
        default=10.0,
        ge=1,
        description="ping the server this often; one unanswered as long means it is gone",
    )
    retry: RetryConfig = RetryConfig()
    handoffs: tuple[HandOffRuleConfig, ...] = ()

    @model_validator(mode="after")
    def _safe(self) -> ServerConfig:
        if self.tls_ca is None and not self.insecure and not is_loopback(self.address):
            raise ValueError(
                f"server: {self.address} is another machine: give tls_ca (--server-tls-ca), "
                "or insecure: true (--server-insecure) to send patient video in the clear"
            )
        if self.default_clip_s > self.max_clip_s:
            raise ValueError("server: default_clip_s must be at most max_clip_s")
        for rule in self.handoffs:
            if rule.seconds > self.max_clip_s:
                raise ValueError(
                    f"server: a {rule.kind} hand-off of {rule.seconds:g} s is longer than "
                    f"max_clip_s ({self.max_clip_s:g})"
                )
        return self


class EdgeConfig(_Section):
    source: SourceConfig | None = None
    sources: tuple[SourceConfig, ...] = ()
    model: ModelConfig | None = None
    segmentation: SegmentationConfig | None = None
    videotext: VideoTextConfig | None = None
    overlay: OverlayConfig = OverlayConfig()
    record: RecordConfig | None = None
    rtsp: RtspConfig | None = None
    display: DisplayConfig = DisplayConfig()
    grpc: GrpcConfig = GrpcConfig()
    metrics: MetricsConfig | None = None
    web: WebConfig | None = None
    audit: AuditConfig | None = None
    privacy: PrivacyConfig | None = None
    results: ResultsConfig | None = None
    server: ServerConfig | None = None

    @model_validator(mode="after")
    def _handoffs_have_what_they_need(self) -> EdgeConfig:
        if self.server is None:
            return self
        if self.model is None:
            raise ValueError(
                "server needs a recognizer (model:): only frames it judges in patient may "
                "leave the edge"
            )
        ids = {str(stream.stream_id) for stream in self.streams}
        for rule in self.server.handoffs:
            unknown = sorted(set(rule.streams) - ids)
            if unknown:
                raise ValueError(f"server: a hand-off names stream {unknown[0]!r}, not run here")
        return self

    @model_validator(mode="after")
    def _web_is_protected(self) -> EdgeConfig:
        if self.web is None:
            return self
        problem = exposure_problem(
            self.web.address,
            tls=self.grpc.tls_cert is not None,
            tokens=self.grpc.tokens is not None,
            insecure=self.web.insecure,
        )
        if problem is not None:
            raise ValueError("web: " + problem.replace("grpc address", "address"))
        return self

    @model_validator(mode="after")
    def _mask_instruments_have_what_they_need(self) -> EdgeConfig:
        wanted = self.model is not None and self.model.instruments == "masks"
        if wanted and (self.segmentation is None or self.segmentation.classifier is None):
            raise ValueError(
                "model: instruments: masks needs a segmentation section with a classifier "
                "(the segmenter finds the instruments, the classifier names them)"
            )
        return self

    @property
    def mask_instruments(self) -> bool:
        """Whether the recognizer's instruments come from segmenter masks."""
        if self.model is None or self.model.instruments == "recognizer":
            return False
        return self.segmentation is not None and self.segmentation.classifier is not None

    @model_validator(mode="after")
    def _privacy_has_what_it_needs(self) -> EdgeConfig:
        if self.privacy is not None and (self.model is None or not self.overlay.enabled):
            raise ValueError(
                "privacy needs a recognizer (model:) to tell out-of-patient frames, and the "
                "overlay, which withholds them"
            )
        return self

    @model_validator(mode="after")
    def _one_way_to_give_streams(self) -> EdgeConfig:
        if (self.source is None) == (not self.sources):
            raise ValueError("give the streams as either source: (one) or sources: (a list)")
        ids = [str(stream.stream_id) for stream in self.streams]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"two streams with the same id {duplicates[0]!r}; give each its own")
        return self

    @property
    def streams(self) -> tuple[SourceConfig, ...]:
        """Every stream, each with its id filled in (cam0 alone; camN for the Nth of several)."""
        given = (self.source,) if self.source is not None else self.sources
        return tuple(
            stream.model_copy(update={"stream_id": stream.stream_id or f"cam{index}"})
            for index, stream in enumerate(given)
        )


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
    if config.videotext is not None:
        videotext = config.videotext
        updates["videotext"] = videotext.model_copy(update={"package": fix(videotext.package)})
    if config.audit is not None:
        updates["audit"] = config.audit.model_copy(update={"path": fix(config.audit.path)})
    if config.segmentation is not None:
        segmentation = config.segmentation
        classifier = segmentation.classifier
        updates["segmentation"] = segmentation.model_copy(
            update={
                "package": fix(segmentation.package),
                "classifier": None if classifier is None else fix(classifier),
            }
        )
    if config.server is not None:
        server = config.server
        updates["server"] = server.model_copy(
            update={
                "outbox": fix(server.outbox),
                "token_file": None if server.token_file is None else fix(server.token_file),
                "tls_ca": None if server.tls_ca is None else fix(server.tls_ca),
            }
        )
    files = ("tokens", "tls_cert", "tls_key", "tls_client_ca")
    updates["grpc"] = config.grpc.model_copy(
        update={
            name: fix(getattr(config.grpc, name))
            for name in files
            if getattr(config.grpc, name) is not None
        }
    )
    return config.model_copy(update=updates)
