"""Records sessions in the session store, off the loop, without ever failing playback.

Playback works from stateless tokens; the record is bookkeeping. A store that is down or slow
costs a log line and a counter, never a listener's 500.
"""

from __future__ import annotations

import functools
import heapq
import logging
from collections.abc import Callable

from cdn_edge.blocking import BlockingRunner
from cdn_edge.metrics import EdgeMetrics
from streamer.sessions import PlaybackSession, SessionStore

logger = logging.getLogger(__name__)

RECORD_TIMEOUT_S = 2.0  # the session response waits at most this long for the store


class SessionRecorder:
    """Writes sessions to the store and counts the ones still running in this process."""

    def __init__(
        self,
        store: SessionStore,
        run_blocking: BlockingRunner,
        metrics: EdgeMetrics,
        clock: Callable[[], float],
    ) -> None:
        self._store = store
        self._run = run_blocking
        self._metrics = metrics
        self._clock = clock
        self._expiries: list[int] = []

    async def record(self, session: PlaybackSession) -> bool:
        """True if the store took the session; False (logged, counted) if it did not."""
        heapq.heappush(self._expiries, session.expires_at)
        try:
            await self._run.within(
                RECORD_TIMEOUT_S, functools.partial(self._store.record_session, session)
            )
        except Exception:
            # Deliberately broad: whatever the store raises, the listener still plays.
            logger.exception(
                "session store failed to record session %s; playback continues",
                session.session_id,
            )
            self._metrics.session_store_failures.inc()
            return False
        return True

    def active(self) -> int:
        """Sessions recorded here whose expiry has not passed."""
        now = self._clock()
        while self._expiries and self._expiries[0] <= now:
            heapq.heappop(self._expiries)
        return len(self._expiries)

    def close(self) -> None:
        self._store.close()
