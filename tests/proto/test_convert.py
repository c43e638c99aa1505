"""Every proto conversion survives the wire both ways, empty lists and absent fields included."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import pytest
from google.protobuf.message import Message

from orstream.errors import OrstreamError
from orstream.latency import LatencySummary
from orstream.proto.convert import (
    latency_from_proto,
    latency_to_proto,
    prompt_answer_from_proto,
    prompt_answer_to_proto,
    prompt_change_from_proto,
    prompt_change_to_proto,
    prompt_request_from_proto,
    prompt_request_to_proto,
    prompts_from_proto,
    prompts_to_proto,
    result_from_proto,
    result_to_proto,
    search_answer_from_proto,
    search_answer_to_proto,
    search_request_from_proto,
    search_request_to_proto,
    segment_from_proto,
    segment_mask_from_proto,
    segment_mask_to_proto,
    segment_to_proto,
    status_from_proto,
    status_request_to_proto,
    status_to_proto,
    subscribe_request_from_proto,
    subscribe_request_to_proto,
    subscribe_response_from_proto,
    subscribe_response_to_proto,
    timeline_from_proto,
    timeline_request_from_proto,
    timeline_request_to_proto,
    timeline_to_proto,
)
from orstream.proto.orstream.v1 import edge_pb2
from orstream.results import (
    FrameResult,
    InstrumentResult,
    SegmentationResult,
    SegmentMask,
    StepResult,
    ZeroShotStepResult,
)
from orstream.segmentation.mask_rle import MaskRle, encode_mask
from orstream.segmentation.prompts import Prompt, PromptAnswer, PromptRequest
from orstream.status import ModelStatus, RuntimeStatus, SourceStatus, StageStatus
from orstream.step_timeline import StepSegment
from orstream.video_search import PromptChange, SearchAnswer, SearchMoment, SearchRequest

M = TypeVar("M", bound=Message)


def wire(message: M) -> M:
    """The message as the other side reads it: serialised and parsed again."""
    return type(message).FromString(message.SerializeToString())


def mask(code: int = 1, name: str = "bipolar_forceps") -> SegmentMask:
    pixels = np.zeros((6, 8), bool)
    pixels[2:5, 1:4] = True
    return SegmentMask(code, name, 0.875, encode_mask(pixels), (1, 2, 4, 5))


EMPTY_MASK = SegmentMask(0, "", 0.25, MaskRle(6, 8, (48,)), (0, 0, 0, 0))


def full_result() -> FrameResult:
    return FrameResult(
        stream_id="cam1",
        index=4321,
        pts_ns=180_041_666_667,
        capture_ns=9_000_000_000,
        produced_ns=9_042_500_000,
        models=("pitvis_workflow@1.2.0", "other@0.1"),
        step=StepResult(code=5, confidence=0.8731, out_of_patient=0.0625),
        instruments=InstrumentResult(slots=(16, 8), present=((16, 0.91), (8, 0.55))),
        segmentation=SegmentationResult((mask(), mask(101, "sella"), EMPTY_MASK)),
        zeroshot_step=ZeroShotStepResult(7, 0.4375, "Surgical step: synthetic graft placement."),
        stale=True,
    )


def test_frame_result_round_trips_with_readable_names() -> None:
    result = full_result()
    message = result_to_proto(result)
    assert message.step.name == "sellotomy"
    assert [p.name for p in message.instruments.present] == ["suction", "kerrisons"]
    assert message.zeroshot_step.name == "synthetic_graft_placement"
    assert result_from_proto(wire(message)) == result


@pytest.mark.parametrize(
    "result",
    [
        FrameResult("cam0", 0, 0, 1, 2, ()),
        FrameResult("cam0", 7, 5, 1, 2, ("m@1",), step=StepResult(-1, 1.0)),
        FrameResult(
            "cam0", 8, 5, 1, 2, ("m@1",), instruments=InstrumentResult(slots=(0, -2), present=())
        ),
        FrameResult("cam0", 9, 5, 1, 2, ("m@1",), segmentation=SegmentationResult(())),
        FrameResult("cam0", 9, 5, 1, 2, ("v@1",), zeroshot_step=ZeroShotStepResult(-1, 0.5, "x")),
    ],
    ids=[
        "no-kinds",
        "step-only-out-of-patient",
        "instruments-none-visible",
        "no-masks",
        "zeroshot-only",
    ],
)
def test_missing_kinds_stay_missing(result: FrameResult) -> None:
    message = wire(result_to_proto(result))
    assert message.HasField("step") == (result.step is not None)
    assert message.HasField("instruments") == (result.instruments is not None)
    assert message.HasField("segmentation") == (result.segmentation is not None)
    assert message.HasField("zeroshot_step") == (result.zeroshot_step is not None)
    assert result_from_proto(message) == result


def test_searches_and_their_answers_round_trip() -> None:
    request = SearchRequest("the suction near the sella", stream_id="endo", seconds=90, limit=3)
    assert search_request_from_proto(wire(search_request_to_proto(request))) == request
    default = search_request_from_proto(edge_pb2.SearchRequest(text="suction"))
    assert (default.limit, default.seconds, default.stream_id) == (5, 0.0, "")
    answer = SearchAnswer(
        "endo",
        (SearchMoment(40, 5 * 10**9, 0, 0.625), SearchMoment(90, 20 * 10**9, 11 * 10**9, -0.25)),
        searched=12,
        model="ophclip_small@abc",
        latency_ms=3.5,
    )
    assert search_answer_from_proto(wire(search_answer_to_proto(answer))) == answer
    with pytest.raises(ValueError, match="the search text is empty"):
        search_request_from_proto(edge_pb2.SearchRequest(text="  "))


def test_prompt_changes_and_the_prompts_in_force_round_trip() -> None:
    change = PromptChange({3: "the sphenoid is opened", -1: "the scope is outside"}, reset=True)
    assert prompt_change_from_proto(wire(prompt_change_to_proto(change))) == change
    prompts = {-1: "outside", 1: "nasal corridor", 2: "septum"}
    back = prompts_from_proto(wire(prompts_to_proto(prompts)))
    assert back == prompts and list(back) == [-1, 1, 2]
    twice = edge_pb2.SetPromptsRequest(
        prompts=[edge_pb2.StepPrompt(code=3, text="a"), edge_pb2.StepPrompt(code=3, text="b")]
    )
    with pytest.raises(ValueError, match="step 3 is given more than one prompt"):
        prompt_change_from_proto(twice)


def test_segment_masks_round_trip_and_a_corrupt_one_is_refused() -> None:
    for sent in (mask(), EMPTY_MASK):
        assert segment_mask_from_proto(wire(segment_mask_to_proto(sent))) == sent
    corrupt = segment_mask_to_proto(mask())
    corrupt.mask.counts.append(3)
    with pytest.raises(OrstreamError, match="runs cover 51 pixels"):
        segment_mask_from_proto(corrupt)


def test_step_segment_round_trips() -> None:
    segment = StepSegment(code=9, start_index=120, end_index=480, start_pts_ns=5, end_pts_ns=15)
    message = segment_to_proto(segment)
    assert message.name == "tumour_excision"
    assert segment_from_proto(wire(message)) == segment


def test_latency_round_trips_measured_or_not() -> None:
    measured = LatencySummary.of([10.0, 12.0, 30.0])
    assert latency_from_proto(wire(latency_to_proto(measured))) == measured
    empty = latency_from_proto(wire(latency_to_proto(LatencySummary.of([]))))
    assert empty.count == 0 and all(math.isnan(v) for v in (empty.p50, empty.p999, empty.max))


def status() -> RuntimeStatus:
    return RuntimeStatus(
        sources=(
            SourceStatus("cam0", "phantom://?seed=3", "playing", 24.5, 1200),
            SourceStatus("cam1", "rtsp://10.0.0.9/live", "failed", 0.0, 17, "connection refused"),
        ),
        models=(
            ModelStatus(
                "pitvis_workflow",
                "1.0.0",
                "cam0",
                "onnxruntime-cpu",
                5.0,
                "serving",
                250,
                backend_reason="onnxruntime-cpu (tensorrt:cuda: no CUDA GPU 0 on this host)",
            ),
            ModelStatus("imis_segmenter", "1.0.0", "cam1", "torch-cuda", 2.0, "failed", 0, "oom"),
        ),
        stages=(StageStatus("inference.cam0", LatencySummary.of([10.0, 12.0, 30.0]), 250, 3),),
        frame_to_result=LatencySummary.of([40.0, 41.0, 90.0]),
        video_frames_in=1217,
        video_frames_out=1190,
        uptime_s=50.25,
    )


def test_status_round_trips() -> None:
    sent = status()
    message = wire(status_to_proto(sent))
    assert [s.stream_id for s in message.sources] == ["cam0", "cam1"]
    assert message.models[0].backend_reason.startswith("onnxruntime-cpu (tensorrt:cuda")
    assert status_from_proto(message) == sent
    assert status_request_to_proto() == edge_pb2.GetStatusRequest()


def test_a_status_with_nothing_running_round_trips() -> None:
    sent = RuntimeStatus((), (), (), LatencySummary.of([]), 0, 0, 0.0)
    back = status_from_proto(wire(status_to_proto(sent)))
    assert (back.sources, back.models, back.stages) == ((), (), ())
    assert (back.video_frames_in, back.video_frames_out, back.uptime_s) == (0, 0, 0.0)
    assert back.frame_to_result.count == 0 and math.isnan(back.frame_to_result.p50)


def test_a_status_message_with_a_negative_rate_is_refused() -> None:
    message = status_to_proto(status())
    message.sources[0].fps = -1.0
    with pytest.raises(ValueError, match=r"SourceStatus\.fps must be 0 or more, got -1\.0"):
        status_from_proto(message)


@pytest.mark.parametrize(
    ("stream_ids", "kinds"),
    [((), ()), (("cam1",), ("step",)), (("cam0", "cam1"), ("segmentation", "instruments"))],
)
def test_subscribe_requests_round_trip(stream_ids: tuple[str, ...], kinds: tuple[str, ...]) -> None:
    message = wire(subscribe_request_to_proto(stream_ids, kinds))
    assert subscribe_request_from_proto(message) == (stream_ids, kinds)


def test_subscribe_responses_carry_the_result_and_the_drop_count() -> None:
    message = wire(subscribe_response_to_proto(full_result(), 7))
    assert subscribe_response_from_proto(message) == (full_result(), 7)


def test_timelines_round_trip_empty_or_not() -> None:
    assert timeline_request_from_proto(wire(timeline_request_to_proto("cam0"))) == "cam0"
    assert timeline_request_from_proto(edge_pb2.GetTimelineRequest()) == ""
    segments = (StepSegment(1, 0, 9, 0, 360), StepSegment(2, 10, 30, 400, 1200))
    assert timeline_from_proto(wire(timeline_to_proto("cam0", segments))) == ("cam0", segments)
    assert timeline_from_proto(wire(timeline_to_proto("cam1", ()))) == ("cam1", ())


@pytest.mark.parametrize(
    "request_",
    [
        PromptRequest(
            "cam0",
            42,
            Prompt(points=((12.5, 3.0), (7.0, 9.0)), point_labels=(1, 0), box=(1, 2, 300, 170)),
            ("suction", "sella"),
        ),
        PromptRequest(index=0, region=Prompt(box=(0.0, 0.0, 10.0, 10.0))),
        PromptRequest("or2", region=Prompt(points=((5.0, 6.0),), point_labels=(0,))),
        PromptRequest(classes=("sella",)),
        PromptRequest(),
    ],
    ids=["everything", "box-on-frame-0", "one-negative-click-latest", "class-only", "empty"],
)
def test_prompt_requests_round_trip(request_: PromptRequest) -> None:
    message = wire(prompt_request_to_proto(request_))
    assert message.WhichOneof("frame") == ("latest" if request_.index is None else "index")
    assert prompt_request_from_proto(message) == request_


def test_prompt_request_on_the_wire() -> None:
    region = Prompt(points=((5.0, 6.0), (7.0, 8.0)), point_labels=(1, 0), box=(1, 2, 3, 4))
    message = prompt_request_to_proto(PromptRequest("or2", None, region, ("sella",)))
    assert message.stream_id == "or2" and message.latest
    assert [(p.x, p.y, p.positive) for p in message.points] == [(5, 6, True), (7, 8, False)]
    assert (message.box.x0, message.box.y0, message.box.x1, message.box.y1) == (1, 2, 3, 4)
    assert list(message.text_classes) == ["sella"]
    clicks_only = prompt_request_to_proto(PromptRequest(region=Prompt(((1.0, 1.0),), (1,))))
    assert not clicks_only.HasField("box")


def test_a_request_naming_no_frame_asks_for_the_latest() -> None:
    message = edge_pb2.PromptRequest(stream_id="cam0", text_classes=["suction"])
    assert prompt_request_from_proto(message) == PromptRequest("cam0", None, None, ("suction",))


@pytest.mark.parametrize(
    "masks", [(mask(), mask(101, "sella"), EMPTY_MASK), ()], ids=["masks", "no-masks"]
)
def test_prompt_answers_round_trip(masks: tuple[SegmentMask, ...]) -> None:
    answer = PromptAnswer("cam0", 238, 9_920_000_000, masks, "imis_segmenter@1.0.0", 42.25, True)
    assert prompt_answer_from_proto(wire(prompt_answer_to_proto(answer))) == answer


def test_a_prompt_answer_with_a_negative_latency_is_refused() -> None:
    message = prompt_answer_to_proto(PromptAnswer("cam0", 1, 0, (), "m@1", 1.0, False))
    message.latency_ms = -2.0
    with pytest.raises(ValueError, match="latency_ms must be 0 or more"):
        prompt_answer_from_proto(message)
