"""Audit entries from the edge, written behind the responses: never on a playback path.

`record(event)` queues the event and returns; it never raises and never waits. A background
task hands the queue, in batches, to the recorder (streamer.audit.recorder) in a thread of
its own: into the audit log, or, while the store is down, into the local spool, where the
next replay (every `REPLAY_INTERVAL_S` while anything is spooled) finds it. A batch that
neither store nor disk takes stays queued and is tried again with backoff.

What can be lost: the events queued in memory (at most `FLUSH_INTERVAL_S` of them) if the
process is killed outright, and events beyond `QUEUE_LIMIT` when store and disk have both
failed for minutes; each is counted (edge_audit_events{outcome="dropped"}) and logged.
Shutdown writes what is queued (to the store or the spool) before the recorder closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from prometheus_client import CollectorRegistry, Counter

from streamer.audit.model import AuditEvent
from streamer.audit.recorder import AuditRecorder

logger = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.25  # an entry reaches the store (or the spool) within a quarter second
MAX_BATCH = 200  # events per append: one transaction, one conditional batch per partition
QUEUE_LIMIT = 50_000  # a minute of a busy worker's sessions, should store and disk both fail
REPLAY_INTERVAL_S = 5.0  # while events are spooled, how often the store is tried again
BACKOFF_MAX_S = 30.0
CLOSE_TIMEOUT_S = 10.0  # shutdown's last writes (a store timeout, then the spool's fsync)


class AuditMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.events = Counter(
            "edge_audit_events",
            "Audit events by outcome: stored, spooled (store down; replayed later), dropped",
            ["outcome"],
            registry=registry,
        )
        self.replayed = Counter(
            "edge_audit_replayed_events",
            "Spooled audit events moved into the store",
            registry=registry,
        )


class AuditWriter:
    """Queues audit events and writes them through `recorder` in the background."""

    def __init__(
        self,
        recorder: AuditRecorder,
        metrics: AuditMetrics,
        clock: Callable[[], float],
        *,
        queue_limit: int = QUEUE_LIMIT,
        flush_interval_s: float = FLUSH_INTERVAL_S,
    ) -> None:
        self.recorder = recorder
        self._metrics = metrics
        self._clock = clock
        self._queue: deque[AuditEvent] = deque()
        self._queue_limit = queue_limit
        self._flush_interval_s = flush_interval_s
        self._has_events = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._failures = 0
        self._retry_at = 0.0
        self._next_replay = 0.0
        self._closed = False
        # One thread: batches reach the recorder in order, and a hung store holds one thread.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="edge-audit")

    @property
    def queued(self) -> int:
        return len(self._queue)

    def record(self, event: AuditEvent) -> None:
        """Queue `event`; never raises, never waits. Safe from the edge's blocking threads too
        (licences are granted there): the deque takes the event, the loop is woken from its own
        thread."""
        if len(self._queue) >= self._queue_limit:
            self._metrics.events.labels("dropped").inc()
            logger.error(
                "audit event %s (%s on %s) dropped: %d events queued, store and spool failing",
                event.event_id,
                event.action,
                event.subject,
                len(self._queue),
            )
            return
        self._queue.append(event)
        loop = self._loop
        try:
            on_loop = loop is None or asyncio.get_running_loop() is loop
        except RuntimeError:  # a thread without a loop
            on_loop = False
        if on_loop:
            self._has_events.set()
        elif loop is not None:
            loop.call_soon_threadsafe(self._has_events.set)

    async def flush(self) -> int:
        """Hand the queued events to the recorder now; how many it kept (store or spool)."""
        kept = 0
        while self._queue and self._clock() >= self._retry_at:
            batch = [self._queue[i] for i in range(min(MAX_BATCH, len(self._queue)))]
            loop = asyncio.get_running_loop()
            try:
                stored = await loop.run_in_executor(self._executor, self.recorder.record, batch)
            except Exception as exc:  # store and spool both refused: keep them queued
                self._failures += 1
                backoff = min(BACKOFF_MAX_S, 0.5 * 2 ** (self._failures - 1))
                self._retry_at = self._clock() + backoff
                logger.error(
                    "%d audit events neither stored nor spooled (%s); retrying in %.1f s",
                    len(batch),
                    exc,
                    backoff,
                )
                return kept
            for _ in batch:
                self._queue.popleft()
            self._failures, self._retry_at = 0, 0.0
            self._metrics.events.labels("stored" if stored else "spooled").inc(len(batch))
            kept += len(batch)
        return kept

    async def replay(self) -> int:
        """Move spooled events into the store, if any are spooled and it is time."""
        now = self._clock()
        if now < self._next_replay:
            return 0
        loop = asyncio.get_running_loop()
        try:  # both in the thread: listing the spool directory is file I/O
            moved = await loop.run_in_executor(self._executor, self._replay_if_spooled)
        except Exception as exc:
            self._next_replay = now + REPLAY_INTERVAL_S
            logger.warning("audit spool not replayed yet (%s)", exc)
            return 0
        self._metrics.replayed.inc(moved)
        return moved

    def _replay_if_spooled(self) -> int:
        return self.recorder.replay() if self.recorder.has_spooled() else 0

    def start(self) -> None:
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._task = self._loop.create_task(self._run(), name="audit")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(REPLAY_INTERVAL_S):
                    await self._has_events.wait()
            self._has_events.clear()
            await asyncio.sleep(self._flush_interval_s)  # gather a batch
            try:
                await self.flush()
                await self.replay()
            except Exception:  # the loop must outlive any one failure
                logger.exception("audit writer loop failed; going on")

    async def close(self) -> None:
        """Stop the task, write what is queued (store or spool), close the recorder; once."""
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.wait({task}, timeout=CLOSE_TIMEOUT_S)
        self._retry_at = 0.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self.flush()
        if self._queue:
            logger.error("shutting down with %d audit events not kept", len(self._queue))
            self._metrics.events.labels("dropped").inc(len(self._queue))
            self._queue.clear()
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await loop.run_in_executor(self._executor, self.recorder.close)
        self._executor.shutdown(wait=False, cancel_futures=True)
