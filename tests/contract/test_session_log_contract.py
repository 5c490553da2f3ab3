"""The SessionLog contract, run against every store in `SESSION_STORES`."""

from __future__ import annotations

import pytest

from streamer.backends import open_session_store
from streamer.errors import ConfigError, StorageError
from streamer.sessions.port import SessionLog
from streamer.settings import Settings
from tests.contract import session_stores
from tests.contract.session_stores import T0, OpenStore, in_threads, session

open_store = session_stores.open_store
store = session_stores.store


def test_recorded_session_reads_back_equal(store: SessionLog) -> None:
    recorded = session()
    store.record_session(recorded)
    assert store.get_session("s1") == recorded


def test_unknown_session_is_none(store: SessionLog) -> None:
    assert store.get_session("nope") is None


def test_recording_again_replaces(store: SessionLog) -> None:
    store.record_session(session(variants=("aac_96",)))
    store.record_session(session(variants=("aac_160",), tier="free"))
    got = store.get_session("s1")
    assert got is not None and got.variants == ("aac_160",) and got.tier == "free"


def test_sessions_are_kept_apart(store: SessionLog) -> None:
    store.record_session(session("a", user_id="ua"))
    store.record_session(session("b", user_id="ub", track_id="trk2"))
    a, b = store.get_session("a"), store.get_session("b")
    assert a is not None and b is not None
    assert (a.user_id, a.track_id) == ("ua", "trk1")
    assert (b.user_id, b.track_id) == ("ub", "trk2")


def test_unicode_and_nested_device_documents_survive(store: SessionLog) -> None:
    device = {"codecs": ["opus"], "model": "Pixel 8 — 🎧", "hints": {"save_data": True, "n": [1]}}
    store.record_session(session(device=device, variants=()))
    got = store.get_session("s1")
    assert got is not None and got.device == device and got.variants == ()


def test_sessions_outlive_the_connection(open_store: OpenStore) -> None:
    first = open_store()
    first.record_session(session())
    first.close()
    assert open_store().get_session("s1") == session()


def test_concurrent_writers(store: SessionLog) -> None:
    def write(worker: int) -> None:
        for i in range(25):
            store.record_session(session(f"w{worker}-{i}"))

    in_threads(write)
    assert all(store.get_session(f"w{n}-{i}") is not None for n in range(4) for i in range(25))


def test_use_after_close_is_a_storage_error(open_store: OpenStore) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StorageError):
        store.record_session(session())
    with pytest.raises(StorageError):
        store.get_session("s1")


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
