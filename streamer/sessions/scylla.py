"""ScyllaSessionStore: playback sessions and their telemetry in ScyllaDB (any CQL store).

The tables (migration 2 of `streamer.cql.schema`), designed query-first, with the partition
sizes expected at 1 billion listeners (about 300 million a day, 25 tracks each: 7.5 billion
sessions a day; the busiest track 15 million plays a day):

    playback_sessions   PRIMARY KEY (session_id)                     one row, ~0.4 KB
    sessions_by_user    PRIMARY KEY ((user_id, day), created_at DESC, session_id)
        A listener's recent sessions, newest first. A day a partition: 25 rows (1.5 KB) for
        most, 300 (20 KB) for the heaviest; a client opening a session every second for a
        whole day makes 86 400 rows, 5 MB. (Session creation has no per-listener limit, so a
        day bucket, not a month, is what bounds a runaway client.)
    player_events       PRIMARY KEY ((session_id), client_ms, seq, event_id)
        In the player's order. A 3-minute track is ~30 rows (4 KB); the longest session the
        tokens allow (4 h plus the track) with a heartbeat every 10 s is ~1 500 rows, 200 KB.
        The events API takes up to 500 events a request and no budget per session yet, so
        the bound against a hostile player is an edge limit, not this table. TTL 90 days.
    cmcd_samples        PRIMARY KEY ((session_id), received_ms, sample_id)
        One per playlist, key or segment request: ~40 rows a track, at most ~2 600 (500 KB)
        for the longest session. TTL 30 days.
    segment_deliveries  PRIMARY KEY ((session_id), delivered_ms, name)
        One per segment served: ~35 rows a track, at most ~2 600 (260 KB). TTL 90 days.
    plays_by_session    PRIMARY KEY (session_id)                     one row; no TTL
        The truth about royalty plays: written with `INSERT ... IF NOT EXISTS` (LWT), so of
        all the claims of a session exactly one wins.
    plays_by_track_day  PRIMARY KEY ((track_id, day, shard), session_id)   no TTL
        The index a recount reads: the sessions that won their claim, by track and UTC day,
        spread over `PLAY_SHARDS` (32) partitions by session: the busiest track's day is
        15 M rows / 32 = 470 000 rows, ~21 MB a partition; most tracks' are a few rows.
    track_plays_by_day  PRIMARY KEY ((track_id, year), day) plays counter
        What `plays_by_day` reads: at most 366 rows (10 KB) a partition.
    play_recounts_due   PRIMARY KEY ((day, shard), track_id)
        (track, day) pairs whose counter may be off; normally empty.
    session_qoe         PRIMARY KEY (session_id)                     one row, ~0.2 KB
        The QoE summary of a session, computed when its `end` event is written. TTL 400 days.

Sessions themselves are kept 400 days (`SESSION_RETENTION_S`).

Deduplication: the first copy wins. Items are written with plain, idempotent inserts whose
primary key holds their identity, so a retried or replayed batch rewrites the same rows. The
contract keeps the *first* copy of an item whose retry differs (INSERT OR IGNORE), where CQL
keeps the write with the highest timestamp. So telemetry rows are written `USING TIMESTAMP
FIRST_WINS_BASE_US - now`: timestamps that run backwards as time passes, so of two writes to
a row the earlier one wins, with no read and no LWT. They lie in the past (the base is twice
2025-01-01) and stay positive until 2080; a delete at the current time still removes them,
and shadows later copies until its tombstone is purged, which is what an erasure wants. A
retry that moves an item to another clustering position (an event id reported again with
another client time, a segment delivered again later) makes a second row; reads keep the
row written first (the highest WRITETIME) of each event id, sample id and segment name.
Within one batch the first copy wins outright. Between edges, "first" is by their clocks
(the store's injected clock), which NTP keeps milliseconds apart. Other rows are upserts.

Writes. Rows of one session in the three telemetry tables share a partition key, so they
travel as unlogged batches of up to `ROWS_PER_BATCH` rows, one mutation per replica set;
sessions are written concurrently, at most `cql_fanout.MAX_IN_FLIGHT` (256) requests
outstanding, with the play claims beside them. An `end` event makes the call read the
session's events back and upsert its QoE summary. All reads and writes run at the session's
consistency (`cql_consistency`: LOCAL_QUORUM in production); the play claim runs its Paxos
round at LOCAL_SERIAL. Every statement is marked idempotent except the claim (LWT) and the
counter increment, which the driver therefore never retries.

Plays and the counter (`streamer.sessions.scylla_plays`): a claim is an LWT insert into
`plays_by_session`; only when it applied are its index row written and its day's counter
incremented. The counter is never incremented twice for a session; a failure between the
steps can leave it one short, and the day is then marked in `play_recounts_due` for
`recount_plays`, which sets the counter to the count of the index. The failure window is
spelt out there.

Erasure. Deleting a listener's data means deleting their sessions' partitions in every table
and their rows from `plays_by_track_day`, then recounting the days concerned.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from streamer.cql.connection import Cql, CqlSession, keyspace_name, open_cql_session
from streamer.cql.fanout import Send, gather, raise_first, sender
from streamer.cql.schema import require_current_schema
from streamer.errors import StorageError
from streamer.qoe import SessionQoe, session_qoe
from streamer.sessions.port import SESSION_RETENTION_S, PlaybackSession
from streamer.sessions.scylla_plays import ScyllaPlays, play_from_row
from streamer.settings import Settings
from streamer.telemetry.model import (
    CmcdSample,
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)

T = TypeVar("T")

ROWS_PER_BATCH = 100  # rows of one session per unlogged batch: ~20 KB, well below any limit
READ_PAGE_ROWS = 2000  # a session's longest telemetry is read in one or two pages
RECENT_DAYS_PER_READ = 7  # day partitions of a listener read at once
RECENT_DAYS_MAX = SESSION_RETENTION_S // 86_400  # nothing older is kept
# Write timestamps that run backwards from here: the first write of a row wins.
FIRST_WINS_BASE_US = 2 * 1_735_689_600_000_000  # twice 2025-01-01T00:00Z, in microseconds

_SESSION_COLUMNS = (
    "session_id, user_id, tier, region, track_id, version, device, variants, created_at, expires_at"
)
_EVENT_COLUMNS = (
    "session_id, client_ms, seq, event_id, received_ms, type, track_id, position_s, offline,"
    " pathway, rendition, error_code, error_message, fatal, extra"
)
# Fields that most events lack, kept as JSON in `extra` (null columns would be tombstones).
_EVENT_EXTRA = ("bitrate_kbps", "from_s", "startup_ms")
_CMCD_COLUMNS = "session_id, received_ms, sample_id, route, object, status, keys"
_DELIVERY_COLUMNS = (
    "session_id, track_id, version, rendition, name, start_s, duration_s, delivered_ms"
)

_RECORD_SESSION = Cql(
    f"INSERT INTO playback_sessions ({_SESSION_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    idempotent=True,
)
_INDEX_SESSION = Cql(
    "INSERT INTO sessions_by_user (user_id, day, created_at, session_id) VALUES (?, ?, ?, ?)",
    idempotent=True,
)
_GET_SESSION = Cql(
    f"SELECT {_SESSION_COLUMNS} FROM playback_sessions WHERE session_id = ?", idempotent=True
)
_USER_DAY = Cql(
    "SELECT created_at, session_id FROM sessions_by_user WHERE user_id = ? AND day = ? LIMIT ?",
    idempotent=True,
)
_WRITE_EVENT = Cql(
    f"INSERT INTO player_events ({_EVENT_COLUMNS}) VALUES ({', '.join('?' * 15)})"
    " USING TIMESTAMP ?",
    idempotent=True,
)
_READ_EVENTS = Cql(
    f"SELECT {_EVENT_COLUMNS}, WRITETIME(type) AS written FROM player_events WHERE session_id = ?",
    idempotent=True,
)
_WRITE_CMCD = Cql(
    f"INSERT INTO cmcd_samples ({_CMCD_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?",
    idempotent=True,
)
_READ_CMCD = Cql(
    f"SELECT {_CMCD_COLUMNS}, WRITETIME(route) AS written FROM cmcd_samples WHERE session_id = ?",
    idempotent=True,
)
_WRITE_DELIVERY = Cql(
    f"INSERT INTO segment_deliveries ({_DELIVERY_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
    " USING TIMESTAMP ?",
    idempotent=True,
)
_READ_DELIVERIES = Cql(
    f"SELECT {_DELIVERY_COLUMNS}, WRITETIME(track_id) AS written FROM segment_deliveries"
    " WHERE session_id = ?",
    idempotent=True,
)
_READ_QOE = Cql(
    "SELECT played_s, startup_s, stalls, stalled_s, rebuffer_ratio, average_bitrate_kbps,"
    " bitrate_switches, errors, fatal_errors, ended, pathway FROM session_qoe"
    " WHERE session_id = ?",
    idempotent=True,
)


@functools.cache
def _upsert(table: str, columns: tuple[str, ...]) -> Cql:
    """An upsert of these columns: rows leave unset columns out rather than write nulls,
    which would be tombstones (a handful of variants, each prepared once)."""
    marks = ", ".join("?" * len(columns))
    return Cql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", idempotent=True)


class ScyllaSessionStore:
    """The SessionStore in a CQL keyspace shared by every edge."""

    # A call pays its round trips (the rows, the play checks' reads, the claims, their counts)
    # once whatever its size: batches of 2000 took the telemetry benchmark from 0.57 to 0.72 of
    # the driver alone, against 500 (benchmarks/README.md).
    telemetry_batch_items = 2000

    def __init__(
        self,
        session: CqlSession,
        *,
        owns_session: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Over `session`, which `close` shuts down only if `owns_session`; `clock` gives the
        unix time of writes (the first of two writes of a row wins)."""
        if session.keyspace is None:
            raise ValueError(f"{session!r} has no keyspace; open it with use_keyspace=True")
        self.session = session
        self.plays = ScyllaPlays(session)
        self._owns_session = owns_session
        self._clock = clock
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ScyllaSessionStore:
        """Connect; ConfigError saying to run `streamer db migrate` if the schema is behind."""
        session = open_cql_session(settings)
        try:
            require_current_schema(session, keyspace_name(settings))
            return cls(session, owns_session=True)
        except BaseException:
            session.close()
            raise

    def __repr__(self) -> str:
        return f"ScyllaSessionStore({self.session!r})"

    def close(self) -> None:
        self._closed = True
        if self._owns_session:
            self.session.close()

    # Sessions

    def record_session(self, session: PlaybackSession) -> None:
        action = f"record session {session.session_id}"
        self._check_open(action)
        row = (
            session.session_id,
            session.user_id,
            session.tier,
            session.region,
            session.track_id,
            session.version,
            session.device_json(),
            json.dumps(list(session.variants)),
            session.created_at,
            session.expires_at,
        )
        index = (
            session.user_id,
            _utc_day(session.created_at),
            session.created_at,
            session.session_id,
        )
        raise_first(
            gather(
                [
                    sender(self.session, _RECORD_SESSION, row, action),
                    sender(self.session, _INDEX_SESSION, index, action),
                ]
            )
        )

    def get_session(self, session_id: str) -> PlaybackSession | None:
        action = f"read session {session_id}"
        self._check_open(action)
        row = self.session.execute(_GET_SESSION, (session_id,), action=action).one()
        return None if row is None else _session_from_row(row)

    def recent_sessions(
        self, user_id: str, now_s: int, limit: int = 50, days: int = 31
    ) -> list[PlaybackSession]:
        """The listener's sessions created in the `days` UTC days up to `now_s`, newest first.

        Only this store keeps sessions by listener; it is for support tools, not the edge.
        """
        action = f"list the sessions of listener {user_id}"
        self._check_open(action)
        if limit < 1 or not 1 <= days <= RECENT_DAYS_MAX:
            raise ValueError(
                f"limit must be >= 1 and days 1 to {RECENT_DAYS_MAX}, got {limit} and {days}"
            )
        newest = _utc_day(now_s)
        wanted: list[tuple[int, str]] = []
        for start in range(0, days, RECENT_DAYS_PER_READ):
            last = min(days, start + RECENT_DAYS_PER_READ)
            chunk = [newest - timedelta(days=n) for n in range(start, last)]
            pages = gather(
                [sender(self.session, _USER_DAY, (user_id, day, limit), action) for day in chunk]
            )
            for page in raise_first(pages):
                wanted.extend((row["created_at"], row["session_id"]) for row in page)
            if len(wanted) >= limit:
                break
        wanted = sorted(wanted, reverse=True)[:limit]
        reads = gather([sender(self.session, _GET_SESSION, (sid,), action) for _, sid in wanted])
        found = []
        for (created_at, _), rows in zip(wanted, raise_first(reads), strict=True):
            row = rows.one()
            # The index is a hint: a session recorded again may have moved.
            if row is not None and (row["user_id"], row["created_at"]) == (user_id, created_at):
                found.append(_session_from_row(row))
        return found

    # Telemetry

    def write_telemetry(self, batch: TelemetryBatch) -> tuple[PlayClaim, ...]:
        action = f"write {len(batch)} telemetry items"
        self._check_open(action)
        events = _first_of_each(batch.events, lambda e: (e.session_id, e.event_id))
        samples = _first_of_each(batch.cmcd, lambda c: (c.session_id, c.sample_id))
        deliveries = _first_of_each(batch.deliveries, lambda d: (d.session_id, d.name))
        plays = _first_of_each(batch.plays, lambda p: p.session_id)

        stamp = self._first_wins_timestamp()
        rows: dict[str, list[tuple[Cql, Sequence[Any]]]] = {}
        for event in events:
            rows.setdefault(event.session_id, []).append(
                (_WRITE_EVENT, (*_event_row(event), stamp))
            )
        for sample in samples:
            rows.setdefault(sample.session_id, []).append(
                (_WRITE_CMCD, (*_cmcd_row(sample), stamp))
            )
        for delivery in deliveries:
            rows.setdefault(delivery.session_id, []).append(
                (_WRITE_DELIVERY, (*_delivery_row(delivery), stamp))
            )
        sends = [
            self._batch_sender(session_rows[start : start + ROWS_PER_BATCH], action)
            for session_rows in rows.values()
            for start in range(0, len(session_rows), ROWS_PER_BATCH)
        ]
        results = gather(sends + self.plays.claims(plays, action))
        counted = self.plays.count(plays, results[len(sends) :], action)
        raise_first(results)
        ending = {event.session_id: event.track_id for event in events if event.type == "end"}
        if ending:
            self._summarise(ending, action)
        return counted

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        action = f"read the telemetry of session {session_id}"
        self._check_open(action)
        key = (session_id,)
        events, samples, deliveries, play = raise_first(
            gather(
                [
                    sender(self.session, _READ_EVENTS, key, action, READ_PAGE_ROWS),
                    sender(self.session, _READ_CMCD, key, action, READ_PAGE_ROWS),
                    sender(self.session, _READ_DELIVERIES, key, action, READ_PAGE_ROWS),
                    self.plays.read_play(session_id, action),
                ]
            )
        )
        play_row = play.one()
        return SessionTelemetry(
            events=tuple(map(_event, _first_written(events, "event_id"))),
            cmcd=tuple(map(_cmcd, _first_written(samples, "sample_id"))),
            deliveries=tuple(map(_delivery, _first_written(deliveries, "name"))),
            play=None if play_row is None else play_from_row(play_row),
        )

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        action = f"read the events of {len(session_ids)} sessions"
        rows = self._read_each(_READ_EVENTS, session_ids, action)
        return {
            session_id: tuple(map(_event, _first_written(found, "event_id")))
            for session_id, found in zip(session_ids, rows, strict=True)
        }

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        action = f"read the deliveries of {len(session_ids)} sessions"
        rows = self._read_each(_READ_DELIVERIES, session_ids, action)
        return {
            session_id: tuple(map(_delivery, _first_written(found, "name")))
            for session_id, found in zip(session_ids, rows, strict=True)
        }

    def _read_each(self, statement: Cql, session_ids: Sequence[str], action: str) -> list[Any]:
        """One partition read per session, all in flight together (bounded)."""
        self._check_open(action)
        sends = [
            sender(self.session, statement, (session_id,), action, READ_PAGE_ROWS)
            for session_id in session_ids
        ]
        return raise_first(gather(sends))

    def session_qoe_summary(self, session_id: str) -> SessionQoe | None:
        """The QoE computed when the session's `end` event was written, or None."""
        action = f"read the QoE of session {session_id}"
        self._check_open(action)
        row = self.session.execute(_READ_QOE, (session_id,), action=action).one()
        return None if row is None else SessionQoe(**row)

    # Plays (see streamer.sessions.scylla_plays)

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        self._check_open(f"read the plays of track {track_id}")
        return self.plays.plays_by_day(track_id, first, last)

    def recount_plays(self, track_id: str, day: date) -> int:
        """Set the day's counter to the number of sessions that won a claim; that number.

        Raises StorageError if the counter kept moving (plays still arriving): run it later.
        """
        self._check_open(f"recount the plays of track {track_id}")
        return self.plays.recount(track_id, day)

    def tracks_due_for_recount(self, day: date) -> list[str]:
        """Tracks whose counter for `day` may be off after a failure."""
        self._check_open(f"list the recounts due on {day.isoformat()}")
        return self.plays.due(day)

    # Internals

    def _first_wins_timestamp(self) -> int:
        stamp = FIRST_WINS_BASE_US - round(self._clock() * 1_000_000)
        if stamp <= 0:  # in 2080
            raise StorageError(f"FIRST_WINS_BASE_US has run out; {stamp} is no write timestamp")
        return stamp

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise StorageError(f"cannot {action}: {self!r} is closed")

    def _batch_sender(self, rows: Sequence[tuple[Cql, Sequence[Any]]], action: str) -> Send:
        if len(rows) == 1:
            return sender(self.session, rows[0][0], rows[0][1], action)
        return lambda: self.session.execute_partition_batch_async(rows, action=action)

    def _summarise(self, ending: dict[str, str], action: str) -> None:
        """Store the QoE of sessions that just ended, from all their stored events."""
        reads = gather(
            [sender(self.session, _READ_EVENTS, (sid,), action, READ_PAGE_ROWS) for sid in ending]
        )
        writes = []
        for (session_id, track_id), rows in zip(ending.items(), raise_first(reads), strict=True):
            qoe = session_qoe(map(_event, _first_written(rows, "event_id")))
            values = {"session_id": session_id, "track_id": track_id, **asdict(qoe)}
            present = {name: value for name, value in values.items() if value is not None}
            statement = _upsert("session_qoe", tuple(present))
            writes.append(sender(self.session, statement, tuple(present.values()), action))
        raise_first(gather(writes))


def _first_of_each(items: Iterable[T], key: Callable[[T], object]) -> list[T]:
    """The items in order, without later ones whose key was seen before."""
    seen: set[object] = set()
    kept = []
    for item in items:
        identity = key(item)
        if identity not in seen:
            seen.add(identity)
            kept.append(item)
    return kept


def _first_written(rows: Iterable[dict[str, Any]], identity: str) -> list[dict[str, Any]]:
    """The rows in order, one per `identity`: the one written first (highest WRITETIME)."""
    rows = list(rows)
    first: dict[Any, int] = {}
    for row in rows:
        known = first.get(row[identity])
        if known is None or row["written"] > known:
            first[row[identity]] = row["written"]
    kept = []
    for row in rows:
        if first.get(row[identity]) == row["written"]:
            kept.append(row)
            del first[row[identity]]  # one row per identity, even on a tie
    return kept


def _event_row(event: PlayerEvent) -> tuple[Any, ...]:
    extra = {name: getattr(event, name) for name in _EVENT_EXTRA}
    present = {name: value for name, value in extra.items() if value is not None}
    return (
        event.session_id,
        event.client_ms,
        event.seq,
        event.event_id,
        event.received_ms,
        event.type,
        event.track_id,
        event.position_s,
        event.offline,
        event.pathway,
        event.rendition,
        event.error_code,
        event.error_message,
        event.fatal,
        json.dumps(present, separators=(",", ":")) if present else "",
    )


def _event(row: dict[str, Any]) -> PlayerEvent:
    fields = {name: value for name, value in row.items() if name not in ("extra", "written")}
    return PlayerEvent(**fields, **(json.loads(row["extra"]) if row["extra"] else {}))


def _cmcd_row(sample: CmcdSample) -> tuple[Any, ...]:
    keys = json.dumps(dict(sample.keys), sort_keys=True, separators=(",", ":"))
    return (
        sample.session_id,
        sample.received_ms,
        sample.sample_id,
        sample.route,
        sample.object,
        sample.status,
        keys,
    )


def _cmcd(row: dict[str, Any]) -> CmcdSample:
    fields = {name: value for name, value in row.items() if name != "written"}
    return CmcdSample(**{**fields, "keys": json.loads(row["keys"])})


def _delivery_row(delivery: SegmentDelivery) -> tuple[Any, ...]:
    return (
        delivery.session_id,
        delivery.track_id,
        delivery.version,
        delivery.rendition,
        delivery.name,
        delivery.start_s,
        delivery.duration_s,
        delivery.delivered_ms,
    )


def _delivery(row: dict[str, Any]) -> SegmentDelivery:
    return SegmentDelivery(**{name: value for name, value in row.items() if name != "written"})


def _session_from_row(row: dict[str, Any]) -> PlaybackSession:
    return PlaybackSession(
        session_id=row["session_id"],
        user_id=row["user_id"],
        tier=row["tier"],
        region=row["region"],
        track_id=row["track_id"],
        version=row["version"],
        device=json.loads(row["device"]),
        variants=tuple(json.loads(row["variants"])),
        created_at=row["created_at"],
        expires_at=row["expires_at"],
    )


def _utc_day(unix_s: int) -> date:
    return datetime.fromtimestamp(unix_s, UTC).date()
