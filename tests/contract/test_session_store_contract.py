"""The SessionStore contract, run against every implementation in `SESSION_STORES`.

The table lives here (tests/contract/conftest.py belongs to the storage work); adding Scylla is
one line in it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamer.errors import ConfigError, StorageError
from streamer.sessions import PlaybackSession, SessionStore, open_session_store
from streamer.settings import Settings
from streamer.sqlite_session_store import SqliteSessionStore

# name -> open the store kept in the test's directory (opening twice reaches the same data)
SESSION_STORES: dict[str, Callable[[Path], SessionStore]] = {
    "sqlite": lambda tmp: SqliteSessionStore(tmp / "sessions.sqlite3"),
}

OpenStore = Callable[[], SessionStore]
T0 = 1_700_000_000


@pytest.fixture(params=sorted(SESSION_STORES))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    opened: list[SessionStore] = []

    def open_() -> SessionStore:
        store = SESSION_STORES[request.param](tmp_path)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        with contextlib.suppress(StorageError):  # closed already by the test
            store.close()


@pytest.fixture
def store(open_store: OpenStore) -> SessionStore:
    return open_store()


def session(session_id: str = "s1", **overrides: object) -> PlaybackSession:
    fields: dict[str, object] = {
        "session_id": session_id,
        "user_id": "u1",
        "tier": "premium",
        "region": "SE",
        "track_id": "trk1",
        "version": "v1",
        "device": {"codecs": ["mp4a.40.2", "opus"], "network": "wifi", "max_bitrate_kbps": 256},
        "variants": ("opus_160", "aac_256", "flac"),
        "created_at": T0,
        "expires_at": T0 + 3600,
    }
    fields.update(overrides)
    return PlaybackSession(**fields)  # type: ignore[arg-type]


def test_recorded_session_reads_back_equal(store: SessionStore) -> None:
    recorded = session()
    store.record_session(recorded)
    assert store.get_session("s1") == recorded


def test_unknown_session_is_none(store: SessionStore) -> None:
    assert store.get_session("nope") is None


def test_recording_again_replaces(store: SessionStore) -> None:
    store.record_session(session(variants=("aac_96",)))
    store.record_session(session(variants=("aac_160",), tier="free"))
    got = store.get_session("s1")
    assert got is not None and got.variants == ("aac_160",) and got.tier == "free"


def test_sessions_are_kept_apart(store: SessionStore) -> None:
    store.record_session(session("a", user_id="ua"))
    store.record_session(session("b", user_id="ub", track_id="trk2"))
    a, b = store.get_session("a"), store.get_session("b")
    assert a is not None and b is not None
    assert (a.user_id, a.track_id) == ("ua", "trk1")
    assert (b.user_id, b.track_id) == ("ub", "trk2")


def test_unicode_and_nested_device_documents_survive(store: SessionStore) -> None:
    device = {"codecs": ["opus"], "model": "Pixel 8 — 🎧", "hints": {"save_data": True, "n": [1]}}
    store.record_session(session(device=device, variants=()))
    got = store.get_session("s1")
    assert got is not None and got.device == device and got.variants == ()


def test_sessions_outlive_the_connection(open_store: OpenStore) -> None:
    first = open_store()
    first.record_session(session())
    first.close()
    assert open_store().get_session("s1") == session()


def test_concurrent_writers(store: SessionStore) -> None:
    errors: list[BaseException] = []

    def write(worker: int) -> None:
        try:
            for i in range(25):
                store.record_session(session(f"w{worker}-{i}"))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert all(store.get_session(f"w{n}-{i}") is not None for n in range(4) for i in range(25))


def test_use_after_close_is_a_storage_error(open_store: OpenStore) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StorageError):
        store.record_session(session())


def test_session_model_validates() -> None:
    with pytest.raises(ValueError, match="session_id"):
        session("")
    with pytest.raises(ValueError, match="expires"):
        session(expires_at=T0 - 1)


def test_open_session_store_by_name(settings: Settings) -> None:
    store = open_session_store(settings)
    try:
        store.record_session(session())
        assert store.get_session("s1") == session()
    finally:
        store.close()
    with pytest.raises(ConfigError, match="STREAMER_SESSION_STORE"):
        open_session_store(Settings(session_store="cassandra"))
