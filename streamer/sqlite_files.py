"""What every embedded SQLite store does with its file: open a connection per call with errors
that name the store, hold the write lock for a transaction, and switch the file to WAL.

Switching to WAL when other connections may be opening the file at the same moment: the switch
takes the file's exclusive lock, and SQLite answers "database is locked" at once
rather than calling the busy handler when another connection holds a lock on a file still in
rollback mode: edge workers starting together, or threads opening one store, then fail to open
it. The switch is recorded in the file, so only the first opening ever waits here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from streamer.errors import StorageError

RETRY_S = 0.01


@contextmanager
def connection(
    path: Path, store: str, action: str, timeout_s: float
) -> Iterator[sqlite3.Connection]:
    """A fresh autocommit connection to `path` with rows by name; sqlite3 errors leave as
    StorageError naming the store ("job store <path>"), its file and the action."""
    try:
        conn = sqlite3.connect(path, timeout=timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise StorageError(f"{store} {path} cannot {action}: {exc}") from exc
    try:
        conn.row_factory = sqlite3.Row
        yield conn
    except sqlite3.Error as exc:
        raise StorageError(f"{store} {path} cannot {action}: {exc}") from exc
    finally:
        conn.close()


def create_schema(
    path: Path, store: str, statements: Sequence[str], version: int, timeout_s: float
) -> None:
    """Create `path`'s directory and schema (`statements`, idempotent) in WAL mode, under the
    write lock; StorageError if the file holds another schema version than `version`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the directory of {store} {path}: {exc.strerror or exc}"
        ) from exc
    with connection(path, store, "create its schema", timeout_s) as conn:
        enable_wal(conn, timeout_s)  # persistent: recorded in the file
        with immediate(conn):
            found = conn.execute("PRAGMA user_version").fetchone()[0]
            if found not in (0, version):
                raise StorageError(
                    f"{store} {path} has schema version {found}; this server reads version"
                    f" {version}"
                )
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version}")


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A transaction that holds the write lock from its first statement (BEGIN IMMEDIATE), so
    what it reads stays true until it commits."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def enable_wal(db: sqlite3.Connection, timeout_s: float) -> None:
    """Put `db`'s file in WAL mode, retrying while other connections hold its lock."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(RETRY_S)
