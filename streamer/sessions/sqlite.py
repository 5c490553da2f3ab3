"""The embedded session store: one SQLite file under the data directory.

One connection shared by the threads that call it, serialised by a lock; WAL mode lets readers
(a support tool, `sqlite3` on the command line) look while the edge writes.

Telemetry is written one batch per transaction. Every table's primary key is the item's
identity, so INSERT OR IGNORE makes writing a batch again harmless; a play increments its
track's day in `play_counts` in the same transaction, only when its `plays` row was new.

Each kind of telemetry goes in as one statement over a JSON array of its rows (json_each), not
one statement per row: the sqlite3 module lets go of the interpreter lock on every statement
step, and with the edge's event loop busy each step waited up to the 5 ms switch interval to
get it back. A writer thread then managed about 200 rows a second (benchmarks/README.md). The
writer's reads (`events_of`, `deliveries_of`) come back the same way, as one JSON row.
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path
from typing import Any, TypeVar

from streamer.errors import StorageError
from streamer.sessions.port import (
    CMCD_RETENTION_S,
    EVENT_RETENTION_S,
    SESSION_RETENTION_S,
    PlaybackSession,
)
from streamer.telemetry.model import (
    CmcdSample,
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0  # another process (a second edge worker) holding the write lock
# Checkpoint the WAL every 5,000 pages (about 20 MB) rather than SQLite's 1,000: telemetry rows
# land on scattered pages of the session indexes, and a page changed by several commits between
# two checkpoints is copied into the database once. 26 against 30-34 us of CPU per CMCD row
# once the table holds 150,000 rows (python -m benchmarks.store_rows, benchmarks/README.md).
WAL_CHECKPOINT_PAGES = 5000
# Records past their retention (streamer.sessions.port; the Scylla tables' TTLs) are deleted at most
# once per PRUNE_INTERVAL_S, in chunks of PRUNE_CHUNK_ROWS, each its own short transaction;
# the first prune waits PRUNE_FIRST_AFTER_S so that a start is not slowed by it.
PRUNE_INTERVAL_S = 3600.0
PRUNE_FIRST_AFTER_S = 60.0
PRUNE_CHUNK_ROWS = 5000
# table, its primary key, the time it was written, that time's units per second, retention
_EXPIRING = (
    ("cmcd_samples", "session_id, sample_id", "received_ms", 1000, CMCD_RETENTION_S),
    ("player_events", "session_id, event_id", "received_ms", 1000, EVENT_RETENTION_S),
    ("segment_deliveries", "session_id, name", "delivered_ms", 1000, EVENT_RETENTION_S),
    ("playback_sessions", "session_id", "created_at", 1, SESSION_RETENTION_S),
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS playback_sessions (
    session_id  TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    tier        TEXT NOT NULL,
    region      TEXT NOT NULL,
    track_id    TEXT NOT NULL,
    version     TEXT NOT NULL,
    device      TEXT NOT NULL,
    variants    TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS playback_sessions_by_user
    ON playback_sessions (user_id, created_at);

CREATE TABLE IF NOT EXISTS player_events (
    session_id     TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    type           TEXT NOT NULL,
    track_id       TEXT NOT NULL,
    client_ms      INTEGER NOT NULL,
    received_ms    INTEGER NOT NULL,
    position_s     REAL NOT NULL,
    seq            INTEGER NOT NULL,
    offline        INTEGER NOT NULL,
    pathway        TEXT NOT NULL,
    bitrate_kbps   INTEGER,
    rendition      TEXT NOT NULL,
    from_s         REAL,
    startup_ms     INTEGER,
    error_code     TEXT NOT NULL,
    error_message  TEXT NOT NULL,
    fatal          INTEGER NOT NULL,
    PRIMARY KEY (session_id, event_id)
) WITHOUT ROWID;

-- One row per playback request: rowid tables, whose rows are appended in arrival order while
-- only the small key index is kept in session order. WITHOUT ROWID keeps whole rows in key
-- order, and rows this wide (over 1/20 of a page) made every insert cost 2.3x (CMCD) and
-- 1.3x (deliveries) on a growing table.
CREATE TABLE IF NOT EXISTS cmcd_samples (
    session_id   TEXT NOT NULL,
    sample_id    TEXT NOT NULL,
    received_ms  INTEGER NOT NULL,
    route        TEXT NOT NULL,
    object       TEXT NOT NULL,
    status       INTEGER NOT NULL,
    keys         TEXT NOT NULL,
    PRIMARY KEY (session_id, sample_id)
);

CREATE TABLE IF NOT EXISTS segment_deliveries (
    session_id    TEXT NOT NULL,
    name          TEXT NOT NULL,
    track_id      TEXT NOT NULL,
    version       TEXT NOT NULL,
    rendition     TEXT NOT NULL,
    start_s       REAL NOT NULL,
    duration_s    REAL NOT NULL,
    delivered_ms  INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
);

CREATE TABLE IF NOT EXISTS plays (
    session_id  TEXT PRIMARY KEY,
    track_id    TEXT NOT NULL,
    day         TEXT NOT NULL,
    played_ms   INTEGER NOT NULL,
    offline     INTEGER NOT NULL
);

-- Retention: rows are pruned by the time they were written (see _EXPIRING).
CREATE INDEX IF NOT EXISTS playback_sessions_by_time ON playback_sessions (created_at);
CREATE INDEX IF NOT EXISTS player_events_by_time ON player_events (received_ms);
CREATE INDEX IF NOT EXISTS cmcd_samples_by_time ON cmcd_samples (received_ms);
CREATE INDEX IF NOT EXISTS segment_deliveries_by_time ON segment_deliveries (delivered_ms);

CREATE TABLE IF NOT EXISTS play_counts (
    track_id  TEXT NOT NULL,
    day       TEXT NOT NULL,
    plays     INTEGER NOT NULL,
    PRIMARY KEY (track_id, day)
) WITHOUT ROWID;
"""

_COLUMNS = (
    "session_id, user_id, tier, region, track_id, version, device, variants, created_at, expires_at"
)
_EVENT_COLUMNS = (
    "session_id, event_id, type, track_id, client_ms, received_ms, position_s, seq, offline, "
    "pathway, bitrate_kbps, rendition, from_s, startup_ms, error_code, error_message, fatal"
)
_CMCD_COLUMNS = "session_id, sample_id, received_ms, route, object, status, keys"
_DELIVERY_COLUMNS = (
    "session_id, track_id, version, rendition, name, start_s, duration_s, delivered_ms"
)
_PLAY_COLUMNS = "session_id, track_id, day, played_ms, offline"


def _event_row(e: PlayerEvent) -> tuple[Any, ...]:
    return (
        e.session_id,
        e.event_id,
        e.type,
        e.track_id,
        e.client_ms,
        e.received_ms,
        e.position_s,
        e.seq,
        int(e.offline),
        e.pathway,
        e.bitrate_kbps,
        e.rendition,
        e.from_s,
        e.startup_ms,
        e.error_code,
        e.error_message,
        int(e.fatal),
    )


def _event(row: Sequence[Any]) -> PlayerEvent:
    return PlayerEvent(
        session_id=row[0],
        event_id=row[1],
        type=row[2],
        track_id=row[3],
        client_ms=row[4],
        received_ms=row[5],
        position_s=row[6],
        seq=row[7],
        offline=bool(row[8]),
        pathway=row[9],
        bitrate_kbps=row[10],
        rendition=row[11],
        from_s=row[12],
        startup_ms=row[13],
        error_code=row[14],
        error_message=row[15],
        fatal=bool(row[16]),
    )


_cmcd_keys_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
# Values are checked finite on the way in (streamer.telemetry.model); ensure_ascii=False leaves text
# the sqlite3 module cannot encode (a lone surrogate) to fail the batch, as a bound parameter would.
_rows_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _insert_json_rows(table: str, columns: str) -> str:
    """INSERT OR IGNORE of the rows of a JSON array of arrays, in `columns` order."""
    count = len(columns.split(","))
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(count))
    return f"INSERT OR IGNORE INTO {table} ({columns}) SELECT {values} FROM json_each(?)"


def _cmcd_row(c: CmcdSample) -> tuple[Any, ...]:
    keys = _cmcd_keys_json(c.keys)  # a row per request: the encoder is built once
    return (c.session_id, c.sample_id, c.received_ms, c.route, c.object, c.status, keys)


def _delivery_row(d: SegmentDelivery) -> tuple[Any, ...]:
    return (
        d.session_id,
        d.track_id,
        d.version,
        d.rendition,
        d.name,
        d.start_s,
        d.duration_s,
        d.delivered_ms,
    )


def _select_json_rows(table: str, columns: str, reals: frozenset[str]) -> str:
    """One row: a JSON array of the rows (arrays in `columns` order) of the sessions named by
    a JSON array. `reals` are written as 17-digit text: SQLite's JSON keeps 15 digits."""
    values = ", ".join(
        f"CASE WHEN {c} IS NULL THEN NULL ELSE printf('%!.17g', {c}) END" if c in reals else c
        for c in columns.split(", ")
    )
    return (
        f"SELECT json_group_array(json_array({values})) FROM {table} "
        "WHERE session_id IN (SELECT value FROM json_each(?))"
    )


_EVENT_REALS = frozenset({"position_s", "from_s"})
_DELIVERY_REALS = frozenset({"start_s", "duration_s"})
_SELECT_EVENTS = _select_json_rows("player_events", _EVENT_COLUMNS, _EVENT_REALS)
_SELECT_DELIVERIES = _select_json_rows("segment_deliveries", _DELIVERY_COLUMNS, _DELIVERY_REALS)
_INSERT_EVENTS = _insert_json_rows("player_events", _EVENT_COLUMNS)
_INSERT_CMCD = _insert_json_rows("cmcd_samples", _CMCD_COLUMNS)
_INSERT_DELIVERIES = _insert_json_rows("segment_deliveries", _DELIVERY_COLUMNS)


def _play(row: tuple[Any, ...]) -> PlayClaim:
    return PlayClaim(row[0], row[1], date.fromisoformat(row[2]), row[3], bool(row[4]))


class SqliteSessionStore:
    """SessionStore in one SQLite file."""

    # A transaction holds the file's lock: every worker's writer waits behind a long one, and
    # larger ones save nothing on a local file.
    telemetry_batch_items = 500

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._next_prune = time.monotonic() + PRUNE_FIRST_AFTER_S
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            with self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
                # WAL with synchronous=NORMAL survives a process crash and loses at most the last
                # commits on a power cut; fsync on every commit cost 13x per session (656 us vs
                # 48 us) and serialised session creation behind telemetry writes.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open session store {path}: {exc}") from exc

    def record_session(self, session: PlaybackSession) -> None:
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
        try:
            with self._lock, self._db:
                self._db.execute(
                    f"INSERT OR REPLACE INTO playback_sessions ({_COLUMNS}) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    row,
                )
        except sqlite3.Error as exc:
            raise StorageError(
                f"cannot record session {session.session_id} in {self.path}: {exc}"
            ) from exc

    def get_session(self, session_id: str) -> PlaybackSession | None:
        try:
            with self._lock:
                row = self._db.execute(
                    f"SELECT {_COLUMNS} FROM playback_sessions WHERE session_id = ?",
                    (session_id,),
                ).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read session {session_id} from {self.path}: {exc}") from exc
        if row is None:
            return None
        return PlaybackSession(
            session_id=row[0],
            user_id=row[1],
            tier=row[2],
            region=row[3],
            track_id=row[4],
            version=row[5],
            device=json.loads(row[6]),
            variants=tuple(json.loads(row[7])),
            created_at=row[8],
            expires_at=row[9],
        )

    def write_telemetry(self, batch: TelemetryBatch) -> tuple[PlayClaim, ...]:
        def write(db: sqlite3.Connection) -> tuple[PlayClaim, ...]:
            for statement, rows in (
                (_INSERT_EVENTS, [_event_row(e) for e in batch.events]),
                (_INSERT_CMCD, [_cmcd_row(c) for c in batch.cmcd]),
                (_INSERT_DELIVERIES, [_delivery_row(d) for d in batch.deliveries]),
            ):
                if rows:
                    db.execute(statement, (_rows_json(rows),))
            counted = []
            for play in batch.plays:
                inserted = db.execute(
                    f"INSERT OR IGNORE INTO plays ({_PLAY_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                    (
                        play.session_id,
                        play.track_id,
                        play.day.isoformat(),
                        play.played_ms,
                        int(play.offline),
                    ),
                ).rowcount
                if inserted == 1:
                    db.execute(
                        "INSERT INTO play_counts (track_id, day, plays) VALUES (?, ?, 1) "
                        "ON CONFLICT (track_id, day) DO UPDATE SET plays = plays + 1",
                        (play.track_id, play.day.isoformat()),
                    )
                    counted.append(play)
            return tuple(counted)

        counted = self._transaction(f"write {len(batch)} telemetry items to", write)
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
            self.prune_expired(time.time())
        return counted

    def prune_expired(self, now_s: float) -> int:
        """Delete sessions, events, deliveries and CMCD samples past their retention (plays and
        play counts are kept); the number of rows deleted."""
        deleted = 0
        for table, key, written, per_s, retention_s in _EXPIRING:
            cutoff = int((now_s - retention_s) * per_s)
            statement = (
                f"DELETE FROM {table} WHERE ({key}) IN "
                f"(SELECT {key} FROM {table} WHERE {written} < ? LIMIT {PRUNE_CHUNK_ROWS})"
            )
            while True:  # chunk by chunk: other writers get the lock in between
                rows = self._transaction(
                    f"prune {table} in",
                    functools.partial(_delete_rows, statement=statement, cutoff=cutoff),
                )
                deleted += rows
                if rows < PRUNE_CHUNK_ROWS:
                    break
        return deleted

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        def read(db: sqlite3.Connection) -> SessionTelemetry:
            key = (session_id,)
            samples = db.execute(
                f"SELECT {_CMCD_COLUMNS} FROM cmcd_samples WHERE session_id = ? "
                "ORDER BY received_ms, sample_id",
                key,
            ).fetchall()
            play = db.execute(
                f"SELECT {_PLAY_COLUMNS} FROM plays WHERE session_id = ?", key
            ).fetchone()
            return SessionTelemetry(
                events=_events_of(db, key)[session_id],
                cmcd=tuple(
                    CmcdSample(r[0], r[1], r[2], r[3], r[4], r[5], json.loads(r[6]))
                    for r in samples
                ),
                deliveries=_deliveries_of(db, key)[session_id],
                play=None if play is None else _play(play),
            )

        return self._transaction(f"read the telemetry of session {session_id} from", read)

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        def read(db: sqlite3.Connection) -> dict[str, tuple[PlayerEvent, ...]]:
            return _events_of(db, session_ids)

        return self._transaction(f"read the events of {len(session_ids)} sessions from", read)

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        def read(db: sqlite3.Connection) -> dict[str, tuple[SegmentDelivery, ...]]:
            return _deliveries_of(db, session_ids)

        what = f"read the deliveries of {len(session_ids)} sessions from"
        return self._transaction(what, read)

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        def read(db: sqlite3.Connection) -> dict[date, int]:
            rows = db.execute(
                "SELECT day, plays FROM play_counts WHERE track_id = ? AND day BETWEEN ? AND ? "
                "ORDER BY day",
                (track_id, first.isoformat(), last.isoformat()),
            ).fetchall()
            return {date.fromisoformat(day): plays for day, plays in rows if plays > 0}

        return self._transaction(f"read the plays of track {track_id} from", read)

    def _transaction(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            with self._lock, self._db:
                return work(self._db)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot {what} {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _items_of(
    db: sqlite3.Connection,
    statement: str,
    columns: str,
    reals: frozenset[str],
    ids: Sequence[str],
    build: Callable[[list[Any]], T],
    order: Callable[[T], Any],
) -> dict[str, tuple[T, ...]]:
    """The items of each session in `ids` in `order`, read in one statement step."""
    (text,) = db.execute(statement, (_rows_json(list(ids)),)).fetchone()
    at = [i for i, name in enumerate(columns.split(", ")) if name in reals]
    found: dict[str, list[T]] = {session_id: [] for session_id in ids}
    for row in json.loads(text):
        for i in at:
            if row[i] is not None:
                row[i] = float(row[i])
        found[row[0]].append(build(row))
    return {session_id: tuple(sorted(items, key=order)) for session_id, items in found.items()}


def _events_of(
    db: sqlite3.Connection, session_ids: Sequence[str]
) -> dict[str, tuple[PlayerEvent, ...]]:
    return _items_of(
        db, _SELECT_EVENTS, _EVENT_COLUMNS, _EVENT_REALS, session_ids, _event,
        lambda e: (e.client_ms, e.seq, e.event_id),
    )  # fmt: skip


def _deliveries_of(
    db: sqlite3.Connection, session_ids: Sequence[str]
) -> dict[str, tuple[SegmentDelivery, ...]]:
    return _items_of(
        db, _SELECT_DELIVERIES, _DELIVERY_COLUMNS, _DELIVERY_REALS, session_ids,
        lambda row: SegmentDelivery(*row), lambda d: (d.delivered_ms, d.name),
    )  # fmt: skip


def _delete_rows(db: sqlite3.Connection, statement: str, cutoff: int) -> int:
    return db.execute(statement, (cutoff,)).rowcount
