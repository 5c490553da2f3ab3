"""Records sessions in the session store in the background, without ever holding playback.

Playback works from stateless tokens; the record is bookkeeping. The session response does not
wait for the store: `record` queues the session and a background task writes the queue, one
session after another, in a thread. Under load, a store shared by several edge processes (the
embedded SQLite file) made session responses wait for its write lock for up to seconds; now
only the bookkeeping waits. A store that is down or slow costs a log line and a counter (a full
queue drops the newest records), never a listener's 500 or a slow start.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
from collections import deque
from collections.abc import Callable

from cdn_edge.blocking import BlockingRunner
from cdn_edge.metrics import EdgeMetrics
from streamer.sessions.port import PlaybackSession, SessionLog

logger = logging.getLogger(__name__)

RECORD_TIMEOUT_S = 2.0  # one store write; slower counts as failed (the thread may finish it)
QUEUE_LIMIT = 10_000  # sessions waiting to be written: a minute of a busy edge's arrivals
CLOSE_TIMEOUT_S = 5.0  # shutdown writes what is queued for at most this long


class SessionRecorder:
    """Writes sessions to the store behind the responses; counts the ones still running."""

    def __init__(
        self,
        store: SessionLog,
        run_blocking: BlockingRunner,
        metrics: EdgeMetrics,
        clock: Callable[[], float],
        queue_limit: int = QUEUE_LIMIT,
    ) -> None:
        self._store = store
        self._run = run_blocking
        self._metrics = metrics
        self._clock = clock
        self._expiries: list[int] = []
        self._queue: deque[PlaybackSession] = deque()
        self._queue_limit = queue_limit
        self._has_work = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def record(self, session: PlaybackSession) -> None:
        """Queue the session for the store; never raises, never waits."""
        # Expired entries go here too, not only when the gauge is read: an edge nobody scrapes
        # would otherwise keep one entry per session it ever opened.
        self._forget_expired()
        heapq.heappush(self._expiries, session.expires_at)
        if len(self._queue) >= self._queue_limit:
            self._failed(session, "the session record queue is full")
            return
        self._queue.append(session)
        self._idle.clear()
        self._has_work.set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run_writes(), name="sessions")

    async def _run_writes(self) -> None:
        while True:
            await self._has_work.wait()
            await self._write_queued()

    async def _write_queued(self) -> None:
        while self._queue:
            session = self._queue.popleft()
            try:
                await self._run.within(
                    RECORD_TIMEOUT_S, functools.partial(self._store.record_session, session)
                )
            except asyncio.CancelledError:
                self._queue.appendleft(session)
                raise
            except Exception as exc:  # whatever the store raises, the listener still plays
                self._failed(session, str(exc) or type(exc).__name__)
        self._has_work.clear()
        self._idle.set()

    def _failed(self, session: PlaybackSession, reason: str) -> None:
        logger.error("session %s not recorded (%s); playback continues", session.session_id, reason)
        self._metrics.session_store_failures.inc()

    async def drain(self) -> None:
        """Wait until every queued session has been written (or has failed)."""
        await self._idle.wait()

    async def stop(self) -> None:
        """Stop the task, then write what is queued, within CLOSE_TIMEOUT_S."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await self._write_queued()
        for session in self._queue:
            self._failed(session, "the edge shut down before writing it")
        self._queue.clear()

    def active(self) -> int:
        """Sessions opened here whose expiry has not passed."""
        self._forget_expired()
        return len(self._expiries)

    def _forget_expired(self) -> None:
        now = self._clock()
        while self._expiries and self._expiries[0] <= now:
            heapq.heappop(self._expiries)

    def close(self) -> None:
        self._store.close()
