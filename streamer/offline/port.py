"""The offline download stores' ports: a device registry and a licence store.

    DeviceRegistry  the devices each premium listener registered, at most a limit per account,
                    enforced atomically (two registrations at once never pass the limit)
    LicenceStore    download licences: granted, renewed while valid, revoked for good

One store object implements both over one SQLite file (`SQLiteOfflineStore`) or one CQL
keyspace (`ScyllaOfflineStore`); `OfflineStore` names the two together for
`streamer.backends.open_offline_store`. The contract suite (tests/contract/
test_offline_store_contract.py) runs over both.

Calls are synchronous and may block; async callers run them in a thread. Every call may raise
StorageError; a closed store raises it for every call.
"""

from __future__ import annotations

from typing import Protocol

from streamer.offline.model import Device, Licence

OFFLINE_STORE_FILE = "offline.sqlite3"  # under settings.data_dir


class DeviceRegistry(Protocol):
    def register_device(self, device: Device, limit: int) -> None:
        """Add `device` to its account unless the account has `limit` devices already
        (DeviceLimitReached, 409). Atomic: concurrent registrations never pass the limit."""
        ...

    def devices_of(self, user_id: str) -> tuple[Device, ...]:
        """The account's devices, oldest first."""
        ...

    def get_device(self, user_id: str, device_id: str) -> Device | None:
        """The account's device with this id, or None."""
        ...

    def remove_device(self, user_id: str, device_id: str) -> bool:
        """Remove the device; whether it was there. Its licences are not touched here."""
        ...

    def close(self) -> None:
        """Release connections; further calls are errors."""
        ...


class LicenceStore(Protocol):
    def grant_licence(self, licence: Licence) -> None:
        """Store a new licence, whole or not at all (StorageError: nothing is kept)."""
        ...

    def get_licence(self, licence_id: str) -> Licence | None: ...

    def licences_of(self, user_id: str, device_id: str) -> tuple[Licence, ...]:
        """The device's licences, revoked and expired ones included, oldest grant first."""
        ...

    def renew_licence(self, licence_id: str, expires_at: int, now: int) -> Licence | None:
        """Move the expiry of a licence that is unrevoked and unexpired at `now`; the licence
        as stored afterwards, or None if it was not renewable (absent, revoked, expired)."""
        ...

    def revoke_licence(self, licence_id: str, at: int, by: str) -> Licence | None:
        """Revoke the licence from `at` on, for good; a revoked licence keeps its first
        revocation. The licence as stored afterwards, or None if there is none."""
        ...

    def close(self) -> None: ...


class OfflineStore(DeviceRegistry, LicenceStore, Protocol):
    """Both ports in one store: what `streamer.backends.open_offline_store` opens."""
