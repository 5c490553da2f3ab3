"""Ad decisions and events into the ad store, in the background, never lost to an outage.

Records queue in memory and are written every FLUSH_INTERVAL_S (one batch of decisions, one of
events). When the store refuses or does not answer, the batch is appended to this worker's
spool file (JSON lines) instead; every later flush first replays the spool, and truncates it
once the store took it. The store's writes are idempotent (streamer.ads.port), so a batch
replayed twice, or spooled after a write that did land, counts once.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from cdn_edge.ads.metrics import AdMetrics
from cdn_edge.blocking import BlockingRunner
from cdn_edge.errors import Unavailable
from streamer.ads.port import AdDecisionRecord, AdEvent, AdStore
from streamer.errors import StorageError

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.2
STORE_TIMEOUT_S = 5.0  # a write slower than this is spooled (it may still land: idempotent)


def _encode(kind: str, record: AdDecisionRecord | AdEvent) -> str:
    return json.dumps({"kind": kind, **asdict(record)}, sort_keys=True)


def _decode(line: str) -> AdDecisionRecord | AdEvent | None:
    try:
        doc: dict[str, Any] = json.loads(line)
        kind = doc.pop("kind")
        return AdDecisionRecord(**doc) if kind == "decision" else AdEvent(**doc)
    except (ValueError, TypeError, KeyError):
        return None  # a line torn by a crash mid-write


class AdRecorder:
    def __init__(
        self,
        store: AdStore,
        blocking: BlockingRunner,
        metrics: AdMetrics,
        spool_path: Path | None,
    ) -> None:
        self._store = store
        self._blocking = blocking
        self._metrics = metrics
        self._spool = spool_path
        self._decisions: list[AdDecisionRecord] = []
        self._events: list[AdEvent] = []
        self._lock = asyncio.Lock()

    def decision(self, record: AdDecisionRecord) -> None:
        self._decisions.append(record)

    def event(self, event: AdEvent) -> None:
        self._events.append(event)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            await self.flush()

    async def flush(self) -> None:
        """Write what is queued and what the spool holds; spool what the store refuses."""
        async with self._lock:
            decisions, self._decisions = self._decisions, []
            events, self._events = self._events, []
            spooled = await asyncio.to_thread(self._read_spool)
            for record in spooled:
                if isinstance(record, AdDecisionRecord):
                    decisions.append(record)
                else:
                    events.append(record)
            if not decisions and not events:
                return
            try:
                if decisions:
                    await self._blocking.within(
                        STORE_TIMEOUT_S, lambda: self._store.record_decisions(decisions)
                    )
                if events:
                    await self._blocking.within(
                        STORE_TIMEOUT_S, lambda: self._store.record_events(events)
                    )
            except (StorageError, Unavailable) as exc:
                fresh = len(decisions) + len(events) - len(spooled)
                log.warning("ad store failed, %d ad records spooled: %s", fresh, exc)
                await asyncio.to_thread(self._rewrite_spool, [*decisions, *events])
                self._metrics.spooled.inc(fresh)
                return
            if spooled:
                await asyncio.to_thread(self._rewrite_spool, [])
                self._metrics.replayed.inc(len(spooled))

    def spooled_count(self) -> int:
        return len(self._read_spool())

    def _read_spool(self) -> list[AdDecisionRecord | AdEvent]:
        if self._spool is None or not self._spool.exists():
            return []
        lines = self._spool.read_text().splitlines()
        return [r for r in map(_decode, lines) if r is not None]

    def _rewrite_spool(self, records: list[AdDecisionRecord | AdEvent]) -> None:
        if self._spool is None:
            if records:
                log.error(
                    "ad store failed and no spool is configured: %d records lost", len(records)
                )
            return
        self._spool.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._spool.with_suffix(".tmp")
        with temporary.open("w") as out:
            for record in records:
                kind = "decision" if isinstance(record, AdDecisionRecord) else "event"
                out.write(_encode(kind, record) + "\n")
            out.flush()
        temporary.replace(self._spool)  # whole or not at all
