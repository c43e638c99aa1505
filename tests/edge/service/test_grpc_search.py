"""Search and SetPrompts over gRPC: answers equal to the video-text model's own, and every bad
request refused with the right status and a clear message."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from edge_samples import channel_to, sample_status

from orstream.edge.models.video_text_model import VideoTextModel
from orstream.edge.models.video_text_runner import VideoTextRunner
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.export.onnx.parity import phantom_frames
from orstream.package.loading import load_package
from orstream.proto.convert import prompts_from_proto, search_answer_from_proto
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.streams.frame import Frame
from orstream.video_search import SearchRequest

S = 1_000_000_000


@pytest.fixture(scope="module")
def model(random_videotext_package: Path) -> VideoTextModel:
    model = VideoTextModel(VideoTextRunner.load(load_package(random_videotext_package)))
    for i, image in enumerate(phantom_frames(10)):
        model.infer([Frame(image, pts_ns=i * 5 * S, capture_ns=i, index=i, stream_id="cam0")])
    return model


def _stub(video_text: VideoTextModel | None) -> Iterator[edge_pb2_grpc.EdgeServiceStub]:
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0", video_text=video_text)
    server.start()
    try:
        with channel_to(server) as channel:
            yield edge_pb2_grpc.EdgeServiceStub(channel)
    finally:
        server.stop(0.5)


@pytest.fixture
def stub(model: VideoTextModel) -> Iterator[edge_pb2_grpc.EdgeServiceStub]:
    yield from _stub(model)


def code_and_details(call: object) -> tuple[grpc.StatusCode, str]:
    try:
        call()  # type: ignore[operator]
    except grpc.RpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


def test_search_answers_what_the_model_answers(
    stub: edge_pb2_grpc.EdgeServiceStub, model: VideoTextModel
) -> None:
    request = edge_pb2.SearchRequest(text="the Kerrison rongeur", seconds=30)
    answer = search_answer_from_proto(stub.Search(request, timeout=30))
    expected = model.search(SearchRequest("the Kerrison rongeur", seconds=30))
    assert answer.stream_id == "cam0" and answer.model == model.label
    assert answer.moments == expected.moments and answer.searched == 7  # 15..45 s
    assert len(answer.moments) == 3  # the default 5, less the clips within 10 s of another


def test_set_prompts_changes_them_and_answers_all(
    stub: edge_pb2_grpc.EdgeServiceStub, model: VideoTextModel
) -> None:
    request = edge_pb2.SetPromptsRequest(
        prompts=[edge_pb2.StepPrompt(code=5, text="the sella is opened")]
    )
    prompts = prompts_from_proto(stub.SetPrompts(request, timeout=30))
    assert prompts[5] == "the sella is opened" and len(prompts) == 15
    assert model.prompts() == prompts
    reset = prompts_from_proto(stub.SetPrompts(edge_pb2.SetPromptsRequest(reset=True)))
    assert reset[5] == model.package.text_section().prompts[list(reset).index(5)]


@pytest.mark.parametrize(
    ("request_message", "code", "message"),
    [
        (edge_pb2.SearchRequest(text=" "), "INVALID_ARGUMENT", "the search text is empty"),
        (edge_pb2.SearchRequest(text="word " * 80), "INVALID_ARGUMENT", "the text is too long"),
        (edge_pb2.SearchRequest(text="x", limit=1000), "INVALID_ARGUMENT", "limit must be"),
        (edge_pb2.SearchRequest(text="x", seconds=-1), "INVALID_ARGUMENT", "seconds must be"),
        (
            edge_pb2.SearchRequest(text="x", stream_id="cam7"),
            "NOT_FOUND",
            "no clips of stream 'cam7' (streams: cam0)",
        ),
        (edge_pb2.SetPromptsRequest(), "INVALID_ARGUMENT", "no prompt to set"),
        (
            edge_pb2.SetPromptsRequest(prompts=[edge_pb2.StepPrompt(code=42, text="x")]),
            "INVALID_ARGUMENT",
            "no PitVis step has code 42",
        ),
        (
            edge_pb2.SetPromptsRequest(
                prompts=[edge_pb2.StepPrompt(code=2, text="a"), edge_pb2.StepPrompt(code=2)]
            ),
            "INVALID_ARGUMENT",
            "step 2 is given more than one prompt",
        ),
        (
            edge_pb2.SetPromptsRequest(prompts=[edge_pb2.StepPrompt(code=2, text="w " * 90)]),
            "INVALID_ARGUMENT",
            "prompt 1 is too long",
        ),
    ],
)
def test_bad_requests_are_refused_clearly(
    stub: edge_pb2_grpc.EdgeServiceStub,
    model: VideoTextModel,
    request_message: object,
    code: str,
    message: str,
) -> None:
    before = model.prompts()
    method = stub.Search if isinstance(request_message, edge_pb2.SearchRequest) else stub.SetPrompts
    status, details = code_and_details(lambda: method(request_message, timeout=30))
    assert status == getattr(grpc.StatusCode, code)
    assert message in details
    assert model.prompts() == before


def test_without_a_video_text_model_both_say_so() -> None:
    stubs = _stub(None)
    stub = next(stubs)
    for call in (
        lambda: stub.Search(edge_pb2.SearchRequest(text="x"), timeout=5),
        lambda: stub.SetPrompts(edge_pb2.SetPromptsRequest(reset=True), timeout=5),
    ):
        status, details = code_and_details(call)
        assert status == grpc.StatusCode.FAILED_PRECONDITION
        assert "no video-text model" in details
    stubs.close()
