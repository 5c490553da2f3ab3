"""The embedded session store: one SQLite file under the data directory, all three ports.

One connection shared by the threads that call it, serialised by a lock; WAL mode lets readers
(a support tool, `sqlite3` on the command line) look while the edge writes.

Tables, statements and row codecs come from the declarations of streamer.sessions.tables.
Telemetry is written one batch per transaction. Every table's primary key is the item's
identity, so INSERT OR IGNORE makes writing a batch again harmless. Each kind of telemetry goes
in as one statement over a JSON array of its rows (Table.sqlite_insert_json), and the writer's
reads (`events_of`, `deliveries_of`) come back the same way, as one JSON row: a writer thread
stepping one statement per row managed about 200 rows a second (benchmarks/README.md).

Plays (streamer.sessions.sqlite_plays): a claim increments its track's day in `play_counts` in
the claim's transaction, only when its `plays` row was new, so the count cannot drift from the
claims; a recount checks that, and repairs a count changed by hand.
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
from typing import TypeVar

from streamer.errors import StorageError
from streamer.sessions import sqlite_plays
from streamer.sessions.port import PlaybackSession, PlayRecount
from streamer.sessions.table_spec import SESSION_KEY, Table, json_rows
from streamer.sessions.tables import (
    CMCD_SAMPLES,
    PLAYER_EVENTS,
    PLAYS,
    SEGMENT_DELIVERIES,
    SESSIONS,
)
from streamer.sqlite_files import enable_wal
from streamer.telemetry.model import (
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)

T = TypeVar("T")
M = TypeVar("M")

BUSY_TIMEOUT_S = 5.0  # another process (a second edge worker) holding the write lock
# Checkpoint the WAL every 5,000 pages (about 20 MB) rather than SQLite's 1,000: telemetry rows
# land on scattered pages of the session indexes, and a page changed by several commits between
# two checkpoints is copied into the database once. 26 against 30-34 us of CPU per CMCD row
# once the table holds 150,000 rows (python -m benchmarks.store_rows, benchmarks/README.md).
WAL_CHECKPOINT_PAGES = 5000
# Records past their retention (the tables' Expiry; the Scylla tables' TTLs) are deleted at most
# once per PRUNE_INTERVAL_S, in chunks of PRUNE_CHUNK_ROWS, each its own short transaction;
# the first prune waits PRUNE_FIRST_AFTER_S so that a start is not slowed by it.
PRUNE_INTERVAL_S = 3600.0
PRUNE_FIRST_AFTER_S = 60.0
PRUNE_CHUNK_ROWS = 5000
_EXPIRING = (CMCD_SAMPLES, PLAYER_EVENTS, SEGMENT_DELIVERIES, SESSIONS)

_SCHEMA = ";\n".join(
    (
        SESSIONS.sqlite_ddl(),
        "CREATE INDEX IF NOT EXISTS playback_sessions_by_user"
        " ON playback_sessions (user_id, created_at)",
        # Events are few per session and read by session: kept in key order.
        PLAYER_EVENTS.sqlite_ddl(without_rowid=True),
        # One row per playback request: rowid tables, whose rows are appended in arrival order
        # while only the small key index is kept in session order. WITHOUT ROWID keeps whole
        # rows in key order, and rows this wide (over 1/20 of a page) made every insert cost
        # 2.3x (CMCD) and 1.3x (deliveries) on a growing table.
        CMCD_SAMPLES.sqlite_ddl(),
        SEGMENT_DELIVERIES.sqlite_ddl(),
        PLAYS.sqlite_ddl(),
        *sqlite_plays.SCHEMA,
        # Retention: rows are pruned by the time they were written.
        *(
            f"CREATE INDEX IF NOT EXISTS {t.name}_by_time ON {t.name} ({t.expiry.column})"
            for t in _EXPIRING
            if t.expiry is not None
        ),
    )
)
_INSERT_SESSION = SESSIONS.sqlite_insert("INSERT OR REPLACE")
_GET_SESSION = SESSIONS.sqlite_select("session_id = ?")
_SELECT_CMCD = CMCD_SAMPLES.sqlite_select("session_id = ? ORDER BY received_ms, sample_id")
_SELECT_PLAY = PLAYS.sqlite_select("session_id = ?")
_TELEMETRY = (PLAYER_EVENTS, CMCD_SAMPLES, SEGMENT_DELIVERIES)
_INSERT_JSON = {table.name: table.sqlite_insert_json() for table in _TELEMETRY}
_SELECT_JSON = {table.name: table.sqlite_select_json() for table in _TELEMETRY}


class SQLiteSessionStore:
    """SessionLog, TelemetryStore and PlayLedger in one SQLite file."""

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
                enable_wal(self._db, BUSY_TIMEOUT_S)
                # WAL with synchronous=NORMAL survives a process crash and loses at most the last
                # commits on a power cut; fsync on every commit cost 13x per session (656 us vs
                # 48 us) and serialised session creation behind telemetry writes.
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
                self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open session store {path}: {exc}") from exc

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # SessionLog

    def record_session(self, session: PlaybackSession) -> None:
        row = SESSIONS.sqlite_row(session)
        self._transaction(
            f"record session {session.session_id} in",
            lambda db: db.execute(_INSERT_SESSION, row),
        )

    def get_session(self, session_id: str) -> PlaybackSession | None:
        def read(db: sqlite3.Connection) -> PlaybackSession | None:
            row = db.execute(_GET_SESSION, (session_id,)).fetchone()
            return None if row is None else SESSIONS.from_sqlite(row)

        return self._transaction(f"read session {session_id} from", read)

    # TelemetryStore

    def write_telemetry(self, batch: TelemetryBatch) -> None:
        def write(db: sqlite3.Connection) -> None:
            _insert(db, PLAYER_EVENTS, batch.events)
            _insert(db, CMCD_SAMPLES, batch.cmcd)
            _insert(db, SEGMENT_DELIVERIES, batch.deliveries)

        self._transaction(f"write {len(batch)} telemetry items to", write)
        self._prune_when_due()

    def session_telemetry(self, session_id: str) -> SessionTelemetry:
        def read(db: sqlite3.Connection) -> SessionTelemetry:
            key = (session_id,)
            play = db.execute(_SELECT_PLAY, key).fetchone()
            return SessionTelemetry(
                events=_items_of(db, PLAYER_EVENTS, key)[session_id],
                cmcd=tuple(map(CMCD_SAMPLES.from_sqlite, db.execute(_SELECT_CMCD, key))),
                deliveries=_items_of(db, SEGMENT_DELIVERIES, key)[session_id],
                play=None if play is None else PLAYS.from_sqlite(play),
            )

        return self._transaction(f"read the telemetry of session {session_id} from", read)

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        return self._transaction(
            f"read the events of {len(session_ids)} sessions from",
            functools.partial(_items_of, table=PLAYER_EVENTS, ids=session_ids),
        )

    def deliveries_of(self, session_ids: Sequence[str]) -> dict[str, tuple[SegmentDelivery, ...]]:
        return self._transaction(
            f"read the deliveries of {len(session_ids)} sessions from",
            functools.partial(_items_of, table=SEGMENT_DELIVERIES, ids=session_ids),
        )

    def prune_expired(self, now_s: float) -> int:
        """Delete sessions, events, deliveries and CMCD samples past their retention (plays and
        play counts are kept); the number of rows deleted."""
        deleted = 0
        for table in _EXPIRING:
            assert table.expiry is not None
            cutoff = int((now_s - table.expiry.retention_s) * table.expiry.per_second)
            key = ", ".join(table.identity)
            statement = (
                f"DELETE FROM {table.name} WHERE ({key}) IN (SELECT {key} FROM {table.name} "
                f"WHERE {table.expiry.column} < ? LIMIT {PRUNE_CHUNK_ROWS})"
            )
            while True:  # chunk by chunk: other writers get the lock in between
                rows = self._transaction(
                    f"prune {table.name} in",
                    functools.partial(_delete_rows, statement=statement, cutoff=cutoff),
                )
                deleted += rows
                if rows < PRUNE_CHUNK_ROWS:
                    break
        return deleted

    # PlayLedger

    def claim_plays(self, plays: Sequence[PlayClaim]) -> tuple[PlayClaim, ...]:
        if not plays:
            return ()
        return self._transaction(
            f"claim {len(plays)} plays in", functools.partial(sqlite_plays.claim, plays=plays)
        )

    def plays_by_day(self, track_id: str, first: date, last: date) -> dict[date, int]:
        return self._transaction(
            f"read the plays of track {track_id} from",
            functools.partial(sqlite_plays.counts, track_id=track_id, first=first, last=last),
        )

    def recount_plays(self, track_id: str, day: date) -> PlayRecount:
        return self._transaction(
            f"recount the plays of track {track_id} on {day.isoformat()} in",
            functools.partial(sqlite_plays.recount, track_id=track_id, day=day),
        )

    def recount_due(self, day: date) -> tuple[PlayRecount, ...]:
        return self._transaction(
            f"recount the plays of {day.isoformat()} in",
            functools.partial(sqlite_plays.recount_due, day=day),
        )

    # Internals

    def _transaction(self, what: str, work: Callable[[sqlite3.Connection], T]) -> T:
        try:
            with self._lock, self._db:
                return work(self._db)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot {what} {self.path}: {exc}") from exc

    def _prune_when_due(self) -> None:
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
            self.prune_expired(time.time())


def _insert(db: sqlite3.Connection, table: Table[M], items: Sequence[M]) -> None:
    """The items in one statement step (Table.sqlite_insert_json)."""
    if items:
        rows = [table.sqlite_row(item) for item in items]
        db.execute(_INSERT_JSON[table.name], (json_rows(rows),))


def _items_of(
    db: sqlite3.Connection, table: Table[M], ids: Sequence[str]
) -> dict[str, tuple[M, ...]]:
    """The items of each session in `ids` in the table's order, read in one statement step."""
    (text,) = db.execute(_SELECT_JSON[table.name], (json_rows(list(ids)),)).fetchone()
    found: dict[str, list[M]] = {session_id: [] for session_id in ids}
    at = table.names.index(SESSION_KEY)
    for row in json.loads(text):
        found[row[at]].append(table.from_sqlite(row))
    return {
        session_id: tuple(sorted(items, key=table.sort_key)) for session_id, items in found.items()
    }


def _delete_rows(db: sqlite3.Connection, statement: str, cutoff: int) -> int:
    return db.execute(statement, (cutoff,)).rowcount
