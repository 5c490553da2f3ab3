"""The offline store's contract (devices and licences), over SQLite and Scylla (Cassandra)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamer.errors import StorageError
from streamer.offline.errors import DeviceLimitReached
from streamer.offline.model import Device, Licence
from streamer.offline.policy import DEVICE_LIMIT
from streamer.offline.port import OfflineStore
from streamer.offline.sqlite import SQLiteOfflineStore
from tests.backends.cql_fixtures import open_test_scylla_offline_store
from tests.backends.services import backend_params
from tests.contract.session_stores import in_threads

OFFLINE_STORES: dict[str, Callable[[Path], OfflineStore]] = {
    "sqlite": lambda tmp: SQLiteOfflineStore(tmp / "offline.sqlite3"),
    "scylla": open_test_scylla_offline_store,
}
T0 = 1_700_000_000
KEY = bytes(range(1, 33))


@pytest.fixture(params=backend_params(OFFLINE_STORES))
def open_store(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[Callable[[], OfflineStore]]:
    opened: list[OfflineStore] = []

    def open_() -> OfflineStore:
        store = OFFLINE_STORES[request.param](tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        with contextlib.suppress(StorageError):
            store.close()


@pytest.fixture
def store(open_store: Callable[[], OfflineStore]) -> OfflineStore:
    return open_store()


def device(device_id: str = "d1", user_id: str = "u1", at: int = T0) -> Device:
    return Device(device_id, user_id, KEY, f"phone {device_id}", at)


def licence(licence_id: str = "l1", device_id: str = "d1", **overrides: object) -> Licence:
    fields: dict[str, object] = {
        "licence_id": licence_id,
        "device_id": device_id,
        "user_id": "u1",
        "track_id": "trk1",
        "version": "v1",
        "renditions": ("aac_256", "flac"),
        "granted_at": T0,
        "expires_at": T0 + 1000,
    }
    fields.update(overrides)
    return Licence(**fields)  # type: ignore[arg-type]


def test_registered_devices_read_back_in_order(store: OfflineStore) -> None:
    store.register_device(device("d2", at=T0 + 5), DEVICE_LIMIT)
    store.register_device(device("d1", at=T0), DEVICE_LIMIT)
    store.register_device(device("x1", user_id="u2"), DEVICE_LIMIT)
    assert [d.device_id for d in store.devices_of("u1")] == ["d1", "d2"]
    assert store.get_device("u1", "d2") == device("d2", at=T0 + 5)
    assert store.get_device("u2", "d2") is None  # another account's id space
    assert store.devices_of("nobody") == ()


def test_the_limit_refuses_one_more_device_and_a_removal_frees_a_slot(store: OfflineStore) -> None:
    for n in range(DEVICE_LIMIT):
        store.register_device(device(f"d{n}"), DEVICE_LIMIT)
    with pytest.raises(DeviceLimitReached) as refused:
        store.register_device(device("d9"), DEVICE_LIMIT)
    assert refused.value.http_status == 409
    assert store.get_device("u1", "d9") is None
    assert store.remove_device("u1", "d0") is True
    assert store.remove_device("u1", "d0") is False
    store.register_device(device("d9"), DEVICE_LIMIT)
    assert len(store.devices_of("u1")) == DEVICE_LIMIT


def test_concurrent_registrations_never_pass_the_limit(
    open_store: Callable[[], OfflineStore],
) -> None:
    stores = [open_store() for _ in range(4)]
    stores[0].register_device(device("d0"), DEVICE_LIMIT)
    stores[0].register_device(device("d1"), DEVICE_LIMIT)

    def register(n: int) -> bool:
        try:
            stores[n].register_device(device(f"new{n}"), DEVICE_LIMIT)
        except DeviceLimitReached:
            return False
        return True

    outcomes = in_threads(register, workers=4)  # 2 + 4 would be 6: one must lose
    assert outcomes.count(True) == DEVICE_LIMIT - 2
    assert len(stores[0].devices_of("u1")) == DEVICE_LIMIT


def test_a_granted_licence_reads_back_and_lists_by_device(store: OfflineStore) -> None:
    store.grant_licence(licence("l2", granted_at=T0 + 10, expires_at=T0 + 99))
    store.grant_licence(licence("l1"))
    store.grant_licence(licence("l3", device_id="d2"))
    assert store.get_licence("l2") == licence("l2", granted_at=T0 + 10, expires_at=T0 + 99)
    assert [lic.licence_id for lic in store.licences_of("u1", "d1")] == ["l1", "l2"]
    assert store.licences_of("u1", "d3") == ()
    assert store.get_licence("nope") is None


def test_a_licence_id_is_granted_once(store: OfflineStore) -> None:
    store.grant_licence(licence("l1"))
    with pytest.raises(StorageError):
        store.grant_licence(licence("l1", expires_at=T0 + 5000))
    stored = store.get_licence("l1")
    assert stored is not None and stored.expires_at == T0 + 1000


def test_renewal_moves_expiry_only_while_valid(store: OfflineStore) -> None:
    store.grant_licence(licence("l1"))
    renewed = store.renew_licence("l1", T0 + 5000, now=T0 + 500)
    assert renewed == licence("l1", expires_at=T0 + 5000)
    assert store.renew_licence("l1", T0 + 9000, now=T0 + 5000) is None  # expired at 5000
    assert store.renew_licence("absent", T0 + 9000, now=T0) is None
    assert store.get_licence("absent") is None  # a refused renewal creates nothing


def test_revocation_is_final_and_keeps_its_first_time(store: OfflineStore) -> None:
    store.grant_licence(licence("l1"))
    revoked = store.revoke_licence("l1", T0 + 20, "listener")
    assert revoked == licence("l1", revoked_at=T0 + 20, revoked_by="listener")
    again = store.revoke_licence("l1", T0 + 30, "admin:ops")
    assert again == revoked
    assert store.renew_licence("l1", T0 + 5000, now=T0 + 25) is None
    assert store.revoke_licence("absent", T0, "listener") is None
    assert store.get_licence("absent") is None


def test_data_survives_reopening_and_a_closed_store_refuses(
    open_store: Callable[[], OfflineStore],
) -> None:
    first = open_store()
    first.register_device(device("d1"), DEVICE_LIMIT)
    first.grant_licence(licence("l1"))
    first.close()
    with pytest.raises(StorageError):
        first.get_licence("l1")
    second = open_store()
    assert second.get_device("u1", "d1") == device("d1")
    assert second.get_licence("l1") == licence("l1")
