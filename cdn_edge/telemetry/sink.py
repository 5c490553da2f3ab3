"""The writer's sink over the telemetry store: items land, then the plays and QoE they complete.

Runs in the writer's thread. For the sessions a batch brings events for, it needs their events
so far, and the deliveries of those whose events reach the play threshold, and asks the play
policy (streamer.plays) whether they have now played; a play is a claim the play ledger
counts once per session (a session another process counted costs one refused claim here, then
is remembered). Sessions whose batch holds an `end` event have their QoE computed
(streamer.qoe) and exported. Any failure raises, so the writer retries the whole batch, which
is safe: every write is idempotent and a play is counted once however often it is claimed.

A session's events so far come from memory when this process wrote all of them (their player
counters run 0..n-1 without a gap, streamer.telemetry.model.without_gaps), else from the store (one
batch read). Players number their events, and an edge usually gets all of one session's
events, so the store is read back for sessions split between edges or workers, sessions begun
before this process started, and players that do not number their events. Reading every
session back on every batch was more than a third of the writer's time (benchmarks/README.md,
telemetry ingest).

Only the events of sessions not yet played are held. When a play is claimed, the session's
events are folded into its running QoE (streamer.qoe.QoeFold, a few hundred bytes whatever the
session's length) and let go; later events extend the fold while they arrive in the player's
order (the next `seq`, later on its clock), and its `end` reads the QoE from it. A played
session whose events arrive otherwise (a retry, a gap, another edge's share) drops its fold and
is read back once, at its end. Holding every session's events until its end made each edge
worker grow by ~35 MiB over the first 20 minutes of a 6,000-listener soak (docs/reliability.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence

from cdn_edge.telemetry.metrics import TelemetryMetrics
from streamer.plays import decide_play, events_show_play
from streamer.qoe import QoeFold, ordered, session_qoe
from streamer.sessions.port import PlayLedger, TelemetryStore
from streamer.telemetry.model import (
    PlayClaim,
    PlayerEvent,
    TelemetryItem,
    batch_of,
    without_gaps,
)

REMEMBERED_SESSIONS = 100_000  # sessions known played or ended, not read back again (~10 MB)
# Events of sessions not yet played, kept to decide their play from memory (~450 bytes each in
# the worker's RSS, ~9 MB). A session plays after 30 s of audio, by then having posted about
# five events (hls.js reports every 10 s), so this holds ~4,000 sessions' first half-minute: an
# edge worker starting 100 sessions a second. Past it the least recently active session is
# forgotten first (a paused player's, say) and read back from the store if it posts again.
HELD_EVENTS = 20_000
# Running QoE of played sessions (~750 bytes each with the last event it holds, ~15 MB): more
# than one worker's share of the listeners the tier holds (12,000 with 2 workers). Past it the
# least recently active is dropped, and read back at its end.
QOE_FOLDS = 20_000


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


class _HeldEvents:
    """The events this process wrote per session, by event id, up to `limit` in all."""

    def __init__(self, limit: int) -> None:
        self._sessions: OrderedDict[str, dict[str, PlayerEvent]] = OrderedDict()
        self._count = 0
        self._limit = limit

    def add(self, session_id: str, events: Iterable[PlayerEvent]) -> tuple[PlayerEvent, ...]:
        """Hold `events` too; every event of the session held."""
        held = self._sessions.pop(session_id, None) or {}
        before = len(held)
        for event in events:
            held.setdefault(event.event_id, event)
        self._sessions[session_id] = held  # now the most recent
        self._count += len(held) - before
        while self._count > self._limit and len(self._sessions) > 1:
            self._count -= len(self._sessions.popitem(last=False)[1])
        return tuple(held.values())

    def forget(self, session_id: str) -> None:
        self._count -= len(self._sessions.pop(session_id, {}))

    def __len__(self) -> int:
        """Events held, over every session."""
        return self._count


class _QoeFolds:
    """The running QoE of played sessions whose events arrived in the player's order."""

    def __init__(self, limit: int) -> None:
        self._folds: OrderedDict[str, tuple[QoeFold, int]] = OrderedDict()  # fold, next seq
        self._limit = limit

    def start(self, session_id: str, events: Sequence[PlayerEvent]) -> None:
        """Fold `events`, every event of the session so far (`without_gaps`)."""
        fold = QoeFold()
        for event in ordered(events):
            fold.add(event)
        self._folds[session_id] = (fold, len(events))
        self._folds.move_to_end(session_id)
        while len(self._folds) > self._limit:
            self._folds.popitem(last=False)

    def extend(self, session_id: str, events: Iterable[PlayerEvent]) -> QoeFold | None:
        """The session's fold with `events` added, or None (and forgotten) when there is none
        or they are not the next ones in the player's order."""
        entry = self._folds.pop(session_id, None)
        if entry is None:
            return None
        fold, next_seq = entry
        for event in sorted(events, key=lambda e: e.seq):
            last = fold.last
            if event.seq != next_seq or (last is not None and _order(event) <= _order(last)):
                return None  # a retry, a gap or a reordering: read back at the end instead
            fold.add(event)
            next_seq += 1
        self._folds[session_id] = (fold, next_seq)  # now the most recent
        return fold

    def forget(self, session_id: str) -> None:
        self._folds.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._folds)


def _order(event: PlayerEvent) -> tuple[int, int, str]:
    return event.client_ms, event.seq, event.event_id  # as streamer.qoe.ordered sorts


class SessionStoreSink:
    """TelemetrySink writing to a TelemetryStore and claiming, in a PlayLedger, the plays that
    what it holds shows."""

    def __init__(
        self,
        store: TelemetryStore,
        ledger: PlayLedger,
        metrics: TelemetryMetrics,
        *,
        held_events: int = HELD_EVENTS,
        qoe_folds: int = QOE_FOLDS,
    ) -> None:
        self._store = store
        self._ledger = ledger
        self._metrics = metrics
        self._played = _RecentIds(REMEMBERED_SESSIONS)
        self._ended = _RecentIds(REMEMBERED_SESSIONS)
        self._held = _HeldEvents(held_events)
        self._folds = _QoeFolds(qoe_folds)
        self._checked_held = metrics.sessions_checked.labels("held")
        self._checked_read = metrics.sessions_checked.labels("read")

    def write_batch(self, items: Sequence[TelemetryItem]) -> None:
        batch = batch_of(items)
        self._store.write_telemetry(batch)
        # Only a batch with a session's events can change its play decision in practice: players
        # report progress every few seconds, and segments are delivered before they are played.
        # Re-reading a session on every segment delivery was the edge's top cost under load
        # (benchmarks/README.md), and sessions without events (native players) can never count.
        arrived: dict[str, list[PlayerEvent]] = {}
        for event in batch.events:
            arrived.setdefault(event.session_id, []).append(event)
        ending = {e.session_id for e in batch.events if e.type == "end"}

        wanted: dict[str, str] = {}  # session id -> track id
        events: dict[str, tuple[PlayerEvent, ...]] = {}
        unread: list[str] = []
        folded: dict[str, QoeFold] = {}  # played sessions ending, their QoE from the fold
        for session_id, new in arrived.items():
            played, ended = session_id in self._played, session_id in self._ended
            if played and ended:
                continue
            if played:
                fold = self._folds.extend(session_id, new)
                if session_id not in ending:
                    continue  # nothing to decide until its end
                if fold is not None:
                    folded[session_id] = fold
                    wanted[session_id] = new[0].track_id
                    continue
            held = self._held.add(session_id, new)  # a played session's end: read it back
            wanted[session_id] = new[0].track_id
            if without_gaps(held):
                events[session_id] = held
            else:
                unread.append(session_id)
        if not wanted:
            return
        self._checked_held.inc(len(events))
        if unread:
            # Batch reads, the events first: only sessions whose events reach the threshold
            # need their deliveries. Read one by one and whole, sessions took most of the
            # writer's time (benchmarks/README.md, telemetry ingest).
            self._checked_read.inc(len(unread))
            stored = self._store.events_of(unread)
            for session_id in unread:
                events[session_id] = self._held.add(session_id, stored[session_id])
        candidates = [
            session_id
            for session_id, track_id in wanted.items()
            if session_id not in self._played
            and session_id not in folded
            and events_show_play(track_id, events[session_id])
        ]
        deliveries = self._store.deliveries_of(candidates) if candidates else {}
        claims: list[PlayClaim] = []
        for session_id in candidates:
            track_id = wanted[session_id]
            claim = decide_play(session_id, track_id, events[session_id], deliveries[session_id])
            if claim is not None:
                claims.append(claim)
        finished = [
            (
                session_id,
                track_id,
                folded[session_id].result()
                if session_id in folded
                else session_qoe(events[session_id]),
            )
            for session_id, track_id in wanted.items()
            if session_id in ending and session_id not in self._ended
        ]
        if claims:
            self._count_plays(self._ledger.claim_plays(claims))
            for claim in claims:
                self._played.add(claim.session_id)
                so_far = events[claim.session_id]
                if without_gaps(so_far):  # every event so far: its QoE can go on from here
                    self._folds.start(claim.session_id, so_far)
                self._held.forget(claim.session_id)
        for session_id, track_id, qoe in finished:
            self._ended.add(session_id)
            self._held.forget(session_id)
            self._folds.forget(session_id)
            self._metrics.observe_session(track_id, qoe)

    @property
    def held_events(self) -> int:
        """Events held in memory: those of sessions not yet played."""
        return len(self._held)

    @property
    def qoe_folds(self) -> int:
        """Played sessions whose QoE is kept as a running fold."""
        return len(self._folds)

    def _count_plays(self, counted: tuple[PlayClaim, ...]) -> None:
        for play in counted:
            self._metrics.plays.labels(self._metrics.track(play.track_id)).inc()
