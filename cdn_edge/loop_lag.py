"""Event-loop lag: how late the loop wakes a task that asked to sleep.

An asyncio server's health signal: while the loop is held (a long callback, a collector
pause, another thread keeping the interpreter lock), every request it holds waits, although
each handler's own time looks short in the access log. Sampled every PROBE_INTERVAL_S into
`edge_event_loop_lag_seconds`; a stall of STALL_WARNING_S or more is also logged (at most
once per WARN_EVERY_S).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

PROBE_INTERVAL_S = 0.1
STALL_WARNING_S = 0.25
WARN_EVERY_S = 10.0


async def watch_loop_lag(
    histogram: Any,
    clock: Callable[[], float] = time.perf_counter,
    interval_s: float = PROBE_INTERVAL_S,
) -> None:
    """Observe the loop's lag into `histogram` until cancelled."""
    last_warning = float("-inf")
    while True:
        asked = clock()
        await asyncio.sleep(interval_s)
        woke = clock()
        lag = max(0.0, woke - asked - interval_s)
        histogram.observe(lag)
        if lag >= STALL_WARNING_S and woke - last_warning >= WARN_EVERY_S:
            last_warning = woke
            logger.warning(
                "event loop stalled for %.0f ms: every request on this worker waited",
                lag * 1000,
                extra={"pid": os.getpid(), "lag_ms": round(lag * 1000)},
            )
