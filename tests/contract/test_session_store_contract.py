"""The SessionStore contract, run against every implementation in `SESSION_STORES`.

The table lives here (tests/contract/conftest.py belongs to the storage work); adding Scylla is
one line in it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path

import pytest

from streamer.backends import open_session_store
from streamer.errors import ConfigError, StorageError
from streamer.sessions.port import PlaybackSession, SessionStore
from streamer.sessions.sqlite import SqliteSessionStore
from streamer.settings import Settings
from streamer.telemetry.model import (
    CmcdSample,
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)
from tests.backends.cql_fixtures import open_test_scylla_session_store
from tests.backends.services import backend_params

# name -> open the store kept in the test's directory (opening twice reaches the same data)
SESSION_STORES: dict[str, Callable[[Path], SessionStore]] = {
    "sqlite": lambda tmp: SqliteSessionStore(tmp / "sessions.sqlite3"),
    "scylla": open_test_scylla_session_store,  # the keyspace of this test session
}

OpenStore = Callable[[], SessionStore]
T0 = 1_700_000_000


@pytest.fixture(params=backend_params(SESSION_STORES))
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


# Telemetry: events, CMCD samples, deliveries and plays.

MS = T0 * 1000
DAY = date(2023, 11, 14)  # T0's UTC day


def ev(event_id: str, session_id: str = "s1", **overrides: object) -> PlayerEvent:
    fields: dict[str, object] = {
        "session_id": session_id,
        "event_id": event_id,
        "type": "heartbeat",
        "track_id": "trk1",
        "client_ms": MS,
        "received_ms": MS + 50,
        "position_s": 10.0,
    }
    fields.update(overrides)
    return PlayerEvent(**fields)  # type: ignore[arg-type]


def sample(sample_id: str, session_id: str = "s1", **overrides: object) -> CmcdSample:
    fields: dict[str, object] = {
        "session_id": session_id,
        "sample_id": sample_id,
        "received_ms": MS,
        "route": "segment",
        "object": "aac_96/seg_00001.m4s",
        "status": 200,
        "keys": {"br": 96, "bs": True, "ot": "a", "pr": 1.25, "sid": "6e2f", "com.x-y": "z"},
    }
    fields.update(overrides)
    return CmcdSample(**fields)  # type: ignore[arg-type]


def delivery(index: int, session_id: str = "s1", **overrides: object) -> SegmentDelivery:
    fields: dict[str, object] = {
        "session_id": session_id,
        "track_id": "trk1",
        "version": "v1",
        "rendition": "aac_96",
        "name": f"aac_96/seg_{index:05d}.m4s",
        "start_s": index * 6.0,
        "duration_s": 6.0,
        "delivered_ms": MS + index,
    }
    fields.update(overrides)
    return SegmentDelivery(**fields)  # type: ignore[arg-type]


def play(session_id: str = "s1", day: date = DAY, **overrides: object) -> PlayClaim:
    fields: dict[str, object] = {
        "session_id": session_id,
        "track_id": "trk1",
        "day": day,
        "played_ms": MS,
    }
    fields.update(overrides)
    return PlayClaim(**fields)  # type: ignore[arg-type]


def test_telemetry_reads_back_equal(store: SessionStore) -> None:
    events = (
        ev("a", type="play", position_s=0.0, bitrate_kbps=96, rendition="aac_96", startup_ms=420),
        ev("b", client_ms=MS + 10_000, seq=3, pathway="cdn-a"),
        ev("c", type="seek", client_ms=MS + 12_000, position_s=90.5, from_s=12.25),
        ev("d", type="error", client_ms=MS + 13_000, error_code="net", error_message="é ✓"),
        ev("e", type="heartbeat", client_ms=MS - 5_000, offline=True, fatal=False),
    )
    batch = TelemetryBatch(events, (sample("x1"),), (delivery(0), delivery(1)), (play(),))
    assert store.write_telemetry(batch) == (play(),)
    got = store.session_telemetry("s1")
    assert got.events == tuple(sorted(events, key=lambda e: (e.client_ms, e.seq, e.event_id)))
    assert got.cmcd == (sample("x1"),)
    assert got.deliveries == (delivery(0), delivery(1))
    assert got.play == play()


def test_numbers_read_back_bit_for_bit(store: SessionStore) -> None:
    awkward = (1 / 3, 0.1 + 0.2, 1e-7, 123456.789012345, 2.0**52 + 0.5, 5.999999999999999)
    events = tuple(
        ev(f"n{i}", seq=i, client_ms=MS + i, position_s=value, from_s=value, type="seek")
        for i, value in enumerate(awkward)
    )
    deliveries = tuple(
        delivery(i, start_s=value, duration_s=value / 7) for i, value in enumerate(awkward)
    )
    store.write_telemetry(TelemetryBatch(events, (), deliveries))
    got = store.session_telemetry("s1")
    assert [(e.position_s, e.from_s) for e in got.events] == [(v, v) for v in awkward]
    assert [(d.start_s, d.duration_s) for d in got.deliveries] == [(v, v / 7) for v in awkward]


def test_events_and_deliveries_of_many_sessions_read_together(store: SessionStore) -> None:
    for session_id in ("s1", "s2"):
        store.write_telemetry(
            TelemetryBatch(
                (ev("b", session_id=session_id, client_ms=MS + 9), ev("a", session_id=session_id)),
                (sample("x1", session_id=session_id),),
                (delivery(1, session_id=session_id), delivery(0, session_id=session_id)),
            )
        )
    ids = [f"n{i}" for i in range(70)] + ["s2", "s1"]  # more than one fan-out's worth
    events, deliveries = store.events_of(ids), store.deliveries_of(ids)
    assert list(events) == ids and list(deliveries) == ids
    for session_id in ("s1", "s2"):
        full = store.session_telemetry(session_id)
        assert len(full.events) == 2 and len(full.deliveries) == 2
        assert events[session_id] == full.events and deliveries[session_id] == full.deliveries
    assert events["n0"] == () and deliveries["n0"] == ()
    assert store.events_of([]) == {} and store.deliveries_of([]) == {}


def test_unknown_session_has_empty_telemetry(store: SessionStore) -> None:
    assert store.session_telemetry("nobody") == SessionTelemetry()
    assert store.write_telemetry(TelemetryBatch()) == ()


def test_events_are_kept_once_per_session_and_event_id(store: SessionStore) -> None:
    store.write_telemetry(TelemetryBatch(events=(ev("a", position_s=1.0), ev("b"))))
    # A retry repeats the id; the first copy stays, even if the retry differs.
    store.write_telemetry(TelemetryBatch(events=(ev("a", position_s=99.0), ev("a"), ev("c"))))
    store.write_telemetry(TelemetryBatch(events=(ev("a", session_id="s2"),)))
    got = store.session_telemetry("s1").events
    assert [e.event_id for e in got] == ["a", "b", "c"]
    assert got[0].position_s == 1.0
    assert [e.event_id for e in store.session_telemetry("s2").events] == ["a"]


def test_samples_and_deliveries_are_idempotent(store: SessionStore) -> None:
    batch = TelemetryBatch(cmcd=(sample("x1"), sample("x2")), deliveries=(delivery(0),))
    store.write_telemetry(batch)
    store.write_telemetry(batch)  # the writer's retry of a batch it thought failed
    got = store.session_telemetry("s1")
    assert [c.sample_id for c in got.cmcd] == ["x1", "x2"]
    assert got.deliveries == (delivery(0),)


def test_a_session_counts_one_play(store: SessionStore) -> None:
    assert store.write_telemetry(TelemetryBatch(plays=(play(),))) == (play(),)
    again = play(day=date(2023, 11, 20), played_ms=MS + 6 * 86_400_000)
    assert store.write_telemetry(TelemetryBatch(plays=(play(), again))) == ()
    assert store.session_telemetry("s1").play == play()
    assert store.plays_by_day("trk1", DAY, date(2023, 11, 30)) == {DAY: 1}


def test_plays_by_day(store: SessionStore) -> None:
    day2, day5 = date(2023, 11, 15), date(2023, 11, 18)
    plays = (
        play("a"),
        play("b"),
        play("c", day=day2, offline=True),
        play("d", day=day5),
        play("e", track_id="trk2"),
    )
    counted = store.write_telemetry(TelemetryBatch(plays=plays))
    assert sorted(p.session_id for p in counted) == ["a", "b", "c", "d", "e"]
    assert store.plays_by_day("trk1", DAY, day5) == {DAY: 2, day2: 1, day5: 1}
    assert store.plays_by_day("trk1", day2, day2) == {day2: 1}  # both ends included
    assert store.plays_by_day("trk1", date(2023, 12, 1), date(2023, 12, 31)) == {}
    assert store.plays_by_day("trk2", DAY, DAY) == {DAY: 1}


def test_concurrent_claims_count_once(store: SessionStore) -> None:
    counted: list[PlayClaim] = []
    lock = threading.Lock()

    def claim(worker: int) -> None:
        for session in range(20):
            got = store.write_telemetry(TelemetryBatch(plays=(play(f"s{session}"),)))
            with lock:
                counted.extend(got)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(p.session_id for p in counted) == sorted(f"s{n}" for n in range(20))
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 20}


def test_telemetry_outlives_the_connection(open_store: OpenStore) -> None:
    first = open_store()
    first.write_telemetry(TelemetryBatch((ev("a"),), (sample("x"),), (delivery(0),), (play(),)))
    first.close()
    again = open_store()
    got = again.session_telemetry("s1")
    assert (len(got.events), len(got.cmcd), len(got.deliveries)) == (1, 1, 1)
    assert got.play == play()
    assert again.write_telemetry(TelemetryBatch(plays=(play(),))) == ()


def test_telemetry_after_close_is_a_storage_error(open_store: OpenStore) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StorageError):
        store.write_telemetry(TelemetryBatch(events=(ev("a"),)))
    with pytest.raises(StorageError):
        store.plays_by_day("trk1", DAY, DAY)


def test_telemetry_models_validate() -> None:
    with pytest.raises(ValueError, match="from_s"):
        ev("a", type="seek")
    with pytest.raises(ValueError, match="position_s"):
        ev("a", position_s=-1.0)
    with pytest.raises(ValueError, match="event_id"):
        ev("has space")
    with pytest.raises(ValueError, match="bitrate_kbps"):
        ev("a", type="bitrate_switch")
    with pytest.raises(ValueError, match="lone surrogate"):
        ev("a", type="error", error_code="x", error_message="bad \ud800")
    with pytest.raises(ValueError, match="route"):
        sample("x", route="steering")
