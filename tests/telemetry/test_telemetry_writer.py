"""The bounded telemetry writer: batching, backpressure, retries with backoff, shutdown."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest
from prometheus_client import CollectorRegistry

from cdn_edge.errors import RateLimited
from cdn_edge.telemetry.metrics import TelemetryMetrics
from cdn_edge.telemetry.writer import BACKOFF_INITIAL_S, MAX_FOREIGN_FAILURES, TelemetryWriter
from streamer.errors import StorageError
from streamer.telemetry.model import TelemetryItem
from tests.edge.conftest import ManualClock
from tests.telemetry.builders import event


class RecordingSink:
    """Takes batches, or refuses them while `failing` names an exception to raise."""

    def __init__(self) -> None:
        self.batches: list[list[TelemetryItem]] = []
        self.failing: Exception | None = None
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()  # a write has reached the sink

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        self.entered.set()
        assert self.gate.wait(timeout=10)
        if self.failing is not None:
            raise self.failing
        self.batches.append(list(items))

    @property
    def items(self) -> list[TelemetryItem]:
        return [item for batch in self.batches for item in batch]


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def metrics(registry: CollectorRegistry) -> TelemetryMetrics:
    return TelemetryMetrics(registry)


def writer_of(
    sink: RecordingSink, metrics: TelemetryMetrics, clock: ManualClock, **kwargs: int
) -> TelemetryWriter:
    capacity = kwargs.pop("capacity", 100)
    return TelemetryWriter(sink, capacity, metrics, clock, **kwargs)


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_batches_are_bounded_and_in_order(
    sink: RecordingSink,
    metrics: TelemetryMetrics,
    clock: ManualClock,
    registry: CollectorRegistry,
) -> None:
    writer = writer_of(sink, metrics, clock, max_batch=3)
    events = [event("heartbeat", t, t) for t in range(7)]
    writer.submit(events)
    assert writer.held == 7
    assert [await writer.flush() for _ in range(4)] == [3, 3, 1, 0]
    assert [len(b) for b in sink.batches] == [3, 3, 1]
    assert sink.items == events
    assert writer.held == 0
    assert value(registry, "edge_telemetry_written_total", kind="event") == 7
    await writer.close()


async def test_a_full_queue_refuses_whole_requests(
    sink: RecordingSink, metrics: TelemetryMetrics, clock: ManualClock
) -> None:
    writer = writer_of(sink, metrics, clock, capacity=4)
    writer.submit([event("heartbeat", t, t) for t in range(3)])
    with pytest.raises(RateLimited) as refused:
        writer.submit([event("heartbeat", t, t) for t in range(2)])
    assert refused.value.http_status == 429
    assert refused.value.headers() == {"Retry-After": "1"}
    assert "3 of 4" in str(refused.value)
    assert writer.held == 3  # none of the refused request was taken
    writer.submit([event("heartbeat", 9, 9)])  # one still fits
    await writer.close()


async def test_offer_drops_and_counts_when_full(
    sink: RecordingSink,
    metrics: TelemetryMetrics,
    clock: ManualClock,
    registry: CollectorRegistry,
) -> None:
    writer = writer_of(sink, metrics, clock, capacity=2)
    results = [writer.offer(event("heartbeat", t, t)) for t in range(3)]
    assert results == [True, True, False]
    assert value(registry, "edge_telemetry_dropped_total", kind="event", reason="queue_full") == 1
    await writer.close()


async def test_failed_batches_are_kept_and_retried_with_backoff(
    sink: RecordingSink,
    metrics: TelemetryMetrics,
    clock: ManualClock,
    registry: CollectorRegistry,
) -> None:
    writer = writer_of(sink, metrics, clock, capacity=5, max_batch=2)
    events = [event("heartbeat", t, t) for t in range(4)]
    writer.submit(events)
    sink.failing = StorageError("store down")
    assert await writer.flush() == 0
    assert writer.held == 4  # the failed batch still counts against the capacity
    assert await writer.flush() == 0  # its retry is not due yet
    with pytest.raises(RateLimited) as refused:
        writer.submit([event("heartbeat", 9, 9)] * 2)
    assert refused.value.headers() == {"Retry-After": "1"}

    clock.advance(BACKOFF_INITIAL_S)
    assert await writer.flush() == 0  # second failure: the backoff doubles
    clock.advance(BACKOFF_INITIAL_S)
    assert await writer.flush() == 0
    assert value(registry, "edge_telemetry_write_failures_total") == 2

    sink.failing = None
    clock.advance(BACKOFF_INITIAL_S)
    assert await writer.flush() == 2
    assert await writer.flush() == 2  # the rest, with no backoff left
    assert sink.items == events  # nothing lost, nothing reordered
    await writer.close()


async def test_a_poison_batch_is_given_up_after_repeated_unexpected_errors(
    sink: RecordingSink,
    metrics: TelemetryMetrics,
    clock: ManualClock,
    registry: CollectorRegistry,
) -> None:
    writer = writer_of(sink, metrics, clock)
    writer.submit([event("heartbeat", 0, 0)])
    sink.failing = TypeError("a bug")
    for _ in range(MAX_FOREIGN_FAILURES):
        clock.advance(60)
        assert await writer.flush() == 0
    assert writer.held == 0
    assert value(registry, "edge_telemetry_dropped_total", kind="event", reason="rejected") == 1
    await writer.close()


async def test_close_writes_what_it_holds(
    sink: RecordingSink, metrics: TelemetryMetrics, clock: ManualClock
) -> None:
    writer = writer_of(sink, metrics, clock, max_batch=2)
    writer.start()
    writer.submit([event("heartbeat", t, t) for t in range(5)])
    await writer.close()
    assert len(sink.items) == 5


async def test_close_lets_a_write_in_flight_finish_instead_of_writing_it_twice(
    sink: RecordingSink,
    metrics: TelemetryMetrics,
    clock: ManualClock,
    registry: CollectorRegistry,
) -> None:
    writer = writer_of(sink, metrics, clock, max_batch=3)
    sink.gate.clear()  # the first write blocks in the thread
    writer.start()
    writer.submit([event("heartbeat", t, t) for t in range(3)])
    assert await asyncio.to_thread(sink.entered.wait, 5)
    closing = asyncio.create_task(writer.close())
    await asyncio.sleep(0.05)  # close() has stopped the task; the write is still in the thread
    sink.gate.set()
    await closing
    assert len(sink.batches) == 1 and len(sink.items) == 3
    assert value(registry, "edge_telemetry_written_total", kind="event") == 3
    assert writer.held == 0


async def test_close_counts_what_it_could_not_write(
    sink: RecordingSink,
    metrics: TelemetryMetrics,
    clock: ManualClock,
    registry: CollectorRegistry,
) -> None:
    writer = writer_of(sink, metrics, clock)
    writer.submit([event("heartbeat", t, t) for t in range(3)])
    sink.failing = StorageError("store down")
    await writer.close()
    assert value(registry, "edge_telemetry_dropped_total", kind="event", reason="shutdown") == 3


async def test_the_background_task_flushes_without_being_asked(
    sink: RecordingSink, metrics: TelemetryMetrics, clock: ManualClock
) -> None:
    writer = writer_of(sink, metrics, clock, max_batch=2)
    writer.start()
    done = threading.Event()
    original = sink.write_batch

    def write(items: Sequence[TelemetryItem]) -> None:
        original(items)
        done.set()

    sink.write_batch = write  # type: ignore[method-assign]
    writer.submit([event("heartbeat", 0, 0), event("heartbeat", 1, 1)])  # a full batch
    assert await asyncio.to_thread(done.wait, 10)
    assert len(sink.items) == 2
    await writer.close()


async def test_submit_durably_answers_once_its_items_are_written(
    sink: RecordingSink, metrics: TelemetryMetrics, clock: ManualClock
) -> None:
    writer = writer_of(sink, metrics, clock, max_batch=2)
    first = asyncio.create_task(writer.submit_durably([event("heartbeat", t, t) for t in range(3)]))
    second = asyncio.create_task(writer.submit_durably([event("heartbeat", 9, 9)]))
    await asyncio.sleep(0)
    assert await writer.flush() == 2  # two of the first request's three: it still waits
    await asyncio.sleep(0)
    assert not first.done() and not second.done()
    assert await writer.flush() == 2  # its last and the second's only item
    assert await first is True and await second is True
    assert await writer.submit_durably([]) is True
    await writer.close()


async def test_submit_durably_is_false_when_its_items_are_dropped_or_late(
    sink: RecordingSink, metrics: TelemetryMetrics, clock: ManualClock
) -> None:
    writer = writer_of(sink, metrics, clock, max_batch=1)
    assert await writer.submit_durably([event("heartbeat", 0, 0)], timeout_s=0.01) is False
    sink.failing = TypeError("a bug")  # the queued item becomes a poison batch, given up
    poisoned = asyncio.create_task(writer.submit_durably([event("heartbeat", 1, 1)]))
    await asyncio.sleep(0)
    for _ in range(MAX_FOREIGN_FAILURES * 2):
        clock.advance(60)
        await writer.flush()
    assert await poisoned is False
    sink.failing = StorageError("the store is down")  # close() cannot write it: dropped
    closing = asyncio.create_task(writer.submit_durably([event("heartbeat", 2, 2)]))
    await asyncio.sleep(0)
    await writer.close()
    assert await closing is False
