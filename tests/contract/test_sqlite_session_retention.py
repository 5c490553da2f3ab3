"""The embedded session store keeps records as long as the Scylla tables' TTLs, then prunes."""

from __future__ import annotations

from pathlib import Path

import pytest

import streamer.sessions.sqlite as sqlite_store
from streamer.sessions.port import CMCD_RETENTION_S, EVENT_RETENTION_S, SESSION_RETENTION_S
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import TelemetryBatch
from tests.contract.session_stores import (
    MS,
    T0,
    delivery,
    ev,
    play,
    sample,
    session,
)

DAY_S = 86_400


def test_records_past_their_retention_are_pruned_and_plays_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sqlite_store, "PRUNE_CHUNK_ROWS", 2)  # several chunks per table
    store = SQLiteSessionStore(tmp_path / "sessions.sqlite3")
    store.record_session(session("old", created_at=T0, expires_at=T0 + 3600))
    store.record_session(session("new", created_at=T0 + 40 * DAY_S, expires_at=T0 + 41 * DAY_S))
    store.write_telemetry(
        TelemetryBatch(
            events=tuple(ev(f"e{i}", "old", received_ms=MS + i) for i in range(5)),
            cmcd=(
                *(sample(f"c{i}", "old", received_ms=MS + i) for i in range(5)),
                sample("late", "new", received_ms=MS + 40 * DAY_S * 1000),
            ),
            deliveries=tuple(delivery(i, "old", delivered_ms=MS + i) for i in range(3)),
        )
    )
    store.claim_plays([play("old")])
    # 31 days on: only the old CMCD samples have passed their 30 days.
    assert store.prune_expired(T0 + CMCD_RETENTION_S + DAY_S) == 5
    old = store.session_telemetry("old")
    assert old.cmcd == () and len(old.events) == 5 and len(old.deliveries) == 3
    assert len(store.session_telemetry("new").cmcd) == 1
    # 91 days on: events and deliveries go too; the play and the sessions stay.
    assert store.prune_expired(T0 + EVENT_RETENTION_S + DAY_S) == 5 + 3 + 1
    old = store.session_telemetry("old")
    assert old.events == () and old.deliveries == () and old.play == play("old")
    assert store.get_session("old") is not None
    assert sum(store.plays_by_day("trk1", play("old").day, play("old").day).values()) == 1
    # Past the session retention the old session record goes; the newer one stays.
    assert store.prune_expired(T0 + SESSION_RETENTION_S + DAY_S) == 1
    assert store.get_session("old") is None and store.get_session("new") is not None
    assert store.prune_expired(T0 + SESSION_RETENTION_S + DAY_S) == 0


def test_writes_prune_now_and_then(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "PRUNE_FIRST_AFTER_S", 0.0)
    store = SQLiteSessionStore(tmp_path / "sessions.sqlite3")
    ancient = sample("c0", "old", received_ms=MS)  # 2023: far past its 30 days
    store.write_telemetry(TelemetryBatch(cmcd=(ancient,)))
    assert store.session_telemetry("old").cmcd == ()  # pruned by the write itself
    store.write_telemetry(TelemetryBatch(cmcd=(ancient,)))
    assert store.session_telemetry("old").cmcd == (ancient,)  # not again within the hour
