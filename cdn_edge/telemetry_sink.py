"""The writer's sink over the session store: items land, then the plays and QoE they complete.

Runs in the writer's thread. For the sessions a batch brings events for, it reads their stored
events back (one batch read), and the deliveries of those whose events reach the play
threshold, and asks the play policy (streamer.plays) whether they have now played; a play is
written as a claim the store counts once per session (a session another process counted costs
one refused claim here, then is remembered). Sessions whose batch holds an `end` event have
their QoE computed (streamer.qoe) and exported. Any failure raises, so the writer retries the
whole batch, which is safe: every write is idempotent and a play is counted once however often
it is claimed.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from cdn_edge.telemetry_metrics import TelemetryMetrics
from streamer.plays import decide_play, events_show_play
from streamer.qoe import session_qoe
from streamer.sessions import SessionStore
from streamer.telemetry import PlayClaim, TelemetryBatch, TelemetryItem, batch_of

REMEMBERED_SESSIONS = 100_000  # sessions known played or ended, not read back again (~10 MB)


class _RecentIds:
    """A bounded set that forgets the oldest ids first."""

    def __init__(self, limit: int) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def __contains__(self, key: object) -> bool:
        return key in self._ids

    def add(self, key: str) -> None:
        self._ids[key] = None
        self._ids.move_to_end(key)
        while len(self._ids) > self._limit:
            self._ids.popitem(last=False)


class SessionStoreSink:
    """TelemetrySink writing to a SessionStore and deciding plays from what it holds."""

    def __init__(self, store: SessionStore, metrics: TelemetryMetrics) -> None:
        self._store = store
        self._metrics = metrics
        self._played = _RecentIds(REMEMBERED_SESSIONS)
        self._ended = _RecentIds(REMEMBERED_SESSIONS)

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        batch = batch_of(items)
        self._count_plays(self._store.write_telemetry(batch))
        # Only a batch with a session's events can change its play decision in practice: players
        # report progress every few seconds, and segments are delivered before they are played.
        # Re-reading a session on every segment delivery was the edge's top cost under load
        # (benchmarks/README.md), and sessions without events (native players) can never count.
        evidence: dict[str, str] = {}  # session id -> track id
        for event in batch.events:
            evidence.setdefault(event.session_id, event.track_id)
        ending = {e.session_id for e in batch.events if e.type == "end"}

        wanted = {
            session_id: track_id
            for session_id, track_id in evidence.items()
            if session_id not in self._played
            or (session_id in ending and session_id not in self._ended)
        }
        if not wanted:
            return
        # Batch reads, the events first: only sessions whose events reach the threshold need
        # their deliveries. Read one by one and whole, sessions took most of the writer's time
        # (benchmarks/README.md, telemetry ingest).
        events = self._store.events_of(list(wanted))
        candidates = [
            session_id
            for session_id, track_id in wanted.items()
            if session_id not in self._played and events_show_play(track_id, events[session_id])
        ]
        deliveries = self._store.deliveries_of(candidates) if candidates else {}
        claims: list[PlayClaim] = []
        for session_id in candidates:
            track_id = wanted[session_id]
            claim = decide_play(session_id, track_id, events[session_id], deliveries[session_id])
            if claim is not None:
                claims.append(claim)
        ended = [
            (session_id, track_id, session_qoe(events[session_id]))
            for session_id, track_id in wanted.items()
            if session_id in ending and session_id not in self._ended
        ]
        if claims:
            self._count_plays(self._store.write_telemetry(TelemetryBatch(plays=tuple(claims))))
            for claim in claims:
                self._played.add(claim.session_id)
        for session_id, track_id, qoe in ended:
            self._ended.add(session_id)
            self._metrics.observe_session(track_id, qoe)

    def _count_plays(self, counted: tuple[PlayClaim, ...]) -> None:
        for play in counted:
            self._metrics.plays.labels(self._metrics.track(play.track_id)).inc()
