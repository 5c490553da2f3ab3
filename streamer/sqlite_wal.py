"""Switching an SQLite file to WAL when other connections may be opening it at the same moment.

The switch takes the file's exclusive lock, and SQLite answers "database is locked" at once
rather than calling the busy handler when another connection holds a lock on a file still in
rollback mode: edge workers starting together, or threads opening one store, then fail to open
it. The switch is recorded in the file, so only the first opening ever waits here.
"""

from __future__ import annotations

import sqlite3
import time

RETRY_S = 0.01


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
