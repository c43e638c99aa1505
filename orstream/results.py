"""What the models concluded about a frame: the one result vocabulary of orstream.

The runtime produces a :class:`FrameResult` per inferred frame; the overlay draws it, the gRPC
API streams it, the recorder and the PitVis results writer store it. Conversion to and from
protobuf lives in ``orstream.proto.convert`` only.
"""

from __future__ import annotations

from dataclasses import dataclass

from orstream.labels import INSTRUMENTS, OUT_OF_PATIENT, STEPS
from orstream.segmentation.mask_rle import MaskRle

KINDS: tuple[str, ...] = ("step", "instruments", "segmentation", "zeroshot_step")
"""Result kinds a client can filter on."""

DEFAULT_KINDS: tuple[str, ...] = ("step", "instruments", "zeroshot_step")
"""The kinds a subscriber gets when it names none: masks are large, so segmentation goes only to
clients that ask for it."""


def step_name(code: int) -> str:
    """Readable name of a PitVis step code (``out_of_patient`` for -1)."""
    return "out_of_patient" if code == OUT_OF_PATIENT else STEPS[code]


@dataclass(frozen=True)
class StepResult:
    """The current surgical step of a stream.

    Attributes:
        code: PitVis step code (1..14, or -1 out of patient), after online smoothing.
        confidence: the model's probability of that step on this frame (0..1).
        out_of_patient: the model's probability, on this frame alone (not smoothed), that the
            view is out of patient (0..1): the privacy gate closes on it at once, where the
            smoothed step follows a brief moment out of patient late or not at all.
    """

    code: int
    confidence: float
    out_of_patient: float = 0.0

    def __post_init__(self) -> None:
        for name in ("confidence", "out_of_patient"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"a step's {name} must be a probability (0..1), not {value}")

    @property
    def name(self) -> str:
        return step_name(self.code)


@dataclass(frozen=True)
class ZeroShotStepResult:
    """The step a video-text model names for the clip a frame ends, with no step training: the
    step whose text prompt is nearest the clip. Kept apart from the recognizer's step.

    Attributes:
        code: PitVis step code (1..14, or -1 out of patient), after online smoothing.
        confidence: its probability over the prompts on this frame (0..1).
        prompt: the text of that step's prompt in force.
    """

    code: int
    confidence: float
    prompt: str

    def __post_init__(self) -> None:
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(
                f"a zero-shot step's confidence must be a probability (0..1), not {self.confidence}"
            )
        if self.code != OUT_OF_PATIENT and self.code not in STEPS:
            raise ValueError(f"no PitVis step has code {self.code}")

    @property
    def name(self) -> str:
        return step_name(self.code)


@dataclass(frozen=True)
class InstrumentResult:
    """The instruments a frame shows.

    Attributes:
        slots: the PitVis ``(int_instrument1, int_instrument2)`` codes of the frame.
        present: ``(code, probability)`` of every instrument class (1..18) above the package's
            threshold, most probable first.
    """

    slots: tuple[int, int]
    present: tuple[tuple[int, float], ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(INSTRUMENTS[code] for code, _ in self.present)


@dataclass(frozen=True)
class SegmentMask:
    """One segmented object of a frame.

    Attributes:
        code: segmentation class code (``orstream.labels.SEGMENTATION_CLASSES``: instrument
            1..18, anatomy above 100), or 0 for an object prompted by clicks or a box alone.
        name: the class name ("" for code 0).
        score: how sure the models are (0..1): for a live instrument mask the instrument
            classifier's probability of its name, otherwise the segmenter's predicted IoU.
        mask: the object's pixels at the frame's full resolution.
        box: (x0, y0, x1, y1) tight pixel bounds of the mask, x1 and y1 exclusive; all 0 for an
            empty mask.
    """

    code: int
    name: str
    score: float
    mask: MaskRle
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class SegmentationResult:
    """The objects segmented on a frame, most confident first."""

    masks: tuple[SegmentMask, ...]

    def instruments(self) -> dict[int, float]:
        """Instrument code -> the best score of its masks, for the instruments masked (codes
        1..18; anatomy and unnamed objects left out)."""
        named: dict[int, float] = {}
        for mask in self.masks:
            if mask.code in INSTRUMENTS:
                named[mask.code] = max(named.get(mask.code, 0.0), mask.score)
        return named


@dataclass(frozen=True)
class FrameResult:
    """Everything inferred on one frame of one stream.

    Attributes:
        stream_id: the frame's stream.
        index: the frame's index in its stream.
        pts_ns: the frame's source timestamp.
        capture_ns: ``time.monotonic_ns()`` when the frame entered orstream.
        produced_ns: ``time.monotonic_ns()`` when this result was complete.
        models: ``name@version`` of every model that contributed.
        step: the step result, when a workflow model ran on the frame.
        instruments: the instrument result, when a workflow model ran on the frame.
        segmentation: the masks, when a segmenter ran on the frame.
        zeroshot_step: the video-text model's step, when it ran on the frame.
        stale: set when a consumer shows this result on a later frame after it aged past the
            consumer's limit.
    """

    stream_id: str
    index: int
    pts_ns: int
    capture_ns: int
    produced_ns: int
    models: tuple[str, ...]
    step: StepResult | None = None
    instruments: InstrumentResult | None = None
    segmentation: SegmentationResult | None = None
    zeroshot_step: ZeroShotStepResult | None = None
    stale: bool = False

    @property
    def latency_ms(self) -> float:
        """Frame-to-result latency: from the frame's capture to this result."""
        return (self.produced_ns - self.capture_ns) / 1e6

    @property
    def kinds(self) -> tuple[str, ...]:
        """The result kinds this frame carries."""
        present = {
            "step": self.step,
            "instruments": self.instruments,
            "segmentation": self.segmentation,
            "zeroshot_step": self.zeroshot_step,
        }
        return tuple(kind for kind in KINDS if present[kind] is not None)
