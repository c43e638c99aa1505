"""The result hub: every subscriber gets what it asked for in order, a stalled one only loses."""

import dataclasses
import threading
import time

import numpy as np
import pytest
from edge_samples import result

from orstream.edge.service.result_hub import ResultHub, Subscription
from orstream.results import (
    FrameResult,
    SegmentationResult,
    SegmentMask,
)
from orstream.segmentation.mask_rle import encode_mask
from orstream.step_timeline import StepSegment


def drain(subscription: Subscription) -> list[FrameResult]:
    out = []
    while (item := subscription.get(timeout_s=0)) is not None:
        out.append(item)
    return out


def test_subscriber_gets_every_result_in_order() -> None:
    hub = ResultHub()
    subscription = hub.subscribe(capacity=1000)
    published = [result(i, stream_id=f"cam{i % 3}") for i in range(500)]
    for item in published:
        hub.publish(item)
    assert drain(subscription) == published
    assert subscription.dropped == 0


def with_masks(item: FrameResult) -> FrameResult:
    mask = SegmentMask(16, "suction", 0.9, encode_mask(np.eye(4, dtype=bool)), (0, 0, 4, 4))
    return dataclasses.replace(item, segmentation=SegmentationResult((mask,)))


def test_filters_by_stream_and_kind_and_leaves_out_other_kinds() -> None:
    hub = ResultHub()
    default = hub.subscribe()
    cam1_steps = hub.subscribe(stream_ids=["cam1"], kinds=["step"])
    instruments = hub.subscribe(kinds=["instruments"])
    everything = hub.subscribe(kinds=["step", "instruments", "segmentation"])
    masks = hub.subscribe(kinds=["segmentation"])
    published = [
        result(0, "cam0"),
        result(1, "cam1"),
        result(2, "cam1", step=None),
        result(3, "cam1", instruments=None),
        with_masks(result(4, "cam2", step=None, instruments=None)),
        with_masks(result(5, "cam2")),
    ]
    for item in published:
        hub.publish(item)

    assert drain(everything) == published
    # Masks are large: a subscriber that names no kind gets steps and instruments only.
    plain = drain(default)
    assert [r.index for r in plain] == [0, 1, 2, 3, 5]
    assert all(r.segmentation is None for r in plain)
    assert plain[-1].step == published[-1].step
    assert [(r.index, r.step, r.segmentation) for r in drain(masks)] == [
        (4, None, published[4].segmentation),
        (5, None, published[5].segmentation),
    ]
    steps = drain(cam1_steps)
    assert [r.index for r in steps] == [1, 3]
    assert all(r.step is not None and r.instruments is None for r in steps)
    assert steps[0].step == published[1].step
    seen = drain(instruments)
    assert [(r.stream_id, r.index) for r in seen] == [
        ("cam0", 0),
        ("cam1", 1),
        ("cam1", 2),
        ("cam2", 5),
    ]
    assert all(r.step is None and r.instruments is not None for r in seen)


def test_full_buffer_drops_the_oldest_and_counts() -> None:
    hub = ResultHub()
    subscription = hub.subscribe(capacity=8)
    for i in range(100):
        hub.publish(result(i))
    assert subscription.pending == 8
    assert subscription.dropped == 92
    assert [r.index for r in drain(subscription)] == list(range(92, 100))


def test_stalled_subscriber_slows_neither_publish_nor_other_subscribers() -> None:
    hub = ResultHub()
    stalled = hub.subscribe(capacity=16)
    reader = hub.subscribe(capacity=10_000)
    count = 10_000
    received: list[int] = []

    def read() -> None:
        while len(received) < count:
            item = reader.get(timeout_s=10)
            if item is None:
                return
            received.append(item.index)

    thread = threading.Thread(target=read)
    thread.start()
    started = time.perf_counter()
    for i in range(count):
        hub.publish(result(i))
    publish_s = time.perf_counter() - started
    thread.join(timeout=30)

    print(f"{count} publishes with a stalled subscriber: {publish_s * 1e3:.1f} ms")
    assert received == list(range(count))
    assert stalled.pending == 16
    assert stalled.dropped == count - 16
    assert [r.index for r in drain(stalled)] == list(range(count - 16, count))


def test_concurrent_publishers_keep_each_stream_in_order() -> None:
    hub = ResultHub()
    subscription = hub.subscribe(capacity=100_000)
    per_stream = 2_000
    threads = [
        threading.Thread(
            target=lambda s=stream: [hub.publish(result(i, s)) for i in range(per_stream)]
        )
        for stream in ("cam0", "cam1", "cam2", "cam3")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    got = drain(subscription)
    assert len(got) == 4 * per_stream
    for stream in ("cam0", "cam1", "cam2", "cam3"):
        assert [r.index for r in got if r.stream_id == stream] == list(range(per_stream))
    assert set(hub.streams()) == {"cam0", "cam1", "cam2", "cam3"}


def test_get_waits_for_a_result_and_times_out() -> None:
    hub = ResultHub()
    subscription = hub.subscribe()
    assert subscription.get(timeout_s=0.05) is None
    timer = threading.Timer(0.05, hub.publish, args=(result(7),))
    timer.start()
    got = subscription.get(timeout_s=10)
    timer.join()
    assert got is not None and got.index == 7


def test_close_wakes_a_waiting_reader_and_stops_delivery() -> None:
    hub = ResultHub()
    subscription = hub.subscribe()
    outcome: list[FrameResult | None] = []
    thread = threading.Thread(target=lambda: outcome.append(subscription.get(timeout_s=None)))
    thread.start()
    time.sleep(0.05)
    subscription.close()
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert outcome == [None]
    hub.publish(result(1))
    assert subscription.closed
    assert subscription.pending == 0


def test_hub_close_ends_every_subscription_after_its_buffer() -> None:
    hub = ResultHub()
    first, second = hub.subscribe(), hub.subscribe(stream_ids=["cam9"])
    hub.publish(result(0))
    hub.close()
    assert first.closed and second.closed
    assert [r.index for r in drain(first)] == [0]
    assert first.get(timeout_s=None) is None
    late = hub.subscribe()
    assert late.closed and late.get(timeout_s=None) is None
    # Publishing goes on feeding the timelines.
    hub.publish(result(1))
    assert hub.timeline("cam0")[-1].end_index == 1


def test_timeline_per_stream() -> None:
    hub = ResultHub()
    steps = [1, 1, 1, 2, 2, -1, 2]
    for i, step in enumerate(steps):
        hub.publish(result(i, "cam0", step=step))
        hub.publish(result(i, "cam1", step=None))
    assert hub.timeline("cam0") == (
        StepSegment(1, 0, 2, 0, 80_000_000),
        StepSegment(2, 3, 4, 120_000_000, 160_000_000),
        StepSegment(-1, 5, 5, 200_000_000, 200_000_000),
        StepSegment(2, 6, 6, 240_000_000, 240_000_000),
    )
    assert hub.timeline("cam1") == ()
    assert hub.streams() == ("cam0", "cam1")
    with pytest.raises(KeyError):
        hub.timeline("cam2")


def test_bad_subscriptions_are_refused() -> None:
    hub = ResultHub()
    with pytest.raises(ValueError, match="unknown result kind 'masks'"):
        hub.subscribe(kinds=["step", "masks"])
    with pytest.raises(ValueError, match="at least 1"):
        hub.subscribe(capacity=0)
