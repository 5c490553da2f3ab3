"""A bounded writer that batches telemetry to the session store, off the event loop.

Handlers hand over items without waiting for the store:

- `submit(items)` (the events API) takes all of them or none: with no room it raises
  RateLimited (429 with Retry-After), so the player keeps its events and sends them again.
- `submit_durably(items)` (the events API) submits, then waits until every item is written
  (to the store, or to the durable spool behind it): the events API acknowledges (202) only
  then, so an edge killed with SIGKILL has lost nothing it acknowledged. False when the items
  were dropped or the wait ran out; the player sends them again (writes are idempotent).
- `offer(item)` (CMCD samples and segment deliveries, on the playback path) never fails a
  request: with no room the item is dropped and counted (edge_telemetry_dropped).

A background task writes batches of up to `max_batch` items every `flush_interval_s` (or as
soon as a batch is full) through `sink.write_batch(items)` in a thread of its own. A batch the
sink refuses stays in memory and is retried with exponential backoff; it counts against the
capacity like waiting items, so memory stays bounded however long the store is down, and
nothing is dropped silently. Writing a batch again is safe: every item is idempotent.

Time comes from the injected clock; tests drive `flush()` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from cdn_edge.errors import RateLimited
from cdn_edge.telemetry.metrics import TelemetryMetrics
from streamer.errors import StreamerError
from streamer.telemetry.model import CmcdSample, PlayerEvent, TelemetryItem

logger = logging.getLogger(__name__)

# Items per write when the store does not say (SessionStore.telemetry_batch_items).
DEFAULT_MAX_BATCH = 500
DEFAULT_FLUSH_INTERVAL_S = 0.25  # events reach the store within a quarter second
WRITE_TIMEOUT_S = 10.0  # a write slower than this is treated as failed and retried
CLOSE_TIMEOUT_S = 5.0  # shutdown waits this long for a last write
BACKOFF_INITIAL_S = 0.5
BACKOFF_MAX_S = 30.0
MAX_RETRY_AFTER_S = 60
# The events API waits this long for its events to be written before answering 503 (the
# player sends them again): a slow store is given up for the spool after 5 s.
DURABLE_WAIT_S = 8.0
# A batch failing this often with something other than a storage error (a bug, a poison item)
# is given up, counted and logged, rather than blocking all telemetry behind it forever.
MAX_FOREIGN_FAILURES = 5


class TelemetrySink(Protocol):
    """Where batches go: the session store (through the sink), or later a durable spool."""

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        """Write every item (blocking; idempotent). Raises on failure; the batch is retried."""
        ...


def item_kind(item: TelemetryItem) -> str:
    if isinstance(item, PlayerEvent):
        return "event"
    if isinstance(item, CmcdSample):
        return "cmcd"
    return "delivery"


def _retrieve(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()


class TelemetryWriter:
    """Holds at most `capacity` items and writes them in batches through the sink."""

    def __init__(
        self,
        sink: TelemetrySink,
        capacity: int,
        metrics: TelemetryMetrics,
        clock: Callable[[], float],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S,
        write_timeout_s: float = WRITE_TIMEOUT_S,
        durable_wait_s: float = DURABLE_WAIT_S,
    ) -> None:
        if capacity < 1 or max_batch < 1:
            raise ValueError(f"capacity ({capacity}) and max_batch ({max_batch}) must be >= 1")
        self.capacity = capacity
        self._sink = sink
        self._metrics = metrics
        self._clock = clock
        self._max_batch = max_batch
        self._flush_interval_s = flush_interval_s
        self._write_timeout_s = write_timeout_s
        self.durable_wait_s = durable_wait_s
        self._queue: deque[TelemetryItem] = deque()
        self._batch: list[TelemetryItem] | None = None  # being written, or to be retried
        self._in_flight: asyncio.Future[None] | None = None  # the thread's write of _batch
        self._failures = 0
        self._retry_at = 0.0
        self._lock = asyncio.Lock()
        self._has_items = asyncio.Event()
        self._batch_full = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # One thread: batches reach the store in order, and a hung store holds one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-telemetry")
        # Items leave the queue in order, so a count names each: items taken so far, items
        # settled (written or dropped) so far, and who waits for which range [start, end).
        self._taken = 0
        self._settled = 0
        self._waiters: deque[tuple[int, int, asyncio.Future[bool]]] = deque()
        metrics.gauges.watch(metrics.queued, lambda: self.held)

    @property
    def held(self) -> int:
        """Items in memory: waiting, being written or waiting for a retry."""
        return len(self._queue) + (len(self._batch) if self._batch is not None else 0)

    def retry_after_s(self) -> int:
        """Seconds a refused caller should wait: the backoff left, at least one."""
        left = self._retry_at - self._clock() if self._batch is not None else 0.0
        return max(1, min(MAX_RETRY_AFTER_S, math.ceil(left)))

    def submit(self, items: Sequence[TelemetryItem]) -> None:
        """Take all of `items`, or raise RateLimited (429) and take none."""
        if len(items) > self.capacity - self.held:
            raise RateLimited(
                f"the telemetry queue holds {self.held} of {self.capacity} items and cannot "
                f"take {len(items)} more; send them again later",
                self.retry_after_s(),
            )
        self._queue.extend(items)
        self._taken += len(items)
        self._wake()

    async def submit_durably(
        self, items: Sequence[TelemetryItem], timeout_s: float | None = None
    ) -> bool:
        """Submit `items` (RateLimited as `submit`), then wait until all are written.

        True once they are in the store or the spool; False if any was dropped or `timeout_s`
        (by default `durable_wait_s`) passed first (they stay queued and may still be written).
        """
        self.submit(items)
        if not items:
            return True
        written = asyncio.get_running_loop().create_future()
        self._waiters.append((self._taken - len(items), self._taken, written))
        try:
            async with asyncio.timeout(self.durable_wait_s if timeout_s is None else timeout_s):
                return bool(await written)
        except TimeoutError:
            return False

    def _settle(self, count: int, written: bool) -> None:
        """The next `count` items were written (or dropped): answer who waited for them."""
        self._settled += count
        while self._waiters:
            start, end, future = self._waiters[0]
            if end > self._settled and (written or start >= self._settled):
                break  # its items are not all settled, and none of them was dropped
            self._waiters.popleft()
            if not future.done():
                future.set_result(written and end <= self._settled)

    def offer(self, item: TelemetryItem) -> bool:
        """Take `item` if there is room; otherwise count it dropped. Never raises."""
        if self.held >= self.capacity:
            self._metrics.dropped.labels(item_kind(item), "queue_full").inc()
            return False
        self._queue.append(item)
        self._taken += 1
        self._wake()
        return True

    def _wake(self) -> None:
        self._has_items.set()
        if len(self._queue) >= self._max_batch:
            self._batch_full.set()

    async def flush(self, timeout_s: float | None = None) -> int:
        """Write one batch now (the one to retry first, if its backoff has passed).

        Returns the number of items written: 0 when there was nothing to write, the retry is
        not due yet, or the write failed (the batch is then kept for a later retry).
        """
        async with self._lock:
            if self._batch is None:
                if not self._queue:
                    return 0
                count = min(self._max_batch, len(self._queue))
                self._batch = [self._queue.popleft() for _ in range(count)]
            elif self._clock() < self._retry_at:
                return 0
            batch = self._batch
            loop = asyncio.get_running_loop()
            write = loop.run_in_executor(self._executor, self._sink.write_batch, batch)
            write.add_done_callback(_retrieve)  # an outcome nobody awaits is not an error
            self._in_flight = write
            try:
                # asyncio.timeout, not wait_for: in 3.11 wait_for swallows a cancellation
                # that arrives as the write completes, and close() would wait forever.
                # Shielded: a cancelled wait leaves the write's outcome for close() to see.
                async with asyncio.timeout(
                    self._write_timeout_s if timeout_s is None else timeout_s
                ):
                    await asyncio.shield(write)
            except Exception as exc:
                self._failed(batch, exc)
                return 0
            self._written(batch)
            return len(batch)

    def _written(self, batch: list[TelemetryItem]) -> None:
        self._batch = None
        self._in_flight = None
        self._failures = 0
        self._retry_at = 0.0
        self._settle(len(batch), written=True)
        # One increment per kind, not per item: each is a lock (and, with workers, a write
        # into the shared metrics file).
        for kind, count in Counter(map(item_kind, batch)).items():
            self._metrics.written.labels(kind).inc(count)

    def _failed(self, batch: list[TelemetryItem], exc: Exception) -> None:
        self._failures += 1
        self._metrics.write_failures.inc()
        expected = isinstance(exc, StreamerError | TimeoutError)
        if not expected and self._failures >= MAX_FOREIGN_FAILURES:
            logger.error(
                "telemetry batch of %d items failed %d times with an unexpected error; "
                "giving it up",
                len(batch),
                self._failures,
                exc_info=exc,
            )
            for item in batch:
                self._metrics.dropped.labels(item_kind(item), "rejected").inc()
            self._settle(len(batch), written=False)
            self._batch = None
            self._failures = 0
            self._retry_at = 0.0
            return
        backoff = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2 ** (self._failures - 1))
        self._retry_at = self._clock() + backoff
        logger.warning(
            "telemetry batch of %d items not written (attempt %d): %s; retrying in %.1f s",
            len(batch),
            self._failures,
            exc if expected else repr(exc),
            backoff,
            exc_info=None if expected else exc,
        )

    # The background task

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="telemetry")

    async def _run(self) -> None:
        while not self._closing:
            try:
                await self._wait_for_work()
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # the loop must outlive any one failure
                logger.exception("telemetry writer loop failed; going on")
                await asyncio.sleep(self._flush_interval_s)

    async def _wait_for_work(self) -> None:
        if self._batch is not None:
            delay = self._retry_at - self._clock()
            if delay > 0:
                await asyncio.sleep(min(delay, 1.0))
            return
        if not self._queue:
            self._has_items.clear()
            await self._has_items.wait()
        if len(self._queue) < self._max_batch:
            self._batch_full.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._flush_interval_s):
                    await self._batch_full.wait()

    async def close(self) -> None:
        """Stop the task, try once more to write what is held, count the rest as dropped."""
        self._closing = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            self._has_items.set()  # and should the cancellation be lost, wake it to see
            self._batch_full.set()  # _closing
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
            if not task.done():
                logger.error("the telemetry writer task did not stop within %s s", CLOSE_TIMEOUT_S)
        deadline = asyncio.get_running_loop().time() + CLOSE_TIMEOUT_S
        write, batch = self._in_flight, self._batch
        if write is not None and batch is not None:
            # The task was stopped while its write was in the thread: let that write finish
            # rather than write the batch a second time beside it (and count it twice).
            await asyncio.wait({write}, timeout=CLOSE_TIMEOUT_S)
            if write.done() and not write.cancelled() and write.exception() is None:
                self._written(batch)
        while self.held:
            self._retry_at = 0.0
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0 or not await self.flush(timeout_s=left):
                break
        if self.held:
            logger.warning("shutting down with %d telemetry items not written", self.held)
            for item in (*(self._batch or ()), *self._queue):
                self._metrics.dropped.labels(item_kind(item), "shutdown").inc()
            self._settle(self.held, written=False)
            self._batch = None
            self._queue.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
