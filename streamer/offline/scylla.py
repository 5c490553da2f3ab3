"""ScyllaOfflineStore: devices and download licences in a CQL keyspace (migration 5).

Tables, query-first:

    offline_devices             PRIMARY KEY ((user_id), device_id), static devices_version
        An account's devices, one small partition (at most `DEVICE_LIMIT` rows). A
        registration reads the partition at LOCAL_SERIAL, counts its devices, and inserts
        the new row in one conditional update that also bumps `devices_version`
        (`IF devices_version = <read>`): of two registrations that read the same devices,
        one applies and the other re-reads and counts again, so the limit holds under races.
        A removal is a conditional delete (`IF EXISTS`); it frees a slot and needs no version.
    offline_licences            PRIMARY KEY (licence_id)
        The licence; inserted with `IF NOT EXISTS`, renewed and revoked with conditional
        updates, so a renewal never lands on a licence revoked a moment before.
    offline_licences_by_device  PRIMARY KEY ((user_id, device_id), licence_id)
        The device's licences. Written before the licence: a grant that fails half-way leaves
        at most an index row without its licence, which listings skip; never a licence that
        exists but was not handed out complete.
"""

from __future__ import annotations

from typing import Any

from streamer.cql.connection import Cql, CqlSession
from streamer.cql.schema import open_migrated_session
from streamer.errors import StorageError
from streamer.offline.errors import DeviceLimitReached
from streamer.offline.model import Device, Licence
from streamer.settings import Settings

REGISTER_TRIES = 8  # conflicting registrations of one account at once: a handful at most

_DEVICE_COLUMNS = "user_id, device_id, public_key, name, registered_at"
_LICENCE_COLUMNS = (
    "licence_id, device_id, user_id, track_id, version, renditions, granted_at, expires_at,"
    " revoked_at, revoked_by"
)
_READ_DEVICES = Cql(
    f"SELECT {_DEVICE_COLUMNS}, devices_version FROM offline_devices WHERE user_id = ?",
    idempotent=True,
    consistency="LOCAL_SERIAL",  # sees every applied conditional write
)
_GET_DEVICE = Cql(
    f"SELECT {_DEVICE_COLUMNS} FROM offline_devices WHERE user_id = ? AND device_id = ?",
    idempotent=True,
    consistency="LOCAL_SERIAL",
)
_REGISTER = (
    "UPDATE offline_devices SET devices_version = ?, public_key = ?, name = ?, registered_at = ?"
    " WHERE user_id = ? AND device_id = ?"
)
_REGISTER_FIRST = Cql(_REGISTER + " IF devices_version = null", idempotent=False)
_REGISTER_NEXT = Cql(_REGISTER + " IF devices_version = ?", idempotent=False)
_REMOVE_DEVICE = Cql(
    "DELETE FROM offline_devices WHERE user_id = ? AND device_id = ? IF EXISTS", idempotent=False
)
_INDEX_LICENCE = Cql(
    "INSERT INTO offline_licences_by_device (user_id, device_id, licence_id) VALUES (?, ?, ?)",
    idempotent=True,
)
_INSERT_LICENCE = Cql(
    f"INSERT INTO offline_licences ({_LICENCE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " IF NOT EXISTS",
    idempotent=False,
)
_GET_LICENCE = Cql(
    f"SELECT {_LICENCE_COLUMNS} FROM offline_licences WHERE licence_id = ?",
    idempotent=True,
    consistency="LOCAL_SERIAL",
)
_LIST_LICENCES = Cql(
    "SELECT licence_id FROM offline_licences_by_device WHERE user_id = ? AND device_id = ?",
    idempotent=True,
)
# `granted_at > 0` fails on an absent row, so neither update creates one.
_RENEW = Cql(
    "UPDATE offline_licences SET expires_at = ? WHERE licence_id = ?"
    " IF granted_at > 0 AND revoked_at = null AND expires_at > ?",
    idempotent=False,
)
_REVOKE = Cql(
    "UPDATE offline_licences SET revoked_at = ?, revoked_by = ? WHERE licence_id = ?"
    " IF granted_at > 0 AND revoked_at = null",
    idempotent=False,
)


class ScyllaOfflineStore:
    """The OfflineStore in a CQL keyspace shared by every edge."""

    def __init__(self, session: CqlSession, *, owns_session: bool = False) -> None:
        if session.keyspace is None:
            raise ValueError(f"{session!r} has no keyspace; open it with use_keyspace=True")
        self.session = session
        self._owns_session = owns_session
        self._closed = False

    @classmethod
    def from_settings(cls, settings: Settings) -> ScyllaOfflineStore:
        """Connect; ConfigError saying to run `streamer db migrate` if the schema is behind."""
        return cls(open_migrated_session(settings), owns_session=True)

    def __repr__(self) -> str:
        return f"ScyllaOfflineStore({self.session!r})"

    def close(self) -> None:
        self._closed = True
        if self._owns_session:
            self.session.close()

    # DeviceRegistry

    def register_device(self, device: Device, limit: int) -> None:
        action = f"register device {device.device_id} of {device.user_id}"
        self._check_open(action)
        for _ in range(REGISTER_TRIES):
            rows = self.session.execute(_READ_DEVICES, (device.user_id,), action=action).all()
            devices = [row for row in rows if row["device_id"] is not None]
            if len(devices) >= limit:
                raise DeviceLimitReached(device.user_id, limit)
            version = rows[0]["devices_version"] if rows else None
            values: tuple[object, ...] = (
                (version or 0) + 1,
                device.public_key,
                device.name,
                device.registered_at,
                device.user_id,
                device.device_id,
            )
            if version is None:
                statement, params = _REGISTER_FIRST, values
            else:
                statement, params = _REGISTER_NEXT, (*values, version)
            applied, _ = self.session.execute(statement, params, action=action).conditional()
            if applied:
                return
        raise StorageError(
            f"cannot {action}: {REGISTER_TRIES} tries each lost to another registration"
        )

    def devices_of(self, user_id: str) -> tuple[Device, ...]:
        action = f"list the devices of {user_id}"
        self._check_open(action)
        rows = self.session.execute(_READ_DEVICES, (user_id,), action=action).all()
        devices = [_device(row) for row in rows if row["device_id"] is not None]
        return tuple(sorted(devices, key=lambda d: (d.registered_at, d.device_id)))

    def get_device(self, user_id: str, device_id: str) -> Device | None:
        action = f"read device {device_id}"
        self._check_open(action)
        row = self.session.execute(_GET_DEVICE, (user_id, device_id), action=action).one()
        return None if row is None or row["device_id"] is None else _device(row)

    def remove_device(self, user_id: str, device_id: str) -> bool:
        action = f"remove device {device_id}"
        self._check_open(action)
        applied, _ = self.session.execute(
            _REMOVE_DEVICE, (user_id, device_id), action=action
        ).conditional()
        return applied

    # LicenceStore

    def grant_licence(self, licence: Licence) -> None:
        action = f"grant licence {licence.licence_id}"
        self._check_open(action)
        self.session.execute(
            _INDEX_LICENCE, (licence.user_id, licence.device_id, licence.licence_id), action=action
        )
        applied, _ = self.session.execute(
            _INSERT_LICENCE,
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
            action=action,
        ).conditional()
        if not applied:
            raise StorageError(f"cannot {action}: a licence with this id exists already")

    def get_licence(self, licence_id: str) -> Licence | None:
        action = f"read licence {licence_id}"
        self._check_open(action)
        row = self.session.execute(_GET_LICENCE, (licence_id,), action=action).one()
        return None if row is None else _licence(row)

    def licences_of(self, user_id: str, device_id: str) -> tuple[Licence, ...]:
        action = f"list the licences of device {device_id}"
        self._check_open(action)
        ids = [
            row["licence_id"]
            for row in self.session.execute(_LIST_LICENCES, (user_id, device_id), action=action)
        ]
        futures = [
            self.session.execute_async(_GET_LICENCE, (licence_id,), action=action)
            for licence_id in ids
        ]
        rows = [future.result().one() for future in futures]
        licences = [_licence(row) for row in rows if row is not None]
        return tuple(sorted(licences, key=lambda lic: (lic.granted_at, lic.licence_id)))

    def renew_licence(self, licence_id: str, expires_at: int, now: int) -> Licence | None:
        action = f"renew licence {licence_id}"
        self._check_open(action)
        applied, _ = self.session.execute(
            _RENEW, (expires_at, licence_id, now), action=action
        ).conditional()
        return self.get_licence(licence_id) if applied else None

    def revoke_licence(self, licence_id: str, at: int, by: str) -> Licence | None:
        action = f"revoke licence {licence_id}"
        self._check_open(action)
        self.session.execute(_REVOKE, (at, by, licence_id), action=action).conditional()
        return self.get_licence(licence_id)

    def _check_open(self, action: str) -> None:
        if self._closed:
            raise StorageError(f"offline store is closed; cannot {action}")


def _device(row: dict[str, Any]) -> Device:
    return Device(
        device_id=row["device_id"],
        user_id=row["user_id"],
        public_key=bytes(row["public_key"]),
        name=row["name"] or "",
        registered_at=row["registered_at"],
    )


def _licence(row: dict[str, Any]) -> Licence:
    def text(name: str) -> str:
        return str(row[name] or "")

    return Licence(
        licence_id=row["licence_id"],
        device_id=text("device_id"),
        user_id=text("user_id"),
        track_id=text("track_id"),
        version=text("version"),
        renditions=tuple(r for r in text("renditions").split(",") if r),
        granted_at=row["granted_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        revoked_by=text("revoked_by"),
    )
