"""The edge gRPC server on loopback with real client stubs: status, results, timelines, health."""

import dataclasses
import math
import threading
import time
from collections.abc import Iterator

import grpc
import pytest
from edge_samples import channel_to, result, sample_status
from grpc_health.v1 import health_pb2, health_pb2_grpc

from orstream.edge.service.result_hub import ResultHub
from orstream.edge.service.server import EdgeGrpcServer
from orstream.errors import OrstreamError
from orstream.proto.convert import result_from_proto
from orstream.proto.orstream.v1 import edge_pb2, edge_pb2_grpc

SERVICE = "orstream.v1.EdgeService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


@pytest.fixture
def hub() -> ResultHub:
    return ResultHub()


@pytest.fixture
def server(hub: ResultHub) -> Iterator[EdgeGrpcServer]:
    edge = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0", subscriber_buffer=64)
    edge.start()
    yield edge
    edge.stop(grace_s=0.5)


@pytest.fixture
def stub(server: EdgeGrpcServer) -> Iterator[edge_pb2_grpc.EdgeServiceStub]:
    with channel_to(server) as channel:
        yield edge_pb2_grpc.EdgeServiceStub(channel)


def subscribe(
    stub: edge_pb2_grpc.EdgeServiceStub, **request: list[str]
) -> grpc.Future:  # the call is also an iterator of SubscribeResponse
    """Open a subscription and wait until the server has it in place (its headers arrive)."""
    call = stub.Subscribe(edge_pb2.SubscribeRequest(**request))
    call.initial_metadata()
    return call


def test_status_round_trip(stub: edge_pb2_grpc.EdgeServiceStub) -> None:
    status = stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=10)
    expected = sample_status()
    # Sources and models keep their dataclass field names on the wire.
    for got, want in [
        *zip(status.sources, expected.sources, strict=True),
        *zip(status.models, expected.models, strict=True),
    ]:
        wire = {field.name: getattr(got, field.name) for field in dataclasses.fields(want)}
        assert wire == dataclasses.asdict(want)
    inference = status.stages[0]
    assert (inference.name, inference.processed, inference.dropped) == ("inference.cam0", 250, 3)
    summary = expected.stages[0].latency
    assert inference.latency.count == 3
    assert (inference.latency.p50_ms, inference.latency.max_ms) == (summary.p50, summary.max)
    assert (inference.latency.p99_ms, inference.latency.p999_ms) == (summary.p99, summary.p999)
    assert status.stages[1].latency.count == 0 and math.isnan(status.stages[1].latency.p50_ms)
    assert status.frame_to_result.max_ms == 90.0
    assert (status.video_frames_in, status.video_frames_out, status.uptime_s) == (1217, 1190, 50.25)


def test_subscribers_get_every_result_in_order_with_their_filters(
    hub: ResultHub, stub: edge_pb2_grpc.EdgeServiceStub
) -> None:
    everything = subscribe(stub)
    cam1_steps = subscribe(stub, stream_ids=["cam1"], kinds=["step"])
    published = [
        result(i, stream_id=f"cam{i % 2}", step=None if i % 5 == 0 else 3) for i in range(60)
    ]
    for item in published:
        hub.publish(item)

    got = [result_from_proto(next(everything).result) for _ in published]
    assert got == published
    wanted = [r for r in published if r.stream_id == "cam1" and r.step is not None]
    steps = [next(cam1_steps) for _ in wanted]
    assert [(m.result.stream_id, m.result.index) for m in steps] == [
        (r.stream_id, r.index) for r in wanted
    ]
    assert all(m.result.HasField("step") and not m.result.HasField("instruments") for m in steps)
    assert all(m.dropped == 0 for m in steps)
    everything.cancel()
    cam1_steps.cancel()


def test_stalled_client_loses_results_without_slowing_publish_or_a_reading_client(
    hub: ResultHub, server: EdgeGrpcServer, stub: edge_pb2_grpc.EdgeServiceStub
) -> None:
    # Without bandwidth probing the stalled client's flow-control window stays at 64 KiB, so
    # the transport cannot absorb the whole run and the server-side buffer must drop.
    with channel_to(server, ("grpc.http2.bdp_probe", 0)) as slow_channel:
        stalled = subscribe(edge_pb2_grpc.EdgeServiceStub(slow_channel))
        reading = subscribe(stub)
        count = 10_000
        received: list[int] = []
        caught_up = threading.Condition()

        def read() -> None:
            for message in reading:
                with caught_up:
                    received.append(message.result.index)
                    caught_up.notify_all()
                if message.result.index == count - 1:
                    return

        reader = threading.Thread(target=read)
        reader.start()
        publish_s = 0.0
        for i in range(count):
            started = time.perf_counter()
            hub.publish(result(i))
            publish_s += time.perf_counter() - started
            # Bursts shorter than the reading client's buffer, so it can keep every result.
            if i % 32 == 31:
                with caught_up:
                    assert caught_up.wait_for(lambda n=i: len(received) > n, timeout=30)
        reader.join(timeout=30)
        print(f"\n{count} publishes beside a stalled client: {publish_s * 1e3:.1f} ms")
        assert received == list(range(count))

        # The stalled client now reads what reached it: the newest results, the rest counted.
        got = 0
        for message in stalled:
            got += 1
            if message.result.index == count - 1:
                dropped = message.dropped
                break
        stalled.cancel()
        reading.cancel()
    print(f"stalled client: {got} received, {dropped} dropped")
    assert dropped > 0
    assert got + dropped == count


def test_timeline_and_its_errors(hub: ResultHub, stub: edge_pb2_grpc.EdgeServiceStub) -> None:
    for i, step in enumerate([1, 1, 2, 2, 2, -1]):
        hub.publish(result(i, "cam0", step=step))
    timeline = stub.GetTimeline(edge_pb2.GetTimelineRequest(stream_id="cam0"), timeout=10)
    assert [(s.code, s.name, s.start_index, s.end_index) for s in timeline.segments] == [
        (1, "nasal_corridor_creation", 0, 1),
        (2, "anterior_sphenoidotomy", 2, 4),
        (-1, "out_of_patient", 5, 5),
    ]
    assert timeline.segments[1].end_pts_ns == 4 * 40_000_000

    with pytest.raises(grpc.RpcError) as missing:
        stub.GetTimeline(edge_pb2.GetTimelineRequest(stream_id="cam7"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert "'cam7'" in missing.value.details() and "cam0" in missing.value.details()

    with pytest.raises(grpc.RpcError) as empty:
        stub.GetTimeline(edge_pb2.GetTimelineRequest(), timeout=10)
    assert empty.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_kind_is_an_invalid_argument(stub: edge_pb2_grpc.EdgeServiceStub) -> None:
    call = stub.Subscribe(edge_pb2.SubscribeRequest(kinds=["masks"]), timeout=10)
    with pytest.raises(grpc.RpcError) as error:
        next(call)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "masks" in error.value.details()


def test_subscriptions_beyond_the_limit_are_refused(hub: ResultHub) -> None:
    server = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0", max_subscribers=1)
    server.start()
    try:
        with channel_to(server) as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            first = subscribe(stub)
            with pytest.raises(grpc.RpcError) as refused:
                next(stub.Subscribe(edge_pb2.SubscribeRequest(), timeout=10))
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            # GetStatus still has a thread of its own.
            assert stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=10).uptime_s == 50.25
            first.cancel()
    finally:
        server.stop(grace_s=0.5)


def test_health_follows_the_runtime_and_shutdown(hub: ResultHub) -> None:
    server = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0")
    server.start()
    with channel_to(server) as channel:
        health = health_pb2_grpc.HealthStub(channel)

        def check(service: str) -> int:
            request = health_pb2.HealthCheckRequest(service=service)
            return health.Check(request, timeout=10).status

        assert (check(""), check(SERVICE)) == (NOT_SERVING, NOT_SERVING)
        server.set_serving(True)
        assert (check(""), check(SERVICE)) == (SERVING, SERVING)
        server.set_serving(False)  # a source or model failed
        assert (check(""), check(SERVICE)) == (NOT_SERVING, NOT_SERVING)
        server.set_serving(True)
        with pytest.raises(grpc.RpcError) as unknown:
            check("orstream.v1.NoSuchService")
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND
        server.set_stream_health("endo", True)  # each stream has its own
        server.set_stream_health("exo", False)  # e.g. its camera is reconnecting
        assert (check("stream/endo"), check("stream/exo"), check("")) == (
            SERVING,
            NOT_SERVING,
            SERVING,
        )

        watch = health.Watch(health_pb2.HealthCheckRequest(service=SERVICE))
        assert next(watch).status == SERVING
        server.stop(grace_s=1.0)
        assert next(watch).status == NOT_SERVING
        with pytest.raises(grpc.RpcError):
            check("")


def test_stop_ends_an_open_subscription_cleanly_within_the_grace(hub: ResultHub) -> None:
    server = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0")
    server.start()
    with channel_to(server) as channel:
        call = subscribe(edge_pb2_grpc.EdgeServiceStub(channel))
        hub.publish(result(0))
        assert next(call).result.index == 0
        outcome: list[object] = []
        reader = threading.Thread(target=lambda: outcome.append(list(call)))
        reader.start()
        started = time.perf_counter()
        server.stop(grace_s=2.0)
        stop_s = time.perf_counter() - started
        reader.join(timeout=10)
        assert not reader.is_alive()
        assert outcome == [[]]  # the stream ended, no error
        assert call.code() == grpc.StatusCode.OK
    print(f"\nstop with an open subscription: {stop_s * 1e3:.0f} ms")
    assert stop_s < 2.0


def test_stop_is_bounded_with_a_client_that_stopped_reading(hub: ResultHub) -> None:
    server = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0")
    server.start()
    with channel_to(server, ("grpc.http2.bdp_probe", 0)) as channel:
        call = subscribe(edge_pb2_grpc.EdgeServiceStub(channel))
        for i in range(5_000):  # fills the transport window and the server-side buffer
            hub.publish(result(i))
        stopper = threading.Thread(target=server.stop, kwargs={"grace_s": 0.5})
        stopper.start()
        stopper.join(timeout=10)
        assert not stopper.is_alive()
        call.cancel()


def test_reflection_only_when_asked(hub: ResultHub) -> None:
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
        ProtoReflectionDescriptorDatabase,
    )

    for reflection in (True, False):
        server = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0", reflection=reflection)
        server.start()
        try:
            with channel_to(server) as channel:
                database = ProtoReflectionDescriptorDatabase(channel)
                if reflection:
                    assert SERVICE in database.get_services()
                    assert "grpc.health.v1.Health" in database.get_services()
                else:
                    with pytest.raises(grpc.RpcError) as off:
                        database.get_services()
                    assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
        finally:
            server.stop(grace_s=0.5)


def test_messages_above_the_limit_are_refused(hub: ResultHub) -> None:
    server = EdgeGrpcServer(hub, sample_status, "127.0.0.1:0", max_message_bytes=1024)
    server.start()
    try:
        with channel_to(server) as channel:
            stub = edge_pb2_grpc.EdgeServiceStub(channel)
            with pytest.raises(grpc.RpcError) as too_big:
                stub.GetTimeline(edge_pb2.GetTimelineRequest(stream_id="x" * 4096), timeout=10)
            assert too_big.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    finally:
        server.stop(grace_s=0.5)


def test_each_method_refuses_requests_far_larger_than_it_needs_unparsed(
    stub: edge_pb2_grpc.EdgeServiceStub,
) -> None:
    huge_timeline = edge_pb2.GetTimelineRequest(stream_id="x" * 2000)  # 1 kB allowed
    huge_subscribe = edge_pb2.SubscribeRequest(stream_ids=["s" * 60] * 200)  # 8 kB allowed
    huge_prompt = edge_pb2.PromptRequest(text_classes=["sella"] * 4000)  # 16 kB allowed
    for call, limit in (
        (lambda: stub.GetTimeline(huge_timeline, timeout=10), 1024),
        (lambda: next(stub.Subscribe(huge_subscribe, timeout=10)), 8192),
        (lambda: stub.Prompt(huge_prompt, timeout=10), 16384),
    ):
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert f"at most {limit} bytes" in str(refused.value.details())
    # Requests of a normal size go through as before.
    with pytest.raises(grpc.RpcError) as missing:
        stub.GetTimeline(edge_pb2.GetTimelineRequest(stream_id="or1"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND


def test_a_taken_port_is_a_clear_error(hub: ResultHub, server: EdgeGrpcServer) -> None:
    second = EdgeGrpcServer(hub, sample_status, f"127.0.0.1:{server.port}")
    with pytest.raises(OrstreamError, match=f"cannot listen for gRPC on 127.0.0.1:{server.port}"):
        second.start()


def test_calls_are_counted_per_method_and_code(
    hub: ResultHub, server: EdgeGrpcServer, stub: edge_pb2_grpc.EdgeServiceStub
) -> None:
    stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=10)
    stub.GetStatus(edge_pb2.GetStatusRequest(), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.GetTimeline(edge_pb2.GetTimelineRequest(stream_id="nobody"), timeout=10)
    with pytest.raises(grpc.RpcError):
        stub.Prompt(edge_pb2.PromptRequest(), timeout=10)  # no segmenter here
    call = stub.Subscribe(edge_pb2.SubscribeRequest(kinds=["masks"]), timeout=10)
    with pytest.raises(grpc.RpcError):
        next(call)
    deadline = time.monotonic() + 5
    wanted = {
        ("EdgeService/GetStatus", "OK"): 2,
        ("EdgeService/GetTimeline", "NOT_FOUND"): 1,
        ("EdgeService/Prompt", "FAILED_PRECONDITION"): 1,
        ("EdgeService/Subscribe", "INVALID_ARGUMENT"): 1,
    }
    while server.requests.snapshot() != wanted and time.monotonic() < deadline:
        time.sleep(0.05)  # a call is counted as the server finishes it
    assert server.requests.snapshot() == wanted
