"""The periodic play recount: an edge repairs the play counts that may be off.

A play count is what creators are paid by. The CQL ledger's counter can be left short by a
failure between a claim and its increment, and marks the day it doubts
(streamer.sessions.scylla_plays); the SQLite ledger cannot drift but finds a count changed by
hand. Either way `PlayLedger.recount_due` repairs them, and this task calls it for every day a
play may still land on (streamer.sessions.recount), `settings.play_recount_interval_s` apart
(an hour by default; 0 turns it off). It runs in the first worker of each edge
(`build_app(worker=0)`): one per machine, and the ledger lets edges on several machines
sweep at once (each due day is recounted by one of them).

The first sweep waits `FIRST_AFTER_S`, so that a start is not slowed by it. A sweep runs in a
thread, under `SWEEP_TIMEOUT_S`; a day that fails is logged and waits for the next sweep.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from cdn_edge.blocking import BlockingRunner
from streamer.sessions.port import PlayLedger
from streamer.sessions.recount import RecountSweep, recent_days, recount_due_days

logger = logging.getLogger(__name__)

FIRST_AFTER_S = 60.0
# 32 days of 32 small reads each (CQL), and normally nothing due: seconds, not minutes.
SWEEP_TIMEOUT_S = 600.0


class PlayRecounter:
    """Sweeps the recent days' due recounts every `interval_s`."""

    def __init__(
        self,
        ledger: PlayLedger,
        blocking: BlockingRunner,
        clock: Callable[[], float],
        interval_s: float,
        *,
        first_after_s: float | None = None,  # FIRST_AFTER_S
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if interval_s <= 0:
            raise ValueError(f"a play recount interval must be > 0 s, got {interval_s}")
        self._ledger = ledger
        self._blocking = blocking
        self._clock = clock
        self._interval_s = interval_s
        self._first_after_s = FIRST_AFTER_S if first_after_s is None else first_after_s
        self._sleep = sleep

    async def sweep(self) -> RecountSweep:
        """One pass over the recent days, newest first, in a thread."""
        today = datetime.fromtimestamp(self._clock(), UTC).date()
        try:
            sweep = await self._blocking.within(
                SWEEP_TIMEOUT_S,
                functools.partial(recount_due_days, self._ledger, recent_days(today)),
            )
        except Exception as exc:  # a store down now may be up at the next sweep
            sweep = RecountSweep(failures=(str(exc) or type(exc).__name__,))
        if sweep.corrected:
            logger.warning(
                "play recount corrected %d counts: %s",
                len(sweep.corrected),
                "; ".join(
                    f"{r.track_id} on {r.day.isoformat()} {r.counted} -> {r.claims}"
                    for r in sweep.corrected
                ),
            )
        if sweep.failures:
            logger.error(
                "play recount incomplete, tried again in %.0f s: %s",
                self._interval_s,
                "; ".join(sweep.failures),
            )
        return sweep

    async def run(self) -> None:
        """Sweep every interval until cancelled."""
        await self._sleep(self._first_after_s)
        while True:
            await self.sweep()
            await self._sleep(self._interval_s)
