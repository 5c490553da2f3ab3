"""ScyllaSessionStore: sessions, telemetry and the play ledger in ScyllaDB (any CQL store).

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

Sessions themselves are kept 400 days (`SESSION_RETENTION_S`). The columns of
playback_sessions, player_events, cmcd_samples, segment_deliveries and plays_by_session, and
the codecs of their rows, come from the declarations of streamer.sessions.tables.

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
outstanding; play claims are a call of their own (`claim_plays`), fanned out the same way.
All reads and writes run at the session's consistency (`cql_consistency`: LOCAL_QUORUM in
production); the play claim runs its Paxos round at LOCAL_SERIAL. Every statement is marked
idempotent except the claim (LWT) and the counter increment, which the driver therefore never
retries.

Plays and the counter (`streamer.sessions.scylla_plays`): a claim is an LWT insert into
`plays_by_session`; only when it applied are its index row written and its day's counter
incremented. The counter is never incremented twice for a session; a failure between the
steps can leave it one short, and the day is then marked in `play_recounts_due` for
`recount_due`, which sets the counter to the count of the index. The failure window is
spelt out there.

Erasure. Deleting a listener's data means deleting their sessions' partitions in every table
and their rows from `plays_by_track_day`, then recounting the days concerned.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

from streamer.cql.connection import Cql, CqlSession
from streamer.cql.fanout import Send, gather, raise_first, sender
from streamer.cql.schema import open_migrated_session
from streamer.errors import StorageError
from streamer.sessions.port import SESSION_RETENTION_S, PlaybackSession, PlayRecount
from streamer.sessions.scylla_plays import ScyllaPlays
from streamer.sessions.table_spec import SESSION_KEY, Table
from streamer.sessions.tables import (
    CMCD_SAMPLES,
    PLAYER_EVENTS,
    PLAYS,
    SEGMENT_DELIVERIES,
    SESSIONS,
)
from streamer.settings import Settings
from streamer.telemetry.model import (
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)

T = TypeVar("T")
M = TypeVar("M")

ROWS_PER_BATCH = 100  # rows of one session per unlogged batch: ~20 KB, well below any limit
READ_PAGE_ROWS = 2000  # a session's longest telemetry is read in one or two pages
RECENT_DAYS_PER_READ = 7  # day partitions of a listener read at once
RECENT_DAYS_MAX = SESSION_RETENTION_S // 86_400  # nothing older is kept
# Write timestamps that run backwards from here: the first write of a row wins.
FIRST_WINS_BASE_US = 2 * 1_735_689_600_000_000  # twice 2025-01-01T00:00Z, in microseconds


def first_wins_insert(table: Table[Any]) -> Cql:
    """The insert of a row of `table`, its values then its `first_wins_timestamp`."""
    return Cql(table.cql_insert(" USING TIMESTAMP ?"), idempotent=True)


def first_wins_timestamp(unix_s: float) -> int:
    """The write timestamp at `unix_s`: lower for later writes, so the first write wins."""
    stamp = FIRST_WINS_BASE_US - round(unix_s * 1_000_000)
    if stamp <= 0:  # in 2080
        raise StorageError(f"FIRST_WINS_BASE_US has run out; {stamp} is no write timestamp")
    return stamp


def _first_written_select(table: Table[Any]) -> Cql:
    written = f"WRITETIME({table.cql_first_written}) AS written"
    return Cql(table.cql_select(written), idempotent=True)


_RECORD_SESSION = Cql(SESSIONS.cql_insert(), idempotent=True)
_INDEX_SESSION = Cql(
    "INSERT INTO sessions_by_user (user_id, day, created_at, session_id) VALUES (?, ?, ?, ?)",
    idempotent=True,
)
_GET_SESSION = Cql(SESSIONS.cql_select(), idempotent=True)
_USER_DAY = Cql(
    "SELECT created_at, session_id FROM sessions_by_user WHERE user_id = ? AND day = ? LIMIT ?",
    idempotent=True,
)
_READ_PLAY = Cql(PLAYS.cql_select(), idempotent=True)
_TELEMETRY: tuple[Table[Any], ...] = (PLAYER_EVENTS, CMCD_SAMPLES, SEGMENT_DELIVERIES)
_WRITE = {table.name: first_wins_insert(table) for table in _TELEMETRY}
_READ = {table.name: _first_written_select(table) for table in _TELEMETRY}


class ScyllaSessionStore:
    """SessionLog, TelemetryStore and PlayLedger in a CQL keyspace shared by every edge."""

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
        return cls(open_migrated_session(settings), owns_session=True)

    def __repr__(self) -> str:
        return f"ScyllaSessionStore({self.session!r})"

    def close(self) -> None:
        self._closed = True
        if self._owns_session:
            self.session.close()

    # SessionLog

    def record_session(self, session: PlaybackSession) -> None:
        action = f"record session {session.session_id}"
        self._check_open(action)
        index = (
            session.user_id,
            _utc_day(session.created_at),
            session.created_at,
            session.session_id,
        )
        raise_first(
            gather(
                [
                    sender(self.session, _RECORD_SESSION, SESSIONS.cql_row(session), action),
                    sender(self.session, _INDEX_SESSION, index, action),
                ]
            )
        )

    def get_session(self, session_id: str) -> PlaybackSession | None:
        action = f"read session {session_id}"
        self._check_open(action)
        row = self.session.execute(_GET_SESSION, (session_id,), action=action).one()
        return None if row is None else SESSIONS.from_cql(row)

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
                found.append(SESSIONS.from_cql(row))
        return found

    # TelemetryStore

    def write_telemetry(self, batch: TelemetryBatch) -> None:
        action = f"write {len(batch)} telemetry items"
        self._check_open(action)
        stamp = first_wins_timestamp(self._clock())
        rows: dict[str, list[tuple[Cql, Sequence[Any]]]] = {}
        _add_rows(rows, PLAYER_EVENTS, batch.events, stamp)
        _add_rows(rows, CMCD_SAMPLES, batch.cmcd, stamp)
        _add_rows(rows, SEGMENT_DELIVERIES, batch.deliveries, stamp)
        raise_first(
            gather(
                [
                    self._batch_sender(session_rows[start : start + ROWS_PER_BATCH], action)
                    for session_rows in rows.values()
                    for start in range(0, len(session_rows), ROWS_PER_BATCH)
                ]
            )
        )

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        action = f"read the telemetry of session {session_id}"
        self._check_open(action)
        key = (session_id,)
        events, samples, deliveries, play = raise_first(
            gather(
                [
                    *(
                        sender(self.session, _READ[t.name], key, action, READ_PAGE_ROWS)
                        for t in _TELEMETRY
                    ),
                    sender(self.session, _READ_PLAY, key, action),
                ]
            )
        )
        play_row = play.one()
        return SessionTelemetry(
            events=_first_written(events, PLAYER_EVENTS),
            cmcd=_first_written(samples, CMCD_SAMPLES),
            deliveries=_first_written(deliveries, SEGMENT_DELIVERIES),
            play=None if play_row is None else PLAYS.from_cql(play_row),
        )

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        action = f"read the events of {len(session_ids)} sessions"
        return self._read_each(PLAYER_EVENTS, session_ids, action)

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        action = f"read the deliveries of {len(session_ids)} sessions"
        return self._read_each(SEGMENT_DELIVERIES, session_ids, action)

    # PlayLedger (see streamer.sessions.scylla_plays)

    def claim_plays(self, plays: Sequence[PlayClaim]) -> tuple[PlayClaim, ...]:
        action = f"claim {len(plays)} plays"
        self._check_open(action)
        return self.plays.claim(_first_of_each(plays, PLAYS), action)

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        self._check_open(f"read the plays of track {track_id}")
        return self.plays.plays_by_day(track_id, first, last)

    def recount_plays(self, track_id: str, day: date) -> PlayRecount:
        self._check_open(f"recount the plays of track {track_id}")
        return self.plays.recount(track_id, day)

    def recount_due(self, day: date) -> tuple[PlayRecount, ...]:
        self._check_open(f"recount the plays of {day.isoformat()}")
        return self.plays.recount_due(day)

    def tracks_due_for_recount(self, day: date) -> list[str]:
        """Tracks whose counter for `day` may be off after a failure."""
        self._check_open(f"list the recounts due on {day.isoformat()}")
        return self.plays.due(day)

    # Internals

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise StorageError(f"cannot {action}: {self!r} is closed")

    def _batch_sender(self, rows: Sequence[tuple[Cql, Sequence[Any]]], action: str) -> Send:
        if len(rows) == 1:
            return sender(self.session, rows[0][0], rows[0][1], action)
        return lambda: self.session.execute_partition_batch_async(rows, action=action)

    def _read_each(
        self, table: Table[M], session_ids: Sequence[str], action: str
    ) -> dict[str, tuple[M, ...]]:
        """One partition read per session, all in flight together (bounded)."""
        self._check_open(action)
        sends = [
            sender(self.session, _READ[table.name], (session_id,), action, READ_PAGE_ROWS)
            for session_id in session_ids
        ]
        return {
            session_id: _first_written(rows, table)
            for session_id, rows in zip(session_ids, raise_first(gather(sends)), strict=True)
        }


def _add_rows(
    rows: dict[str, list[tuple[Cql, Sequence[Any]]]],
    table: Table[M],
    items: Iterable[M],
    stamp: int,
) -> None:
    """Add the first of each item's row, with its write timestamp, to its session's rows."""
    statement = _WRITE[table.name]
    for item in _first_of_each(items, table):
        rows.setdefault(getattr(item, SESSION_KEY), []).append(
            (statement, (*table.cql_row(item), stamp))
        )


def _first_of_each(items: Iterable[M], table: Table[M]) -> list[M]:
    """The items in order, without later ones of an identity seen before."""
    seen: set[tuple[Any, ...]] = set()
    kept = []
    for item in items:
        identity = tuple(getattr(item, name) for name in table.identity)
        if identity not in seen:
            seen.add(identity)
            kept.append(item)
    return kept


def _first_written(rows: Iterable[dict[str, Any]], table: Table[M]) -> tuple[M, ...]:
    """The items of the rows in order, one per identity: the row written first (the highest
    WRITETIME, see the module docstring)."""
    rows = list(rows)
    first: dict[tuple[Any, ...], int] = {}
    for row in rows:
        identity = tuple(row[name] for name in table.identity)
        known = first.get(identity)
        if known is None or row["written"] > known:
            first[identity] = row["written"]
    kept = []
    for row in rows:
        identity = tuple(row[name] for name in table.identity)
        if first.get(identity) == row["written"]:
            kept.append(table.from_cql(row))
            del first[identity]  # one row per identity, even on a tie
    return tuple(kept)


def _utc_day(unix_s: int) -> date:
    return datetime.fromtimestamp(unix_s, UTC).date()
