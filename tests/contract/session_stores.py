"""The session stores under contract, and the builders their suites share.

Each port has its suite (test_session_log_contract, test_telemetry_store_contract,
test_play_ledger_contract), run against every store in `SESSION_STORES`; one store implements
all three ports. Adding a store is one line in the table, and a branch in `drift`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import TypeVar

import pytest

from streamer.cql.connection import Cql
from streamer.errors import StorageError
from streamer.sessions.port import PlaybackSession, SessionStore
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.sessions.scylla_plays import shard_of
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import CmcdSample, PlayClaim, PlayerEvent, SegmentDelivery
from tests.backends.cql_fixtures import open_test_scylla_session_store
from tests.backends.services import backend_params

# name -> open the store kept in the test's directory (opening twice reaches the same data)
SESSION_STORES: dict[str, Callable[[Path], SessionStore]] = {
    "sqlite": lambda tmp: SQLiteSessionStore(tmp / "sessions.sqlite3"),
    "scylla": open_test_scylla_session_store,  # the keyspace of this test session
}

T = TypeVar("T")
OpenStore = Callable[[], SessionStore]
CONCURRENT_TIMEOUT_S = 30.0
T0 = 1_700_000_000
MS = T0 * 1000
DAY = date(2023, 11, 14)  # T0's UTC day


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


def in_threads(work: Callable[[int], T], workers: int = 4) -> list[T]:
    """`work(0)` ... `work(workers - 1)`, each in its own thread at once; their results, or
    the first exception one raised."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(work, n) for n in range(workers)]
        return [future.result(timeout=CONCURRENT_TIMEOUT_S) for future in futures]


def drift(store: SessionStore, track_id: str, day: date, by: int, *, marked: bool) -> None:
    """Change the track's count for `day` by `by` behind the ledger's back, as a lost or
    doubled counter increment would; `marked`: as a failure the ledger noticed would (in
    SQLite, where a count cannot drift, every drift is found)."""
    if isinstance(store, SQLiteSessionStore):
        with contextlib.closing(sqlite3.connect(store.path)) as db, db:
            db.execute(
                "INSERT INTO play_counts (track_id, day, plays) VALUES (?, ?, ?) "
                "ON CONFLICT (track_id, day) DO UPDATE SET plays = plays + excluded.plays",
                (track_id, day.isoformat(), by),
            )
        return
    assert isinstance(store, ScyllaSessionStore), store
    store.session.execute(
        Cql(
            "UPDATE track_plays_by_day SET plays = plays + ? WHERE track_id = ? AND year = ?"
            " AND day = ?",
            idempotent=False,
        ),
        (by, track_id, day.year, day),
        action="drift a play counter",
    )
    if marked:
        store.session.execute(
            Cql(
                "INSERT INTO play_recounts_due (day, shard, track_id) VALUES (?, ?, ?)",
                idempotent=True,
            ),
            (day, shard_of(track_id), track_id),
            action="mark a play count due",
        )


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
