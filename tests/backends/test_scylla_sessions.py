"""What only the CQL session store promises beyond the contracts: counters marked after the
failure window and repaired by a recount, recounts of one mark by one sweeper, first copies
kept when a retry moves a row, listeners' recent sessions, large batches written in bounded
fan-out, and a schema that matches the tables' declarations.

Runs against `scripts/services up cassandra`; the contract suites cover the three ports.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import pytest

from streamer.cql import fanout as cql_fanout
from streamer.cql.connection import Cql, CqlFuture
from streamer.errors import StorageError
from streamer.sessions.port import PlayRecount
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.sessions.table_spec import EXTRA_COLUMN
from streamer.sessions.tables import TABLES
from streamer.telemetry.model import PlayerEvent, TelemetryBatch
from tests.backends.cql_fixtures import (
    SESSION_TABLES,
    TestKeyspace,
    drop_cql_test_keyspace,
    shared_test_keyspace,
)
from tests.contract.session_stores import DAY, MS, T0, delivery, drift, ev, play, session

pytestmark = pytest.mark.services  # needs `scripts/services up`

__all__ = ["drop_cql_test_keyspace"]  # a session fixture: drops the test keyspace at the end


@pytest.fixture
def keyspace() -> TestKeyspace:
    shared = shared_test_keyspace()
    shared.truncate(SESSION_TABLES)
    return shared


@pytest.fixture
def store(keyspace: TestKeyspace) -> ScyllaSessionStore:
    return ScyllaSessionStore(keyspace.session, clock=lambda: T0 + 60.0)


def raw(keyspace: TestKeyspace, text: str, *params: Any) -> list[dict[str, Any]]:
    return keyspace.session.execute(Cql(text, idempotent=False), params, action="test").all()


class FailingCounter:
    """Makes the session fail every counter increment, as a timed-out write would."""

    def __init__(self, store: ScyllaSessionStore, monkeypatch: pytest.MonkeyPatch) -> None:
        real = store.session.execute_async

        def execute_async(statement: Cql, params: Sequence[Any] = (), **kwargs: Any) -> CqlFuture:
            if statement.text.startswith("UPDATE track_plays_by_day"):
                raise StorageError("cannot count plays: no answer within the request timeout")
            return real(statement, params, **kwargs)

        monkeypatch.setattr(store.session, "execute_async", execute_async)


def test_a_lost_increment_is_marked_and_repaired_by_a_recount(
    store: ScyllaSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert store.claim_plays([play("a")]) == (play("a"),)
    with monkeypatch.context() as patch:
        FailingCounter(store, patch)
        with pytest.raises(StorageError, match="count plays"):
            store.claim_plays([play("b")])
    # The claim won and is indexed; the counter missed it and the day is marked.
    assert store.session_telemetry("b").play == play("b")
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 1}
    assert store.tracks_due_for_recount(DAY) == ["trk1"]
    # The writer's retry cannot count it again: the claim exists.
    assert store.claim_plays([play("b")]) == ()
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 1}

    assert store.recount_due(DAY) == (PlayRecount("trk1", DAY, counted=1, claims=2),)
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 2}
    assert store.tracks_due_for_recount(DAY) == []
    assert store.recount_plays("trk1", DAY).corrected is False  # nothing left to correct


def test_the_same_claim_again_is_marked_for_a_recount_but_another_day_is_not(
    store: ScyllaSessionStore,
) -> None:
    store.claim_plays([play("a")])
    assert store.tracks_due_for_recount(DAY) == []
    other_day = date(2023, 11, 20)
    store.claim_plays([play("a", day=other_day)])
    assert store.tracks_due_for_recount(other_day) == []  # lost to the first: nothing to doubt
    store.claim_plays([play("a")])  # a retry of the first
    assert store.tracks_due_for_recount(DAY) == ["trk1"]
    assert store.recount_due(DAY) == (PlayRecount("trk1", DAY, 1, 1),)
    assert store.tracks_due_for_recount(DAY) == []


def test_sweepers_at_once_recount_a_marked_day_once(
    store: ScyllaSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.claim_plays([play("a"), play("b")])
    drift(store, "trk1", DAY, -1, marked=True)
    other = ScyllaSessionStore(store.session)
    listed = other.plays.due(DAY)
    assert listed == ["trk1"]
    assert store.recount_due(DAY) == (PlayRecount("trk1", DAY, 1, 2),)
    # The other sweeper listed the day before the first took it: its take is refused, and it
    # does not add the difference a second time.
    monkeypatch.setattr(other.plays, "due", lambda day: listed)
    assert other.recount_due(DAY) == ()
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 2}


def test_a_recount_that_fails_leaves_the_day_due(
    store: ScyllaSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.claim_plays([play("a")])
    drift(store, "trk1", DAY, +1, marked=True)
    with monkeypatch.context() as patch:

        def counting_moves(track_id: str, day: date) -> PlayRecount:
            raise StorageError("cannot recount: its counter moved during 3 counts")

        patch.setattr(store.plays, "recount", counting_moves)
        assert store.recount_due(DAY) == ()
    assert store.tracks_due_for_recount(DAY) == ["trk1"]
    assert store.recount_due(DAY) == (PlayRecount("trk1", DAY, 2, 1),)


def test_the_first_copy_wins_when_a_retry_moves_the_row(store: ScyllaSessionStore) -> None:
    clock = [T0 + 60.0]
    store = ScyllaSessionStore(store.session, clock=lambda: clock[0])
    first = ev("a", client_ms=MS, position_s=1.0)
    store.write_telemetry(TelemetryBatch(events=(first,), deliveries=(delivery(0),)))
    clock[0] += 5
    moved = ev("a", client_ms=MS - 9_000, position_s=7.0, received_ms=MS + 9_000)
    again = delivery(0, delivered_ms=MS + 30_000)
    store.write_telemetry(TelemetryBatch(events=(moved, ev("b")), deliveries=(again,)))
    clock[0] += 5
    store.write_telemetry(TelemetryBatch(events=(first,)))  # a replay of the first batch
    got = store.session_telemetry("s1")
    assert [(e.event_id, e.position_s) for e in got.events] == [("a", 1.0), ("b", 10.0)]
    assert got.deliveries == (delivery(0),)


def test_a_slow_clock_cannot_make_a_later_write_win(store: ScyllaSessionStore) -> None:
    # Two edges: the second one's clock is behind, so its later write carries a higher
    # timestamp and wins. Edges keep NTP time; this shows the bound is their skew.
    ahead = ScyllaSessionStore(store.session, clock=lambda: T0 + 60.0)
    behind = ScyllaSessionStore(store.session, clock=lambda: T0 + 59.0)
    ahead.write_telemetry(TelemetryBatch(events=(ev("a", position_s=1.0),)))
    behind.write_telemetry(TelemetryBatch(events=(ev("a", position_s=2.0),)))
    assert store.session_telemetry("s1").events[0].position_s == 2.0


def test_large_batches_of_many_sessions(
    store: ScyllaSessionStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cql_fanout, "MAX_IN_FLIGHT", 4)
    events = tuple(ev(f"e{n}", session_id=f"s{n % 3}", client_ms=MS + n, seq=n) for n in range(700))
    deliveries = tuple(delivery(n, session_id=f"s{n % 3}") for n in range(30))
    store.write_telemetry(TelemetryBatch(events=events, deliveries=deliveries))
    for s in range(3):
        got = store.session_telemetry(f"s{s}")
        assert [e.event_id for e in got.events] == [f"e{n}" for n in range(s, 700, 3)]
        assert len(got.deliveries) == 10


def test_a_listeners_recent_sessions_newest_first(store: ScyllaSessionStore) -> None:
    day_s = 86_400
    for n, at in enumerate((T0 - 3 * day_s, T0 - day_s, T0, T0 + 10)):
        store.record_session(session(f"s{n}", user_id="u1", created_at=at, expires_at=at + 60))
    store.record_session(session("other", user_id="u2"))
    store.record_session(session("s1", user_id="u9", created_at=T0 - day_s, expires_at=T0))
    newest = store.recent_sessions("u1", now_s=T0 + 60, limit=10, days=7)
    assert [s.session_id for s in newest] == ["s3", "s2", "s0"]  # s1 moved to another user
    assert [s.session_id for s in store.recent_sessions("u1", T0 + 60, limit=2)] == ["s3", "s2"]
    assert store.recent_sessions("u1", T0 + 60, days=1) == [
        session("s3", user_id="u1", created_at=T0 + 10, expires_at=T0 + 70),
        session("s2", user_id="u1", created_at=T0, expires_at=T0 + 60),
    ]


def test_the_schema_is_what_the_tables_declare(keyspace: TestKeyspace) -> None:
    columns = raw(
        keyspace,
        "SELECT table_name, column_name, kind, position, type FROM system_schema.columns"
        " WHERE keyspace_name = ?",
        keyspace.keyspace,
    )
    live: dict[str, dict[str, tuple[str, str]]] = {}
    keys: dict[str, list[tuple[int, str]]] = {}
    for row in columns:
        live.setdefault(row["table_name"], {})[row["column_name"]] = (row["kind"], row["type"])
        if row["kind"] != "regular":
            keys.setdefault(row["table_name"], []).append((row["position"], row["column_name"]))
    assert "session_qoe" not in live  # dropped by migration 3
    for table in TABLES:
        declared = {c.name: c.kind.cql for c in table.columns if not c.optional}
        if EXTRA_COLUMN in table.cql_columns:
            declared[EXTRA_COLUMN] = "text"
        got = live[table.cql_table]
        assert {name: kind for name, (_, kind) in got.items()} == declared, table.cql_table
        assert set(table.cql_columns) == set(got)
        partition = [name for name, (kind, _) in got.items() if kind == "partition_key"]
        clustering = [name for _, name in sorted(keys[table.cql_table]) if name not in partition]
        assert (*partition, *clustering) == table.cql_primary_key, table.cql_table


def test_rows_carry_their_retention(store: ScyllaSessionStore, keyspace: TestKeyspace) -> None:
    store.write_telemetry(TelemetryBatch(events=(ev("a"),)))
    store.claim_plays([play()])
    (row,) = raw(keyspace, "SELECT TTL(type) AS ttl FROM player_events WHERE session_id = 's1'")
    assert 89 * 86_400 < row["ttl"] <= 90 * 86_400
    (row,) = raw(
        keyspace, "SELECT TTL(track_id) AS ttl FROM plays_by_session WHERE session_id = 's1'"
    )
    assert row["ttl"] is None  # royalty plays are kept


def test_a_closed_store_refuses_calls_but_leaves_a_shared_session_open(
    keyspace: TestKeyspace,
) -> None:
    store = ScyllaSessionStore(keyspace.session)
    store.close()
    with pytest.raises(StorageError, match="closed"):
        store.recount_plays("trk1", DAY)
    with pytest.raises(StorageError, match="closed"):
        store.recount_due(DAY)
    assert ScyllaSessionStore(keyspace.session).get_session("nobody") is None


def test_models_survive_every_optional_field(store: ScyllaSessionStore) -> None:
    events = (
        ev("x", type="seek", position_s=90.5, from_s=12.25, pathway="cdn-b", seq=4),
        ev("y", type="error", error_code="net", error_message="é ✓", fatal=True, offline=True),
    )
    store.write_telemetry(TelemetryBatch(events=events))
    assert set(store.session_telemetry("s1").events) == set(events)
    assert all(isinstance(e, PlayerEvent) for e in store.session_telemetry("s1").events)
