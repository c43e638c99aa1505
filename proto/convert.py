"""Conversion between orstream's core types and their ``orstream.v1`` messages.

The only place that knows both sides: servers answer with what these functions make from domain
types and read requests back into them; clients build requests here and read the answers back
into the core types, so neither spells a message field by field. Messages carry readable names
beside the PitVis codes for clients in other languages; reading a message back uses the codes
only. Prompt coordinates travel as float32.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from orstream.handoffs import AnswerPiece, AskRequest, HandOffItem, HandOffRequest
from orstream.jobs import PartialResult
from orstream.labels import INSTRUMENTS
from orstream.latency import LatencySummary
from orstream.proto.orstream.v1 import edge_pb2, results_pb2
from orstream.results import (
    FrameResult,
    InstrumentResult,
    SegmentationResult,
    SegmentMask,
    StepResult,
    ZeroShotStepResult,
    step_name,
)
from orstream.segmentation.mask_rle import MaskRle
from orstream.segmentation.prompts import Prompt, PromptAnswer, PromptRequest
from orstream.status import ModelStatus, RuntimeStatus, SourceStatus, StageStatus
from orstream.step_timeline import StepSegment
from orstream.video_search import (
    DEFAULT_LIMIT,
    PromptChange,
    SearchAnswer,
    SearchMoment,
    SearchRequest,
)


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
                code=result.step.code,
                name=result.step.name,
                confidence=result.step.confidence,
                out_of_patient=result.step.out_of_patient,
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
    if result.zeroshot_step is not None:
        zeroshot = result.zeroshot_step
        message.zeroshot_step.CopyFrom(
            results_pb2.ZeroShotStepResult(
                code=zeroshot.code,
                name=zeroshot.name,
                confidence=zeroshot.confidence,
                prompt=zeroshot.prompt,
            )
        )
    return message


def result_from_proto(message: results_pb2.FrameResult) -> FrameResult:
    """The frame result a message carries."""
    step = None
    if message.HasField("step"):
        step = StepResult(
            code=message.step.code,
            confidence=message.step.confidence,
            out_of_patient=message.step.out_of_patient,
        )
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
    zeroshot = None
    if message.HasField("zeroshot_step"):
        zeroshot = ZeroShotStepResult(
            code=message.zeroshot_step.code,
            confidence=message.zeroshot_step.confidence,
            prompt=message.zeroshot_step.prompt,
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
        zeroshot_step=zeroshot,
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


def status_request_to_proto() -> edge_pb2.GetStatusRequest:
    """The ``GetStatus`` request (it asks nothing more)."""
    return edge_pb2.GetStatusRequest()


def status_to_proto(status: RuntimeStatus) -> edge_pb2.GetStatusResponse:
    """The ``GetStatus`` answer for a runtime snapshot."""
    return edge_pb2.GetStatusResponse(
        sources=[
            edge_pb2.SourceStatus(
                stream_id=s.stream_id,
                uri=s.uri,
                state=s.state,
                fps=s.fps,
                frames_in=s.frames_in,
                error=s.error,
                reconnects=s.reconnects,
            )
            for s in status.sources
        ],
        models=[
            edge_pb2.ModelStatus(
                name=m.name,
                version=m.version,
                stream_id=m.stream_id,
                backend=m.backend,
                rate_hz=m.rate_hz,
                state=m.state,
                inferred=m.inferred,
                error=m.error,
                backend_reason=m.backend_reason,
            )
            for m in status.models
        ],
        stages=[
            edge_pb2.StageStatus(
                name=s.name,
                latency=latency_to_proto(s.latency),
                processed=s.processed,
                dropped=s.dropped,
                state=s.state,
                error=s.error,
            )
            for s in status.stages
        ],
        frame_to_result=latency_to_proto(status.frame_to_result),
        video_frames_in=status.video_frames_in,
        video_frames_out=status.video_frames_out,
        uptime_s=status.uptime_s,
    )


def status_from_proto(message: edge_pb2.GetStatusResponse) -> RuntimeStatus:
    """The runtime snapshot a ``GetStatus`` answer carries.

    Raises:
        ValueError: a negative rate or time (a corrupt message).
    """
    return RuntimeStatus(
        sources=tuple(
            SourceStatus(
                stream_id=s.stream_id,
                uri=s.uri,
                state=s.state,
                fps=s.fps,
                frames_in=s.frames_in,
                error=s.error,
                reconnects=s.reconnects,
            )
            for s in message.sources
        ),
        models=tuple(
            ModelStatus(
                name=m.name,
                version=m.version,
                stream_id=m.stream_id,
                backend=m.backend,
                rate_hz=m.rate_hz,
                state=m.state,
                inferred=m.inferred,
                error=m.error,
                backend_reason=m.backend_reason,
            )
            for m in message.models
        ),
        stages=tuple(
            StageStatus(
                name=s.name,
                latency=latency_from_proto(s.latency),
                processed=s.processed,
                dropped=s.dropped,
                state=s.state,
                error=s.error,
            )
            for s in message.stages
        ),
        frame_to_result=latency_from_proto(message.frame_to_result),
        video_frames_in=message.video_frames_in,
        video_frames_out=message.video_frames_out,
        uptime_s=message.uptime_s,
    )


def subscribe_request_to_proto(
    stream_ids: Sequence[str] = (), kinds: Sequence[str] = ()
) -> edge_pb2.SubscribeRequest:
    """The ``Subscribe`` request for these streams and result kinds (empty: the defaults)."""
    return edge_pb2.SubscribeRequest(stream_ids=stream_ids, kinds=kinds)


def subscribe_request_from_proto(
    message: edge_pb2.SubscribeRequest,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The (stream ids, kinds) a ``Subscribe`` request asks for."""
    return tuple(message.stream_ids), tuple(message.kinds)


def subscribe_response_to_proto(
    event: FrameResult | HandOffItem, dropped: int
) -> edge_pb2.SubscribeResponse:
    """One streamed result or hand-off update and the subscription's drop count so far."""
    if isinstance(event, HandOffItem):
        return edge_pb2.SubscribeResponse(handoff=handoff_to_proto(event), dropped=dropped)
    return edge_pb2.SubscribeResponse(result=result_to_proto(event), dropped=dropped)


def subscribe_response_from_proto(message: edge_pb2.SubscribeResponse) -> tuple[FrameResult, int]:
    """The (result, drop count so far) a streamed ``Subscribe`` answer carries (a frame
    result: see :func:`subscribe_event_from_proto` for subscriptions that take hand-offs)."""
    return result_from_proto(message.result), message.dropped


def subscribe_event_from_proto(
    message: edge_pb2.SubscribeResponse,
) -> tuple[FrameResult | HandOffItem, int]:
    """The (frame result or hand-off update, drop count so far) of a ``Subscribe`` answer."""
    if message.WhichOneof("event") == "handoff":
        return handoff_from_proto(message.handoff), message.dropped
    return result_from_proto(message.result), message.dropped


def timeline_request_to_proto(stream_id: str) -> edge_pb2.GetTimelineRequest:
    """The ``GetTimeline`` request for one stream."""
    return edge_pb2.GetTimelineRequest(stream_id=stream_id)


def timeline_request_from_proto(message: edge_pb2.GetTimelineRequest) -> str:
    """The stream a ``GetTimeline`` request names ("" when it names none)."""
    return message.stream_id


def timeline_to_proto(
    stream_id: str, segments: Sequence[StepSegment]
) -> edge_pb2.GetTimelineResponse:
    """The ``GetTimeline`` answer: a stream's step segments, oldest first."""
    return edge_pb2.GetTimelineResponse(
        stream_id=stream_id, segments=[segment_to_proto(s) for s in segments]
    )


def timeline_from_proto(
    message: edge_pb2.GetTimelineResponse,
) -> tuple[str, tuple[StepSegment, ...]]:
    """The (stream id, step segments) a ``GetTimeline`` answer carries."""
    return message.stream_id, tuple(segment_from_proto(s) for s in message.segments)


def prompt_request_to_proto(request: PromptRequest) -> edge_pb2.PromptRequest:
    """The ``Prompt`` request: the frame (an index or the latest) and every prompt."""
    message = edge_pb2.PromptRequest(stream_id=request.stream_id, text_classes=request.classes)
    if request.index is None:
        message.latest = True
    else:
        message.index = request.index
    region = request.region
    if region is not None:
        message.points.extend(
            edge_pb2.PromptPoint(x=x, y=y, positive=label == 1)
            for (x, y), label in zip(region.points, region.point_labels, strict=True)
        )
        if region.box is not None:
            x0, y0, x1, y1 = region.box
            message.box.CopyFrom(edge_pb2.PromptBox(x0=x0, y0=y0, x1=x1, y1=y1))
    return message


def prompt_request_from_proto(message: edge_pb2.PromptRequest) -> PromptRequest:
    """The prompt a ``Prompt`` request carries; a request naming no frame asks for the latest."""
    region = None
    if message.points or message.HasField("box"):
        box = message.box
        region = Prompt(
            points=tuple((p.x, p.y) for p in message.points),
            point_labels=tuple(int(p.positive) for p in message.points),
            box=(box.x0, box.y0, box.x1, box.y1) if message.HasField("box") else None,
        )
    return PromptRequest(
        stream_id=message.stream_id,
        index=message.index if message.WhichOneof("frame") == "index" else None,
        region=region,
        classes=tuple(message.text_classes),
    )


def prompt_answer_to_proto(answer: PromptAnswer) -> edge_pb2.PromptResponse:
    """The ``Prompt`` answer: the frame, its masks in request order, the model and the cost."""
    return edge_pb2.PromptResponse(
        stream_id=answer.stream_id,
        index=answer.index,
        pts_ns=answer.pts_ns,
        masks=[segment_mask_to_proto(mask) for mask in answer.masks],
        model=answer.model,
        latency_ms=answer.latency_ms,
        embedding_cached=answer.embedding_cached,
    )


def prompt_answer_from_proto(message: edge_pb2.PromptResponse) -> PromptAnswer:
    """The answer a ``Prompt`` response carries.

    Raises:
        OrstreamError: a mask's runs do not cover it (a corrupt message).
        ValueError: a negative frame index or latency (a corrupt message).
    """
    return PromptAnswer(
        stream_id=message.stream_id,
        index=message.index,
        pts_ns=message.pts_ns,
        masks=tuple(segment_mask_from_proto(mask) for mask in message.masks),
        model=message.model,
        latency_ms=message.latency_ms,
        embedding_cached=message.embedding_cached,
    )


def search_request_to_proto(request: SearchRequest) -> edge_pb2.SearchRequest:
    """The message of a search."""
    return edge_pb2.SearchRequest(
        text=request.text,
        stream_id=request.stream_id,
        seconds=request.seconds,
        limit=request.limit,
    )


def search_request_from_proto(message: edge_pb2.SearchRequest) -> SearchRequest:
    """The search a message asks for (limit 0: the default).

    Raises:
        ValueError: an empty or over-long text, a bad ``seconds`` or ``limit``.
    """
    return SearchRequest(
        text=message.text,
        stream_id=message.stream_id,
        seconds=message.seconds,
        limit=message.limit or DEFAULT_LIMIT,
    )


def search_answer_to_proto(answer: SearchAnswer) -> edge_pb2.SearchResponse:
    """The message of a search's answer."""
    return edge_pb2.SearchResponse(
        stream_id=answer.stream_id,
        moments=[
            edge_pb2.SearchMoment(
                index=moment.index,
                pts_ns=moment.pts_ns,
                start_pts_ns=moment.start_pts_ns,
                score=moment.score,
            )
            for moment in answer.moments
        ],
        searched=answer.searched,
        model=answer.model,
        latency_ms=answer.latency_ms,
    )


def search_answer_from_proto(message: edge_pb2.SearchResponse) -> SearchAnswer:
    """The answer a message carries."""
    return SearchAnswer(
        stream_id=message.stream_id,
        moments=tuple(
            SearchMoment(m.index, m.pts_ns, m.start_pts_ns, m.score) for m in message.moments
        ),
        searched=message.searched,
        model=message.model,
        latency_ms=message.latency_ms,
    )


def prompt_change_to_proto(change: PromptChange) -> edge_pb2.SetPromptsRequest:
    """The message of a prompt change."""
    return edge_pb2.SetPromptsRequest(
        prompts=prompts_to_proto(change.prompts).prompts, reset=change.reset
    )


def prompt_change_from_proto(message: edge_pb2.SetPromptsRequest) -> PromptChange:
    """The change a message asks for.

    Raises:
        ValueError: a step named twice, an unknown code, an empty or over-long text, or no
            change at all.
    """
    codes = [prompt.code for prompt in message.prompts]
    twice = sorted({code for code in codes if codes.count(code) > 1})
    if twice:
        raise ValueError(f"step {twice[0]} is given more than one prompt")
    return PromptChange({p.code: p.text for p in message.prompts}, reset=message.reset)


def prompts_to_proto(prompts: dict[int, str]) -> edge_pb2.SetPromptsResponse:
    """The message of the prompts in force, in the given order."""
    return edge_pb2.SetPromptsResponse(
        prompts=[edge_pb2.StepPrompt(code=code, text=text) for code, text in prompts.items()]
    )


def prompts_from_proto(message: edge_pb2.SetPromptsResponse) -> dict[int, str]:
    """The prompts in force a message lists: step code -> text, in order."""
    return {prompt.code: prompt.text for prompt in message.prompts}


def handoff_request_to_proto(request: HandOffRequest) -> edge_pb2.HandOffRequest:
    """The ``HandOff`` request of a client."""
    return edge_pb2.HandOffRequest(
        kind=request.kind,
        stream_id=request.stream_id,
        seconds=request.seconds,
        params=dict(request.params),
    )


def handoff_request_from_proto(message: edge_pb2.HandOffRequest) -> HandOffRequest:
    """What a ``HandOff`` request asks for (checked by the outbox, not here)."""
    return HandOffRequest(
        kind=message.kind,
        stream_id=message.stream_id,
        seconds=message.seconds,
        params=dict(message.params),
    )


def ask_request_to_proto(request: AskRequest) -> edge_pb2.AskRequest:
    """The ``Ask`` request of a client."""
    return edge_pb2.AskRequest(
        question=request.question,
        stream_id=request.stream_id,
        seconds=request.seconds,
        max_new_tokens=request.max_new_tokens,
        no_reasoning=not request.reasoning,
    )


def ask_request_from_proto(message: edge_pb2.AskRequest) -> AskRequest:
    """What an ``Ask`` request asks (checked by the outbox's desk, not here)."""
    return AskRequest(
        question=message.question,
        stream_id=message.stream_id,
        seconds=message.seconds,
        max_new_tokens=message.max_new_tokens,
        reasoning=not message.no_reasoning,
    )


def ask_event_to_proto(event: HandOffItem | PartialResult) -> edge_pb2.AskResponse:
    """One event of an ``Ask`` stream: the item as it is now, or a piece of the answer (a
    partial result of the ``vlm`` job kind, ``{"text": ...}``)."""
    if isinstance(event, HandOffItem):
        return edge_pb2.AskResponse(item=handoff_to_proto(event))
    piece = edge_pb2.AnswerPiece(text=str(event.value.get("text", "")), attempt=event.attempt)
    return edge_pb2.AskResponse(piece=piece)


def ask_event_from_proto(message: edge_pb2.AskResponse) -> HandOffItem | AnswerPiece:
    """The event an ``Ask`` stream's message carries."""
    if message.WhichOneof("event") == "item":
        return handoff_from_proto(message.item)
    return AnswerPiece(message.piece.text, message.piece.attempt)


def handoff_to_proto(item: HandOffItem) -> edge_pb2.HandOffItem:
    """The message of an outbox item."""
    return edge_pb2.HandOffItem(
        id=item.id,
        stream_id=item.stream_id,
        kind=item.kind,
        seconds=item.seconds,
        params=dict(item.params),
        origin=item.origin,
        idempotency_key=item.idempotency_key,
        state=item.state,
        frames=item.frames,
        withheld_frames=item.withheld_frames,
        clip_bytes=item.clip_bytes,
        sends=item.sends,
        last_error=item.last_error,
        job_id=item.job_id,
        job_state=item.job_state,
        job_attempts=item.job_attempts,
        progress=item.progress,
        progress_message=item.progress_message,
        result_json="" if item.result is None else json.dumps(item.result),
        error=item.error,
        created_s=item.created_s,
        accepted_s=item.accepted_s,
        finished_s=item.finished_s,
    )


def handoff_from_proto(message: edge_pb2.HandOffItem) -> HandOffItem:
    """An outbox item from its message."""
    return HandOffItem(
        id=message.id,
        stream_id=message.stream_id,
        kind=message.kind,
        seconds=message.seconds,
        params=dict(message.params),
        origin=message.origin,
        idempotency_key=message.idempotency_key,
        state=message.state,
        frames=message.frames,
        withheld_frames=message.withheld_frames,
        clip_bytes=message.clip_bytes,
        sends=message.sends,
        last_error=message.last_error,
        job_id=message.job_id,
        job_state=message.job_state,
        job_attempts=message.job_attempts,
        progress=message.progress,
        progress_message=message.progress_message,
        result=json.loads(message.result_json) if message.result_json else None,
        error=message.error,
        created_s=message.created_s,
        accepted_s=message.accepted_s,
        finished_s=message.finished_s,
    )


def handoff_list_to_proto(items: Sequence[HandOffItem]) -> edge_pb2.ListHandOffsResponse:
    """The ``ListHandOffs`` answer."""
    return edge_pb2.ListHandOffsResponse(items=[handoff_to_proto(item) for item in items])


def handoff_list_from_proto(message: edge_pb2.ListHandOffsResponse) -> list[HandOffItem]:
    """The items of a ``ListHandOffs`` answer, most recent first."""
    return [handoff_from_proto(item) for item in message.items]
