"""SQLiteOfflineStore: devices and download licences in one SQLite file, the embedded default.

Every call opens its own connection (safe across threads and processes); writes run in
BEGIN IMMEDIATE transactions, so a registration counts the account's devices and adds one
under the write lock (two at once cannot both see room for the last slot), and a licence is
written whole or not at all.
"""

from __future__ import annotations

import sqlite3
from contextlib import AbstractContextManager
from pathlib import Path

from streamer.errors import StorageError
from streamer.offline.errors import DeviceLimitReached
from streamer.offline.model import Device, Licence
from streamer.sqlite_files import connection, create_schema, immediate

SCHEMA_VERSION = 1  # PRAGMA user_version
BUSY_TIMEOUT_S = 10.0  # writes hold the lock for milliseconds

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS offline_devices (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        public_key BLOB NOT NULL,
        name TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        PRIMARY KEY (user_id, device_id)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS offline_licences (
        licence_id TEXT PRIMARY KEY,
        device_id TEXT NOT NULL,
        user_id TEXT NOT NULL,
        track_id TEXT NOT NULL,
        version TEXT NOT NULL,
        renditions TEXT NOT NULL,  -- comma-separated rendition names
        granted_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        revoked_by TEXT NOT NULL DEFAULT ''
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS offline_licences_by_device (
        user_id TEXT NOT NULL,
        device_id TEXT NOT NULL,
        licence_id TEXT NOT NULL,
        PRIMARY KEY (user_id, device_id, licence_id)
    )
    """,
)
_LICENCE_COLUMNS = (
    "licence_id, device_id, user_id, track_id, version, renditions, granted_at, expires_at,"
    " revoked_at, revoked_by"
)


class SQLiteOfflineStore:
    """The OfflineStore in one SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._closed = False
        create_schema(self.path, "offline store", _SCHEMA, SCHEMA_VERSION, BUSY_TIMEOUT_S)

    def __repr__(self) -> str:
        return f"SQLiteOfflineStore({str(self.path)!r})"

    def close(self) -> None:
        self._closed = True

    # DeviceRegistry

    def register_device(self, device: Device, limit: int) -> None:
        with self._connect(f"register device {device.device_id}") as conn, immediate(conn):
            (count,) = conn.execute(
                "SELECT count(*) FROM offline_devices WHERE user_id = ?", (device.user_id,)
            ).fetchone()
            if count >= limit:
                raise DeviceLimitReached(device.user_id, limit)
            conn.execute(
                "INSERT INTO offline_devices (user_id, device_id, public_key, name,"
                " registered_at) VALUES (?, ?, ?, ?, ?)",
                (
                    device.user_id,
                    device.device_id,
                    device.public_key,
                    device.name,
                    device.registered_at,
                ),
            )

    def devices_of(self, user_id: str) -> tuple[Device, ...]:
        with self._connect(f"list the devices of {user_id}") as conn:
            rows = conn.execute(
                "SELECT * FROM offline_devices WHERE user_id = ? ORDER BY registered_at, device_id",
                (user_id,),
            ).fetchall()
        return tuple(_device(row) for row in rows)

    def get_device(self, user_id: str, device_id: str) -> Device | None:
        with self._connect(f"read device {device_id}") as conn:
            row = conn.execute(
                "SELECT * FROM offline_devices WHERE user_id = ? AND device_id = ?",
                (user_id, device_id),
            ).fetchone()
        return None if row is None else _device(row)

    def remove_device(self, user_id: str, device_id: str) -> bool:
        with self._connect(f"remove device {device_id}") as conn, immediate(conn):
            cursor = conn.execute(
                "DELETE FROM offline_devices WHERE user_id = ? AND device_id = ?",
                (user_id, device_id),
            )
            return cursor.rowcount > 0

    # LicenceStore

    def grant_licence(self, licence: Licence) -> None:
        with self._connect(f"grant licence {licence.licence_id}") as conn, immediate(conn):
            conn.execute(
                f"INSERT INTO offline_licences ({_LICENCE_COLUMNS})"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    licence.licence_id,
                    licence.device_id,
                    licence.user_id,
                    licence.track_id,
                    licence.version,
                    ",".join(licence.renditions),
                    licence.granted_at,
                    licence.expires_at,
                    licence.revoked_at,
                    licence.revoked_by,
                ),
            )
            conn.execute(
                "INSERT INTO offline_licences_by_device (user_id, device_id, licence_id)"
                " VALUES (?, ?, ?)",
                (licence.user_id, licence.device_id, licence.licence_id),
            )

    def get_licence(self, licence_id: str) -> Licence | None:
        with self._connect(f"read licence {licence_id}") as conn:
            return _fetch_licence(conn, licence_id)

    def licences_of(self, user_id: str, device_id: str) -> tuple[Licence, ...]:
        with self._connect(f"list the licences of device {device_id}") as conn:
            rows = conn.execute(
                "SELECT l.* FROM offline_licences_by_device AS i JOIN offline_licences AS l"
                " ON l.licence_id = i.licence_id"
                " WHERE i.user_id = ? AND i.device_id = ? ORDER BY l.granted_at, l.licence_id",
                (user_id, device_id),
            ).fetchall()
        return tuple(_licence(row) for row in rows)

    def renew_licence(self, licence_id: str, expires_at: int, now: int) -> Licence | None:
        with self._connect(f"renew licence {licence_id}") as conn, immediate(conn):
            cursor = conn.execute(
                "UPDATE offline_licences SET expires_at = ? WHERE licence_id = ?"
                " AND revoked_at IS NULL AND expires_at > ?",
                (expires_at, licence_id, now),
            )
            if cursor.rowcount == 0:
                return None
            return _fetch_licence(conn, licence_id)

    def revoke_licence(self, licence_id: str, at: int, by: str) -> Licence | None:
        with self._connect(f"revoke licence {licence_id}") as conn, immediate(conn):
            conn.execute(
                "UPDATE offline_licences SET revoked_at = ?, revoked_by = ?"
                " WHERE licence_id = ? AND revoked_at IS NULL",
                (at, by, licence_id),
            )
            return _fetch_licence(conn, licence_id)

    def _connect(self, action: str) -> AbstractContextManager[sqlite3.Connection]:
        if self._closed:
            raise StorageError(f"offline store {self.path} is closed; cannot {action}")
        return connection(self.path, "offline store", action, BUSY_TIMEOUT_S)


def _fetch_licence(conn: sqlite3.Connection, licence_id: str) -> Licence | None:
    row = conn.execute(
        f"SELECT {_LICENCE_COLUMNS} FROM offline_licences WHERE licence_id = ?", (licence_id,)
    ).fetchone()
    return None if row is None else _licence(row)


def _device(row: sqlite3.Row) -> Device:
    return Device(
        device_id=row["device_id"],
        user_id=row["user_id"],
        public_key=bytes(row["public_key"]),
        name=row["name"],
        registered_at=row["registered_at"],
    )


def _licence(row: sqlite3.Row) -> Licence:
    return Licence(
        licence_id=row["licence_id"],
        device_id=row["device_id"],
        user_id=row["user_id"],
        track_id=row["track_id"],
        version=row["version"],
        renditions=tuple(r for r in row["renditions"].split(",") if r),
        granted_at=row["granted_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        revoked_by=row["revoked_by"],
    )
