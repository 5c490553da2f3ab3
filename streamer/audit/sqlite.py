"""The embedded audit log: two tables in the session store's SQLite file.

    audit_entries  PRIMARY KEY (stream, seq)   one row per entry, WITHOUT ROWID
    audit_heads    PRIMARY KEY (stream)        each stream's checkpoint

An append is one IMMEDIATE transaction: the entries (a taken position fails the insert, and
the whole transaction rolls back into StreamConflict) and the checkpoint, which only moves
forward. The connection is its own, with synchronous=FULL: an acknowledged audit entry must
survive a power cut, where telemetry on the session store's connection may lose its last
commits.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

from streamer.audit.errors import StreamConflict
from streamer.audit.model import AuditEntry, StreamHead
from streamer.audit.port import check_run
from streamer.audit.rows import COLUMNS, from_row, to_row
from streamer.errors import StorageError
from streamer.sqlite_files import enable_wal

T = TypeVar("T")

BUSY_TIMEOUT_S = 5.0  # another process (an edge worker, the CLI) holding the write lock
READ_PAGE_ROWS = 1000

SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS audit_entries (
        stream TEXT NOT NULL,
        seq INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        at_us INTEGER NOT NULL,
        action TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        details TEXT NOT NULL,
        key_id TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL,
        PRIMARY KEY (stream, seq)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE IF NOT EXISTS audit_heads (
        stream TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        hash TEXT NOT NULL
    )
    """,
)
_COLUMNS = ", ".join(COLUMNS)
_INSERT = f"INSERT INTO audit_entries ({_COLUMNS}) VALUES ({', '.join('?' * len(COLUMNS))})"
_ADVANCE_HEAD = (
    "INSERT INTO audit_heads (stream, seq, hash) VALUES (?, ?, ?) ON CONFLICT (stream)"
    " DO UPDATE SET seq = excluded.seq, hash = excluded.hash WHERE excluded.seq > audit_heads.seq"
)
_TAIL = "SELECT seq, hash FROM audit_entries WHERE stream = ? ORDER BY seq DESC LIMIT 1"
_PAGE = f"SELECT {_COLUMNS} FROM audit_entries WHERE stream = ? AND seq > ? ORDER BY seq LIMIT ?"
_HEADS = "SELECT stream, seq, hash FROM audit_heads ORDER BY stream"
_STREAMS = (
    "SELECT stream FROM audit_heads UNION SELECT DISTINCT stream FROM audit_entries ORDER BY 1"
)


class SQLiteAuditLog:
    """AuditLog in a SQLite file (by default the session store's)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None
            )
            self._db.row_factory = sqlite3.Row
            enable_wal(self._db, BUSY_TIMEOUT_S)
            self._db.execute("PRAGMA synchronous=FULL")
            for statement in SCHEMA:
                self._db.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"cannot open the audit log in {path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SQLiteAuditLog({str(self.path)!r})"

    def append(self, entries: Sequence[AuditEntry]) -> None:
        check_run(entries)
        first, last = entries[0], entries[-1]

        def write(db: sqlite3.Connection) -> None:
            try:
                db.executemany(_INSERT, [to_row(entry) for entry in entries])
            except sqlite3.IntegrityError as exc:
                raise StreamConflict(first.stream, first.seq) from exc
            db.execute(_ADVANCE_HEAD, (last.stream, last.seq, last.hash))

        self._run(f"append {len(entries)} entries to audit stream {first.stream}", write, True)

    def tail(self, stream: str) -> StreamHead | None:
        def read(db: sqlite3.Connection) -> StreamHead | None:
            row = db.execute(_TAIL, (stream,)).fetchone()
            return None if row is None else StreamHead(stream, row["seq"], row["hash"])

        return self._run(f"read the tail of audit stream {stream}", read)

    def entries(self, stream: str, after_seq: int = 0) -> Iterator[AuditEntry]:
        def page(db: sqlite3.Connection, after: int) -> list[sqlite3.Row]:
            return db.execute(_PAGE, (stream, after, READ_PAGE_ROWS)).fetchall()

        while True:  # page by page: the lock is not held while the caller works
            rows = self._run(
                f"read audit stream {stream} after {after_seq}",
                functools.partial(page, after=after_seq),
            )
            for row in rows:
                yield from_row(dict(row))
            if len(rows) < READ_PAGE_ROWS:
                return
            after_seq = rows[-1]["seq"]

    def heads(self) -> list[StreamHead]:
        def read(db: sqlite3.Connection) -> list[StreamHead]:
            return [StreamHead(r["stream"], r["seq"], r["hash"]) for r in db.execute(_HEADS)]

        return self._run("read the audit checkpoints", read)

    def streams(self) -> list[str]:
        return self._run(
            "list the audit streams", lambda db: [row[0] for row in db.execute(_STREAMS)]
        )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, action: str, work: Callable[[sqlite3.Connection], T], write: bool = False) -> T:
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
                try:
                    result = work(self._db)
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._db.execute("COMMIT")
                return result
            except sqlite3.Error as exc:
                raise StorageError(f"cannot {action} in {self.path}: {exc}") from exc
