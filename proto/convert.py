"""Conversion between orstream's core result types and their ``orstream.v1`` messages.

The only place that knows both sides: servers send what these functions make, clients read
results back into the core types. Messages carry readable names beside the PitVis codes for
clients in other languages; reading a message back uses the codes only.
"""

from __future__ import annotations

from orstream.labels import INSTRUMENTS
from orstream.latency import LatencySummary
from orstream.mask_rle import MaskRle
from orstream.proto.orstream.v1 import edge_pb2, results_pb2
from orstream.results import (
    FrameResult,
    InstrumentResult,
    SegmentationResult,
    SegmentMask,
    StepResult,
    step_name,
)
from orstream.step_timeline import StepSegment


def result_to_proto(result: FrameResult) -> results_pb2.FrameResult:
    """The message of a frame result."""
    message = results_pb2.FrameResult(
        stream_id=result.stream_id,
        index=result.index,
        pts_ns=result.pts_ns,
        capture_ns=result.capture_ns,
        produced_ns=result.produced_ns,
        models=result.models,
        stale=result.stale,
    )
    if result.step is not None:
        message.step.CopyFrom(
            results_pb2.StepResult(
                code=result.step.code, name=result.step.name, confidence=result.step.confidence
            )
        )
    if result.instruments is not None:
        slot1, slot2 = result.instruments.slots
        message.instruments.CopyFrom(
            results_pb2.InstrumentResult(
                slot1=slot1,
                slot2=slot2,
                present=[
                    results_pb2.InstrumentPresence(
                        code=code, name=INSTRUMENTS[code], probability=probability
                    )
                    for code, probability in result.instruments.present
                ],
            )
        )
    if result.segmentation is not None:
        message.segmentation.CopyFrom(
            results_pb2.SegmentationResult(
                masks=[segment_mask_to_proto(mask) for mask in result.segmentation.masks]
            )
        )
    return message


def result_from_proto(message: results_pb2.FrameResult) -> FrameResult:
    """The frame result a message carries."""
    step = None
    if message.HasField("step"):
        step = StepResult(code=message.step.code, confidence=message.step.confidence)
    instruments = None
    if message.HasField("instruments"):
        instruments = InstrumentResult(
            slots=(message.instruments.slot1, message.instruments.slot2),
            present=tuple((p.code, p.probability) for p in message.instruments.present),
        )
    segmentation = None
    if message.HasField("segmentation"):
        segmentation = SegmentationResult(
            tuple(segment_mask_from_proto(mask) for mask in message.segmentation.masks)
        )
    return FrameResult(
        stream_id=message.stream_id,
        index=message.index,
        pts_ns=message.pts_ns,
        capture_ns=message.capture_ns,
        produced_ns=message.produced_ns,
        models=tuple(message.models),
        step=step,
        instruments=instruments,
        segmentation=segmentation,
        stale=message.stale,
    )


def segment_mask_to_proto(mask: SegmentMask) -> results_pb2.SegmentMask:
    """The message of one segmented object."""
    x0, y0, x1, y1 = mask.box
    return results_pb2.SegmentMask(
        code=mask.code,
        name=mask.name,
        score=mask.score,
        mask=results_pb2.MaskRle(
            height=mask.mask.height, width=mask.mask.width, counts=mask.mask.counts
        ),
        x0=x0,
        y0=y0,
        x1=x1,
        y1=y1,
    )


def segment_mask_from_proto(message: results_pb2.SegmentMask) -> SegmentMask:
    """The segmented object a message carries.

    Raises:
        OrstreamError: the runs do not cover the mask (a corrupt message).
    """
    rle = MaskRle(message.mask.height, message.mask.width, tuple(message.mask.counts))
    return SegmentMask(
        code=message.code,
        name=message.name,
        score=message.score,
        mask=rle,
        box=(message.x0, message.y0, message.x1, message.y1),
    )


def segment_to_proto(segment: StepSegment) -> results_pb2.StepSegment:
    """The message of a step segment."""
    return results_pb2.StepSegment(
        code=segment.code,
        name=step_name(segment.code),
        start_index=segment.start_index,
        end_index=segment.end_index,
        start_pts_ns=segment.start_pts_ns,
        end_pts_ns=segment.end_pts_ns,
    )


def segment_from_proto(message: results_pb2.StepSegment) -> StepSegment:
    """The step segment a message carries."""
    return StepSegment(
        code=message.code,
        start_index=message.start_index,
        end_index=message.end_index,
        start_pts_ns=message.start_pts_ns,
        end_pts_ns=message.end_pts_ns,
    )


def latency_to_proto(summary: LatencySummary) -> edge_pb2.LatencySummary:
    """The message of a latency summary."""
    return edge_pb2.LatencySummary(
        count=summary.count,
        p50_ms=summary.p50,
        p99_ms=summary.p99,
        p999_ms=summary.p999,
        max_ms=summary.max,
    )


def latency_from_proto(message: edge_pb2.LatencySummary) -> LatencySummary:
    """A latency summary read back from its message."""
    return LatencySummary(
        message.count, message.p50_ms, message.p99_ms, message.p999_ms, message.max_ms
    )
