"""The telemetry benchmark's measured side: the edge's writer over the Scylla session store.

The edge's own parts, composed as `cdn_edge.app` composes them: a `TelemetryWriter` (its
capacity, batch size and flush interval) over a `SessionStoreSink` (plays and QoE decided from
what the store holds) over the session store (`ScyllaSessionStore`; tests pass any). One
asyncio producer on uvloop stands in for the events API: it submits each request's events as
a handler does, returns to the event loop after each, and when the writer answers 429
(RateLimited) waits `RETRY_WAIT_S` and sends the same request again, counting the wait.

Measured: events acknowledged by the sink over the time from the first submit to the last
acknowledgement (the final drain included); the time of each accepted `submit()` call on the
loop; the event loop's lag (a timer's lateness, what every request on the loop would wait);
the sink's batches; the store's time in writes and in the sink's play-check reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from prometheus_client import CollectorRegistry

from benchmarks.histogram import LogHistogram
from benchmarks.telemetry_workload import Workload
from cdn_edge.errors import RateLimited
from cdn_edge.telemetry.metrics import TelemetryMetrics
from cdn_edge.telemetry.sink import SessionStoreSink
from cdn_edge.telemetry.writer import (
    DEFAULT_FLUSH_INTERVAL_S,
    TelemetrySink,
    TelemetryWriter,
)
from streamer.sessions.port import PlayRecount, SessionStore
from streamer.telemetry.model import (
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
    TelemetryItem,
)

# The producer stands in for thousands of players: one of them always has an event to send,
# so it comes back as soon as there may be room, not after Retry-After (>= 1 s), which would
# measure the players' patience rather than the writer.
RETRY_WAIT_S = 0.005
LAG_TICK_S = 0.010  # the loop-lag timer's period
DRAIN_TIMEOUT_S = 60.0  # after the producer stops, what is held must be written by then
SEED_CHUNK = 2000  # deliveries per store call when storing them before the clock starts


@dataclass
class StoreTimes:
    """Seconds the sink spent in each store call (its one thread), and how many calls."""

    seconds: dict[str, float] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def add(self, name: str, started: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - started
        self.calls[name] += 1


class TimedStore:
    """The session store's telemetry and play ledger, timing each call the sink makes."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.times = StoreTimes()
        self.telemetry_batch_items = inner.telemetry_batch_items

    def write_telemetry(self, batch: TelemetryBatch) -> None:
        started = time.perf_counter()
        try:
            self.inner.write_telemetry(batch)
        finally:
            self.times.add("writes", started)

    def claim_plays(self, plays: Sequence[PlayClaim]) -> tuple[PlayClaim, ...]:
        started = time.perf_counter()
        try:
            return self.inner.claim_plays(plays)
        finally:
            self.times.add("claims", started)

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        started = time.perf_counter()
        try:
            return self.inner.session_telemetry(session_id)
        finally:
            self.times.add("reads", started)

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        started = time.perf_counter()
        try:
            return self.inner.events_of(session_ids)
        finally:
            self.times.add("reads", started)

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        started = time.perf_counter()
        try:
            return self.inner.deliveries_of(session_ids)
        finally:
            self.times.add("reads", started)

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        return self.inner.plays_by_day(track_id, first, last)

    def recount_plays(self, track_id: str, day: date) -> PlayRecount:
        return self.inner.recount_plays(track_id, day)

    def recount_due(self, day: date) -> tuple[PlayRecount, ...]:
        return self.inner.recount_due(day)

    def close(self) -> None:  # the store outlives the run
        pass


class AckingSink:
    """The edge's sink, counting the events it acknowledged and when (in the writer's thread);
    `drained` is set once `expect(total)` events are acknowledged."""

    def __init__(self, inner: TelemetrySink, loop: asyncio.AbstractEventLoop) -> None:
        self.inner = inner
        self.acked = 0
        self.last_ack = 0.0
        self.batch_items: list[int] = []
        self.batch_us = LogHistogram()
        self.drained = asyncio.Event()
        self._loop = loop
        self._lock = threading.Lock()
        self._expected: int | None = None

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        started = time.perf_counter()
        self.inner.write_batch(items)
        ended = time.perf_counter()
        with self._lock:
            self.last_ack = ended
            self.batch_us.record_seconds(ended - started)
            self.batch_items.append(len(items))
            self.acked += sum(1 for item in items if isinstance(item, PlayerEvent))
            reached = self._expected is not None and self.acked >= self._expected
        if reached:
            self._loop.call_soon_threadsafe(self.drained.set)

    def expect(self, total: int) -> None:
        """On the loop: set `drained` when `total` events are acknowledged."""
        with self._lock:
            self._expected = total
            reached = self.acked >= total
        if reached:
            self.drained.set()


def store_deliveries(store: SessionStore, workload: Workload) -> float:
    """Store the segment deliveries of the workload's sessions; the seconds it took."""
    started = time.perf_counter()
    items = workload.deliveries
    for start in range(0, len(items), SEED_CHUNK):
        store.write_telemetry(TelemetryBatch(deliveries=items[start : start + SEED_CHUNK]))
    return time.perf_counter() - started


async def _watch_lag(hist: LogHistogram, stop: asyncio.Event) -> None:
    while not stop.is_set():
        before = time.perf_counter()
        await asyncio.sleep(LAG_TICK_S)
        hist.record_seconds(max(0.0, time.perf_counter() - before - LAG_TICK_S))


@dataclass
class _Produced:
    events: Counter[str] = field(default_factory=Counter)  # submitted, by session
    requests: int = 0
    waits: int = 0
    cut_by_deadline: bool = False


async def _produce(
    writer: TelemetryWriter,
    requests: Sequence[tuple[PlayerEvent, ...]],
    deadline: float,
    enqueue_us: LogHistogram,
) -> _Produced:
    produced = _Produced()
    for request in requests:
        while True:
            if time.perf_counter() >= deadline:
                produced.cut_by_deadline = True
                return produced
            started = time.perf_counter_ns()
            try:
                writer.submit(request)
            except RateLimited:
                produced.waits += 1
                await asyncio.sleep(RETRY_WAIT_S)
                continue
            enqueue_us.record((time.perf_counter_ns() - started) // 1000)
            break
        produced.requests += 1
        for event in request:
            produced.events[event.session_id] += 1
        await asyncio.sleep(0)  # a handler returns to the loop after each request
    return produced


def _sum_of(registry: CollectorRegistry, name: str, **labels: str) -> float:
    """The sum of a counter's samples with these labels (all of them when none are given)."""
    total = 0.0
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == f"{name}_total" and all(
                sample.labels.get(k) == v for k, v in labels.items()
            ):
                total += sample.value
    return total


def _ms(hist: LogHistogram, scale: float = 1000.0) -> dict[str, float]:
    return {
        "p50": hist.percentile(50) / scale,
        "p99": hist.percentile(99) / scale,
        "max": hist.max / scale,
        "count": hist.count,
    }


async def run_writer(
    store: SessionStore,
    workload: Workload,
    seconds: float,
    *,
    capacity: int,
    max_batch: int | None = None,
    flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
) -> tuple[dict[str, Any], Counter[str]]:
    """Submit the workload for at most `seconds`, then drain; the result and what was
    submitted per session."""
    registry = CollectorRegistry()
    metrics = TelemetryMetrics(registry)
    timed = TimedStore(store)
    if max_batch is None:  # the edge's: the store's own
        max_batch = store.telemetry_batch_items
    sink = AckingSink(SessionStoreSink(timed, timed, metrics), asyncio.get_running_loop())
    writer = TelemetryWriter(
        sink, capacity, metrics, time.time, max_batch=max_batch, flush_interval_s=flush_interval_s
    )
    enqueue_us, lag_us = LogHistogram(), LogHistogram()
    stop_lag = asyncio.Event()
    writer.start()
    lag_task = asyncio.get_running_loop().create_task(_watch_lag(lag_us, stop_lag))
    started = time.perf_counter()
    try:
        produced = await _produce(writer, workload.requests, started + seconds, enqueue_us)
        produce_s = time.perf_counter() - started
        submitted = sum(produced.events.values())
        sink.expect(submitted)
        with contextlib.suppress(TimeoutError):  # what is not written by then is lost
            async with asyncio.timeout(DRAIN_TIMEOUT_S):
                await sink.drained.wait()
                # The last write has returned, but its task may not have seen it yet: a flush
                # waits for it (it takes the writer's lock), since close() would cancel it
                # and write its batch again.
                await writer.flush()
    finally:
        stop_lag.set()
        await lag_task
        await writer.close()
    elapsed = max(sink.last_ack, started) - started
    times = timed.times
    result = {
        "events": submitted,
        "acknowledged": sink.acked,
        "requests": produced.requests,
        "sessions": len(produced.events),
        "cut_by_deadline": produced.cut_by_deadline,
        "elapsed_s": round(elapsed, 3),
        "events_per_s": round(sink.acked / elapsed, 1) if elapsed > 0 else 0.0,
        "produce_s": round(produce_s, 3),
        "drain_s": round(max(0.0, elapsed - produce_s), 3),
        "waits_429": produced.waits,
        "enqueue_us": _ms(enqueue_us, 1.0),
        "loop_lag_ms": _ms(lag_us),
        "batches": len(sink.batch_items),
        "batch_items_mean": round(sum(sink.batch_items) / max(1, len(sink.batch_items)), 1),
        "batch_ms": _ms(sink.batch_us),
        "store_s": {name: round(value, 3) for name, value in times.seconds.items()},
        "store_calls": dict(times.calls),
        "plays_counted": int(_sum_of(registry, "edge_track_plays")),
        "sessions_ended_qoe": int(_sum_of(registry, "edge_track_sessions_ended")),
        "write_failures": int(_sum_of(registry, "edge_telemetry_write_failures")),
        "dropped": int(_sum_of(registry, "edge_telemetry_dropped")),
        "capacity": capacity,
        "max_batch": max_batch,
    }
    return result, produced.events
