"""The durable spool in the edge's telemetry path, for while the session store is slow or down.

    TelemetryWriter ──write_batch──▶ SpoolingSink ──(spool empty)──▶ SessionStoreSink ──▶ store
                                          │ store refused or slow        ▲
                                          ▼                              │ in order, backing off
                                    TelemetrySpool (disk) ──▶ SpoolReplayer

While the spool is empty, a batch goes to the store directly, waiting at most
`DIRECT_WRITE_TIMEOUT_S`; if the store refuses it (a StreamerError) or is slower than that,
the batch is appended to the spool and the writer moves on. While the spool holds anything,
new batches are appended behind it, so the store receives batches in the order the edge took
them (after a restart, the previous process's spool first). The replayer writes the oldest
spooled batch, acknowledges it, and goes on; failures back off exponentially. Store calls of
both run in one thread of their own, one at a time, as the store's sink expects.

When the spool is full, `write_batch` raises SpoolFull (a StorageError): the writer keeps the
batch in memory and retries, its queue fills, and the events API answers 429 with Retry-After,
so events are refused rather than dropped. Replays are safe to repeat: every store write is
idempotent (events by id, plays by LWT).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge

from cdn_edge.gauge_readers import GaugeReaders
from cdn_edge.telemetry.writer import (
    BACKOFF_INITIAL_S,
    MAX_FOREIGN_FAILURES,
    TelemetrySink,
    item_kind,
)
from streamer.errors import StreamerError
from streamer.telemetry.model import TelemetryItem
from streamer.telemetry.spool import SpooledBatch, TelemetrySpool

logger = logging.getLogger(__name__)

# A batch the store takes longer than this over goes to the spool (the writer itself gives
# up after 10 s): a healthy store writes a 500-item batch and its play checks in well under.
DIRECT_WRITE_TIMEOUT_S = 5.0
# At shutdown the writer's last flush has 5 s in all: a store that does not answer within
# this gets the batch spooled (for the next start) rather than lost.
SHUTDOWN_DIRECT_TIMEOUT_S = 1.0
REPLAY_TIMEOUT_S = 30.0  # one replayed batch: the store's own timeouts (10 s) come first
IDLE_POLL_S = 5.0  # the replayer looks at an empty spool this often even without a wake-up
# The replayer's longest wait between tries while the store refuses. A try against a store
# that is down fails at once (the driver knows no node), so trying often costs nothing; the
# writer's 30 s made the spool wait up to half a minute after the store came back (the chaos
# suite's Cassandra kill). The store back, replay resumes within this plus the driver's own
# reconnect (settings.cql_reconnect_max_s).
REPLAY_BACKOFF_MAX_S = 5.0

Sleep = Callable[[float], Awaitable[None]]


class SpoolMetrics:
    """The spool's series, on the edge's registry."""

    def __init__(self, registry: CollectorRegistry, gauges: GaugeReaders | None = None) -> None:
        r = registry
        self.gauges = gauges if gauges is not None else GaugeReaders()
        # With workers, each has its own spool: bytes, batches and lost bytes add up; the
        # alarm is on while any worker's is, and each worker has the whole capacity.
        self.bytes = Gauge(
            "edge_telemetry_spool_bytes",
            "Bytes of telemetry spooled on disk",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.capacity = Gauge(
            "edge_telemetry_spool_capacity_bytes",
            "The most one worker's spool holds; when full, the events API answers 429",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.batches = Gauge(
            "edge_telemetry_spool_batches",
            "Batches spooled and not yet replayed",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.alarm = Gauge(
            "edge_telemetry_spool_alarm",
            "1 while a spool is over 80 % full (cleared below 70 %)",
            registry=r,
            multiprocess_mode="livemax",
        )
        self.spooled = Counter(
            "edge_telemetry_spooled",
            "Telemetry items spooled because the store refused or was slow, by kind",
            ["kind"],
            registry=r,
        )
        self.replayed = Counter(
            "edge_telemetry_replayed",
            "Spooled telemetry items the store took, by kind",
            ["kind"],
            registry=r,
        )
        self.skipped = Counter(
            "edge_telemetry_spool_skipped",
            "Spooled items given up after failing with an unexpected error, by kind (logged)",
            ["kind"],
            registry=r,
        )
        self.lost_bytes = Gauge(
            "edge_telemetry_spool_lost_bytes",
            "Spool bytes cut as torn or corrupt since start (each also logged)",
            registry=r,
            multiprocess_mode="livesum",
        )

    def watch(self, spool: TelemetrySpool) -> None:
        self.gauges.watch(self.bytes, lambda: spool.bytes_on_disk)
        self.capacity.set(spool.max_bytes)
        self.gauges.watch(self.batches, lambda: spool.pending)
        self.gauges.watch(self.alarm, lambda: float(spool.alarm))
        self.gauges.watch(self.lost_bytes, lambda: spool.lost_bytes)


class SpoolingSink:
    """TelemetrySink: the store while it keeps up, the spool when it does not."""

    def __init__(
        self,
        store_sink: TelemetrySink,
        spool: TelemetrySpool,
        metrics: SpoolMetrics,
        *,
        direct_timeout_s: float = DIRECT_WRITE_TIMEOUT_S,
    ) -> None:
        self.spool = spool
        self.store_sink = store_sink
        self._metrics = metrics
        self.direct_timeout_s = direct_timeout_s
        # One thread for every store call, direct or replayed: a hung store holds one thread.
        self.store_calls = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-spool")
        self._busy: concurrent.futures.Future[None] | None = None
        self.wake: Callable[[], object] = lambda: None  # set by the replayer

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        """Runs in the writer's thread. Raises SpoolFull when neither store nor spool takes it."""
        if self.spool.is_empty() and (self._busy is None or self._busy.done()):
            call = self.store_calls.submit(self.store_sink.write_batch, items)
            try:
                call.result(timeout=self.direct_timeout_s)
                return
            except concurrent.futures.TimeoutError:
                self._busy = call  # let it finish; the spooled copy is written again later
                logger.warning(
                    "session store took over %.1f s for %d telemetry items; spooling them",
                    self.direct_timeout_s,
                    len(items),
                )
            except StreamerError as exc:
                logger.warning(
                    "session store refused %d telemetry items (%s); spooling them", len(items), exc
                )
        self.spool.append(items)
        for item in items:
            self._metrics.spooled.labels(item_kind(item)).inc()
        self.wake()

    def close(self) -> None:
        self.store_calls.shutdown(wait=False, cancel_futures=True)


class SpoolReplayer:
    """A background task writing spooled batches to the store, oldest first."""

    def __init__(
        self,
        sink: SpoolingSink,
        metrics: SpoolMetrics,
        *,
        sleep: Sleep = asyncio.sleep,
        replay_timeout_s: float = REPLAY_TIMEOUT_S,
    ) -> None:
        self._sink = sink
        self._spool = sink.spool
        self._metrics = metrics
        self._sleep = sleep
        self._timeout_s = replay_timeout_s
        self._call: tuple[tuple[int, int], concurrent.futures.Future[None]] | None = None
        self._failures = 0
        self._foreign_failures = 0
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @property
    def spool(self) -> TelemetrySpool:
        return self._spool

    async def open(self) -> None:
        """Recover what a previous process spooled (reads the spool, in a thread)."""
        await asyncio.to_thread(self._spool.open)

    def start(self) -> None:
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._sink.wake = lambda: loop.call_soon_threadsafe(self._wake.set)
            self._task = loop.create_task(self._run(), name="telemetry-replay")

    async def stop(self) -> None:
        """Stop replaying; what is spooled stays on disk for the next start. From now on the
        sink waits less for the store, so the writer's last flush lands somewhere."""
        self._sink.wake = lambda: None
        self._sink.direct_timeout_s = min(self._sink.direct_timeout_s, SHUTDOWN_DIRECT_TIMEOUT_S)
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def close(self) -> None:
        """After the writer's last flush: close the spool and the store thread."""
        self._spool.close()
        self._sink.close()

    async def replay_one(self) -> bool:
        """Write the oldest spooled batch to the store; True if one was written."""
        batch = await asyncio.to_thread(self._spool.peek)
        if batch is None:
            return False
        where = (batch.segment, batch.start)
        if self._call is None or self._call[0] != where:
            store = self._sink.store_sink
            self._call = (where, self._sink.store_calls.submit(store.write_batch, batch.items))
        call = self._call[1]
        try:
            # Shielded: a call that outlives the timeout runs on and is waited for again,
            # rather than piling up copies behind it in the store's thread. asyncio.timeout, not
            # wait_for: Python 3.11's wait_for returns the call's outcome when the call ends
            # as the task is cancelled, so a stop was swallowed and the replayer ran on.
            async with asyncio.timeout(self._timeout_s):
                await asyncio.shield(asyncio.wrap_future(call))
        except TimeoutError:
            raise  # the call is kept: the next attempt waits for it
        except BaseException:
            self._call = None
            raise
        self._call = None
        await asyncio.to_thread(self._spool.ack, batch)
        for item in batch.items:
            self._metrics.replayed.labels(item_kind(item)).inc()
        return True

    async def _run(self) -> None:
        while True:
            try:
                if await self.replay_one():
                    self._failures = self._foreign_failures = 0
                    continue
                self._wake.clear()
                if await asyncio.to_thread(self._spool.is_empty):
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(IDLE_POLL_S):
                            await self._wake.wait()
            except asyncio.CancelledError:
                raise
            except (StreamerError, TimeoutError) as exc:
                await self._back_off(exc)
            except Exception as exc:  # a bug or a poison batch: do not wedge the spool on it
                self._foreign_failures += 1
                if self._foreign_failures >= MAX_FOREIGN_FAILURES:
                    await self._give_up(exc)
                else:
                    await self._back_off(exc)

    async def _back_off(self, exc: BaseException) -> None:
        self._failures += 1
        delay = min(REPLAY_BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (self._failures - 1))
        logger.warning(
            "replaying spooled telemetry failed (attempt %d): %s; next try in %.1f s",
            self._failures,
            exc,
            delay,
        )
        await self._sleep(delay)

    async def _give_up(self, exc: BaseException) -> None:
        batch: SpooledBatch | None = await asyncio.to_thread(self._spool.peek)
        if batch is not None:
            logger.error(
                "spooled telemetry batch of %d items failed %d times with an unexpected error;"
                " skipping it",
                len(batch.items),
                self._foreign_failures,
                exc_info=exc,
            )
            await asyncio.to_thread(self._spool.ack, batch)
            for item in batch.items:
                self._metrics.skipped.labels(item_kind(item)).inc()
        self._foreign_failures = 0
        self._call = None


# The edge's replayer, None when it runs without a spool.
REPLAYER: web.AppKey[SpoolReplayer | None] = web.AppKey("telemetry_replayer")
