"""A snapshot of a running edge runtime, as ``GetStatus``, the bench and the client report it.

The runtime makes these; ``orstream.proto.convert`` carries them over gRPC and a client reads
them back, so they live in the core, where the edge, the proto conversion and the clients all
reach them. Counts, rates and times are never negative: a snapshot that says otherwise is a bug
and is refused when made.
"""

from __future__ import annotations

from dataclasses import dataclass

from orstream.latency import LatencySummary


def stream_health_name(stream_id: str) -> str:
    """The ``grpc.health.v1`` service name of one stream of an edge runtime: ``stream/<id>``
    (SERVING while its source delivers)."""
    return f"stream/{stream_id}"


@dataclass(frozen=True)
class SourceStatus:
    """One input stream.

    Attributes:
        stream_id: the stream's id.
        uri: where its frames come from.
        state: ``starting``, ``playing``, ``stalled`` (a live feed without frames for a
            moment), ``reconnecting`` (its feed was lost; it is being opened again), ``ended``
            (the source's end), ``interrupted`` (the run was stopped first) or ``failed``.
        fps: frames per second delivered over the last few seconds (0 unless playing).
        frames_in: frames the source delivered so far.
        error: why it failed, or why its feed is down (empty while it plays).
        reconnects: times its feed came back after a loss.
    """

    stream_id: str
    uri: str
    state: str
    fps: float
    frames_in: int
    error: str = ""
    reconnects: int = 0

    def __post_init__(self) -> None:
        _not_negative(self, "fps", "frames_in", "reconnects")

    @property
    def up(self) -> bool:
        """The stream is delivering (or about to deliver its first) frames."""
        return self.state in ("starting", "playing")


@dataclass(frozen=True)
class ModelStatus:
    """One model running on a stream.

    Attributes:
        name: package name.
        version: package version.
        stream_id: the stream it runs on.
        backend: the backend that runs it (e.g. ``onnxruntime-cpu``).
        rate_hz: frames per second it is asked to infer.
        state: ``loading``, ``serving`` or ``failed``.
        inferred: frames it inferred so far.
        error: why it failed (empty unless ``state`` is ``failed``).
        backend_reason: why this backend: the backend selection's line, naming each more
            wanted backend and why it was not taken (``tensorrt:cuda: ...; torch:cuda: ...``).
    """

    name: str
    version: str
    stream_id: str
    backend: str
    rate_hz: float
    state: str
    inferred: int
    error: str = ""
    backend_reason: str = ""

    def __post_init__(self) -> None:
        _not_negative(self, "rate_hz", "inferred")


@dataclass(frozen=True)
class StageStatus:
    """One runtime stage: how long it takes per item and what its input port dropped.

    Attributes:
        name: stage name (e.g. ``inference.phantom``, ``overlay``, ``record``).
        latency: time spent per item in the stage.
        processed: items the stage handled.
        dropped: items its input port dropped under its drop policy.
        state: ``ready``, ``running``, ``finished`` or ``failed`` (a failed sink was closed;
            the video went on without it).
        error: why it failed (empty unless failed).
    """

    name: str
    latency: LatencySummary
    processed: int
    dropped: int
    state: str = ""
    error: str = ""

    def __post_init__(self) -> None:
        _not_negative(self, "processed", "dropped")


@dataclass(frozen=True)
class RuntimeStatus:
    """Everything ``GetStatus`` reports.

    Attributes:
        sources: the input streams.
        models: the models per stream.
        stages: the runtime's stages, in pipeline order.
        frame_to_result: latency from a frame's capture to its result, all streams.
        video_frames_in: frames the sources delivered.
        video_frames_out: frames that left the video path (reached the sinks).
        uptime_s: seconds since the runtime started.
    """

    sources: tuple[SourceStatus, ...]
    models: tuple[ModelStatus, ...]
    stages: tuple[StageStatus, ...]
    frame_to_result: LatencySummary
    video_frames_in: int
    video_frames_out: int
    uptime_s: float

    def __post_init__(self) -> None:
        _not_negative(self, "video_frames_in", "video_frames_out", "uptime_s")


def _not_negative(status: object, *fields: str) -> None:
    """ValueError naming the first of ``fields`` that is negative or not a number."""
    for name in fields:
        value = getattr(status, name)
        if not value >= 0:  # also refuses NaN
            raise ValueError(f"{type(status).__name__}.{name} must be 0 or more, got {value}")
