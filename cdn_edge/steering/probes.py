"""Active health checks: GET {base_url}/healthz on every other pathway, every few seconds.

Runs as one background task per edge process (started and stopped in `cleanup_ctx`); each
probe has its own deadline, and results go to the `HealthBoard`. The edge's own pathway is
not fetched: a process answering steering requests is up, so it counts as a good probe.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence

import aiohttp

from cdn_edge.steering.health import HealthBoard
from cdn_edge.steering.pathways import EDGE_PATHWAY_ID, Pathway

logger = logging.getLogger(__name__)

PROBE_PATH = "/healthz"
PROBE_TIMEOUT_S = 2.0  # a CDN whose health answer takes longer would stall players too
# A tenth of the steering TTL: FAILURES_TO_FAIL probes in a row fit well within one TTL, so a
# failed pathway moves last for everyone within about one TTL. Bounded both ways: no busier
# than 4 probes a second (short test TTLs), no lazier than every 10 s (long TTLs).
PROBES_PER_TTL = 10
MIN_PROBE_INTERVAL_S = 0.25
MAX_PROBE_INTERVAL_S = 10.0


def probe_interval_s(steering_ttl_s: float) -> float:
    return min(MAX_PROBE_INTERVAL_S, max(MIN_PROBE_INTERVAL_S, steering_ttl_s / PROBES_PER_TTL))


class PathwayProber:
    """Probes the pathways and feeds the board; `run` loops until cancelled."""

    def __init__(
        self,
        pathways: Sequence[Pathway],
        board: HealthBoard,
        clock: Callable[[], float],
        *,
        interval_s: float,
        timeout_s: float = PROBE_TIMEOUT_S,
    ) -> None:
        self._pathways = tuple(pathways)
        self._board = board
        self._clock = clock
        self.interval_s = interval_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    @property
    def needed(self) -> bool:
        """Whether there is anything to probe: pathways besides the edge."""
        return any(p.id != EDGE_PATHWAY_ID for p in self._pathways)

    async def run(self) -> None:
        # One pooled client for the process; no cookies: probes carry no state.
        async with aiohttp.ClientSession(
            timeout=self._timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as http:
            while True:
                await self.probe_all(http)
                await asyncio.sleep(self.interval_s)

    async def probe_all(self, http: aiohttp.ClientSession) -> None:
        """One round: every pathway probed concurrently, results recorded together."""
        results = await asyncio.gather(*(self._probe(http, p) for p in self._pathways))
        now = self._clock()
        for pathway, ok in zip(self._pathways, results, strict=True):
            was_healthy = self._board.is_healthy(pathway.id)
            self._board.probe(pathway.id, ok, now)
            if was_healthy != self._board.is_healthy(pathway.id):
                state = self._board.state(pathway.id)
                if state.healthy:
                    logger.info("pathway healthy again", extra={"pathway": pathway.id})
                else:
                    logger.warning(
                        "pathway unhealthy", extra={"pathway": pathway.id, "reason": state.reason}
                    )

    async def _probe(self, http: aiohttp.ClientSession, pathway: Pathway) -> bool:
        if pathway.id == EDGE_PATHWAY_ID:
            return True
        try:
            async with http.get(pathway.base_url + PROBE_PATH, allow_redirects=False) as response:
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False


async def stop(task: asyncio.Task[None]) -> None:
    """Cancel a `run` task and wait for it to close its client."""
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
