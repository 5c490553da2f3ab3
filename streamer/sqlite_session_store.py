"""The embedded session store: one SQLite file under the data directory.

One connection shared by the threads that call it, serialised by a lock; WAL mode lets readers
(a support tool, `sqlite3` on the command line) look while the edge writes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from streamer.errors import StorageError
from streamer.sessions import SESSION_STORE_FILE, PlaybackSession
from streamer.settings import Settings

BUSY_TIMEOUT_S = 5.0  # another process (a second edge worker) holding the write lock

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
"""

_COLUMNS = (
    "session_id, user_id, tier, region, track_id, version, device, variants, created_at, expires_at"
)


class SqliteSessionStore:
    """SessionStore in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            with self._db:
                self._db.execute("PRAGMA journal_mode=WAL")
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

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_sqlite_session_store(settings: Settings) -> SqliteSessionStore:
    return SqliteSessionStore(settings.data_dir / SESSION_STORE_FILE)
