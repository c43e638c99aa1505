"""Prompt over gRPC on recent frames: masks equal to the segmenter's own, the encoder skipped on
kept embeddings, and every bad request refused with the right status and a clear message."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator

import grpc
import numpy as np
import pytest
from edge_samples import HEIGHT, WIDTH, channel_to, frame, sample_status
from segmenter_checkpoints import random_segmenter_package

from orstream.edge.models.frame_prompter import FramePrompter
from orstream.edge.models.segmenter_model import SegmenterModel
from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.package.loading import load_package
from orstream.proto.convert import segment_mask_from_proto
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc
from orstream.segmentation.mask_rle import decode_mask
from orstream.segmentation.prompts import Prompt


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> SegmenterModel:
    root = random_segmenter_package(tmp_path_factory.getbasetemp())
    return SegmenterModel.load(load_package(root))


@pytest.fixture
def prompter(model: SegmenterModel) -> FramePrompter:
    prompter = FramePrompter(model, keep_frames=4, keep_embeddings=2)
    for index in range(10):
        prompter.remember(frame(index))
    return prompter


@pytest.fixture
def stub(prompter: FramePrompter) -> Iterator[edge_pb2_grpc.EdgeServiceStub]:
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0", prompter=prompter)
    server.start()
    try:
        with channel_to(server) as channel:
            yield edge_pb2_grpc.EdgeServiceStub(channel)
    finally:
        server.stop(0.5)


def box_request(**kwargs: object) -> edge_pb2.PromptRequest:
    return edge_pb2.PromptRequest(box=edge_pb2.PromptBox(x0=40, y0=30, x1=200, y1=150), **kwargs)


def test_box_and_text_masks_match_the_segmenter_pixel_for_pixel(
    stub: edge_pb2_grpc.EdgeServiceStub, model: SegmenterModel, prompter: FramePrompter
) -> None:
    request = box_request(stream_id="cam0", index=8, text_classes=["suction", "sella"])
    response = stub.Prompt(request, timeout=30)
    assert (response.stream_id, response.index, response.pts_ns) == ("cam0", 8, 8 * 40_000_000)
    assert response.model == model.label and response.latency_ms > 0
    assert not response.embedding_cached
    assert [(m.code, m.name) for m in response.masks] == [(0, ""), (16, "suction"), (101, "sella")]
    embedding = model.embed(frame(8).image)
    expected = [
        model.segment(embedding, Prompt(box=(40, 30, 200, 150))),
        model.segment(embedding, Prompt(text="suction")),
        model.segment(embedding, Prompt(text="sella")),
    ]
    for message, want in zip(response.masks, expected, strict=True):
        got = segment_mask_from_proto(message)
        pixels = decode_mask(got.mask)
        assert pixels.shape == (HEIGHT, WIDTH)
        np.testing.assert_array_equal(pixels, want.mask)
        assert got.score == pytest.approx(want.score, abs=1e-5)
        if want.mask.any():
            rows, cols = np.nonzero(want.mask)
            assert got.box == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
    # The embedding is kept: the same frame again runs only the decoder.
    runs = prompter.encoder_runs
    again = stub.Prompt(box_request(stream_id="cam0", index=8), timeout=30)
    assert again.embedding_cached and prompter.encoder_runs == runs
    assert again.masks[0].mask == response.masks[0].mask


def test_latest_and_default_stream_and_clicks(
    stub: edge_pb2_grpc.EdgeServiceStub, prompter: FramePrompter
) -> None:
    points = [
        edge_pb2.PromptPoint(x=100, y=90, positive=True),
        edge_pb2.PromptPoint(x=10, y=10, positive=False),
    ]
    response = stub.Prompt(edge_pb2.PromptRequest(latest=True, points=points), timeout=30)
    assert (response.stream_id, response.index) == ("cam0", 9)
    assert len(response.masks) == 1
    # Once a frame is embedded, "latest" answers on it at decoder cost.
    prompter.embedding(frame(7))
    cached = stub.Prompt(edge_pb2.PromptRequest(latest=True, points=points), timeout=30)
    assert cached.embedding_cached and cached.index in (7, 9)


@pytest.mark.parametrize(
    ("request_", "code", "message"),
    [
        (
            edge_pb2.PromptRequest(points=[edge_pb2.PromptPoint(x=WIDTH + 5, y=10, positive=True)]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "outside",
        ),
        (
            edge_pb2.PromptRequest(box=edge_pb2.PromptBox(x0=50, y0=50, x1=50, y1=90)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "box",
        ),
        (
            edge_pb2.PromptRequest(text_classes=["scalpel"]),
            grpc.StatusCode.INVALID_ARGUMENT,
            "scalpel",
        ),
        (edge_pb2.PromptRequest(index=3), grpc.StatusCode.INVALID_ARGUMENT, "points, a box"),
        (
            edge_pb2.PromptRequest(points=[edge_pb2.PromptPoint(x=10, y=10, positive=True)] * 33),
            grpc.StatusCode.INVALID_ARGUMENT,
            "at most 32 clicks, not 33",
        ),
        (box_request(index=2), grpc.StatusCode.NOT_FOUND, "frame 2"),
        (box_request(index=5000), grpc.StatusCode.NOT_FOUND, "frame 5000"),
        (box_request(stream_id="cam9"), grpc.StatusCode.NOT_FOUND, "cam9"),
    ],
)
def test_bad_prompts_are_refused_with_a_clear_message(
    stub: edge_pb2_grpc.EdgeServiceStub,
    request_: edge_pb2.PromptRequest,
    code: grpc.StatusCode,
    message: str,
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.Prompt(request_, timeout=30)
    assert error.value.code() == code
    assert message in error.value.details()


def test_a_runtime_without_a_segmenter_says_so() -> None:
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0")
    server.start()
    try:
        with channel_to(server) as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            with pytest.raises(grpc.RpcError) as error:
                stub.Prompt(box_request(), timeout=10)
    finally:
        server.stop(0.5)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "no segmenter" in error.value.details()


def test_prompter_keeps_only_recent_frames_and_embeddings(model: SegmenterModel) -> None:
    prompter = FramePrompter(model, keep_frames=3, keep_embeddings=2)
    frames = [frame(i, "or1") for i in range(6)]
    for item in frames:
        prompter.remember(item)
    for item in frames[:3]:  # embedded earlier, e.g. by live segmentation
        prompter.embedding(item)
    assert prompter.encoder_runs == 3
    answer = prompter.prompt("or1", 2, Prompt(box=(10, 10, 60, 60)))
    assert answer.embedding_cached and prompter.encoder_runs == 3
    with pytest.raises(LookupError, match="frame 0"):  # neither kept nor embedded any more
        prompter.prompt("or1", 0, Prompt(box=(10, 10, 60, 60)))
    with pytest.raises(ValueError, match="at least 1"):
        FramePrompter(model, keep_frames=0)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        # 12 kB: under Prompt's 16 kB request limit, so the handler answers it.
        (edge_pb2.PromptRequest(text_classes=["x" * 12_000]), grpc.StatusCode.INVALID_ARGUMENT),
        (box_request(stream_id="s" * 12_000), grpc.StatusCode.NOT_FOUND),
        (box_request(stream_id="\x1b[2J" + "é" * 50), grpc.StatusCode.NOT_FOUND),
    ],
    ids=["huge-class", "huge-stream", "control-characters"],
)
def test_errors_quote_only_a_short_clean_prefix_of_what_was_sent(
    stub: edge_pb2_grpc.EdgeServiceStub, request_: edge_pb2.PromptRequest, code: grpc.StatusCode
) -> None:
    with pytest.raises(grpc.RpcError) as error:
        stub.Prompt(request_, timeout=30)
    # Not RESOURCE_EXHAUSTED ("received metadata size exceeds limit"): the refusal itself.
    assert error.value.code() == code
    detail = error.value.details()
    assert len(detail) <= 400 and "\x1b" not in detail
    assert "characters)" in detail  # the value was cut, and says how long it was


def test_a_prompt_names_each_class_once_and_at_most_all_of_them(
    stub: edge_pb2_grpc.EdgeServiceStub, model: SegmenterModel
) -> None:
    names = list(model.classes)
    for classes in (names * 40, [names[0], names[0]]):  # 300 names took 1.3 s of decoder
        started = time.monotonic()
        with pytest.raises(grpc.RpcError) as error:
            stub.Prompt(edge_pb2.PromptRequest(text_classes=classes), timeout=30)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "at most once" in error.value.details()
        assert time.monotonic() - started < 0.5  # refused before any work
    answer = stub.Prompt(edge_pb2.PromptRequest(text_classes=names), timeout=30)
    assert len(answer.masks) == len(names)


def slowed(prompter: FramePrompter, seconds: float) -> list[float]:
    """Make each mask of ``prompter`` take ``seconds``; returns when each was asked for."""
    calls: list[float] = []
    segment = prompter.model.segment

    def slow(*args: object, **kwargs: object) -> object:
        calls.append(time.monotonic())
        time.sleep(seconds)
        return segment(*args, **kwargs)  # type: ignore[arg-type]

    prompter.model = copy.copy(prompter.model)
    prompter.model.segment = slow  # type: ignore[method-assign]
    return calls


def test_prompts_beyond_the_limit_are_refused_at_once(prompter: FramePrompter) -> None:
    slowed(prompter, 0.3)
    server = EdgeGrpcServer(
        ResultHub(), sample_status, "127.0.0.1:0", prompter=prompter, max_prompts=1
    )
    server.start()
    try:
        with channel_to(server) as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            first = stub.Prompt.future(box_request(), timeout=30)
            time.sleep(0.1)  # the first is being worked on
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as error:
                stub.Prompt(box_request(), timeout=30)
            assert error.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert time.monotonic() - started < 0.2
            # GetStatus is served meanwhile, and the first prompt gets its answer.
            stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=1)
            assert len(first.result().masks) == 1
            assert len(stub.Prompt(box_request(), timeout=30).masks) == 1  # a free slot again
    finally:
        server.stop(0.5)


def test_work_stops_when_the_caller_is_gone(prompter: FramePrompter) -> None:
    calls = slowed(prompter, 0.2)
    server = EdgeGrpcServer(ResultHub(), sample_status, "127.0.0.1:0", prompter=prompter)
    server.start()
    try:
        with channel_to(server) as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            names = list(prompter.model.classes)  # 4 masks: 0.8 s of work
            with pytest.raises(grpc.RpcError) as error:
                stub.Prompt(edge_pb2.PromptRequest(text_classes=names), timeout=0.3)
            assert error.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            time.sleep(1.0)
            assert len(calls) <= 2  # the masks asked for before the deadline passed, no more
    finally:
        server.stop(0.5)
