"""The TelemetryStore contract, run against every store in `SESSION_STORES`."""

from __future__ import annotations

import pytest

from streamer.errors import StorageError
from streamer.sessions.port import TelemetryStore
from streamer.telemetry.model import SessionTelemetry, TelemetryBatch
from tests.contract import session_stores
from tests.contract.session_stores import MS, OpenStore, delivery, ev, sample

open_store = session_stores.open_store
store = session_stores.store


def test_telemetry_reads_back_equal(store: TelemetryStore) -> None:
    events = (
        ev("a", type="play", position_s=0.0, bitrate_kbps=96, rendition="aac_96", startup_ms=420),
        ev("b", client_ms=MS + 10_000, seq=3, pathway="cdn-a"),
        ev("c", type="seek", client_ms=MS + 12_000, position_s=90.5, from_s=12.25),
        ev("d", type="error", client_ms=MS + 13_000, error_code="net", error_message="é ✓"),
        ev("e", type="heartbeat", client_ms=MS - 5_000, offline=True, fatal=False),
        ev("f", type="error", client_ms=MS + 14_000, error_code="x", fatal=True, seq=9),
    )
    store.write_telemetry(TelemetryBatch(events, (sample("x1"),), (delivery(0), delivery(1))))
    got = store.session_telemetry("s1")
    assert got.events == tuple(sorted(events, key=lambda e: (e.client_ms, e.seq, e.event_id)))
    assert got.cmcd == (sample("x1"),)
    assert got.deliveries == (delivery(0), delivery(1))
    assert got.play is None


def test_numbers_read_back_bit_for_bit(store: TelemetryStore) -> None:
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


def test_events_and_deliveries_of_many_sessions_read_together(store: TelemetryStore) -> None:
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


def test_unknown_session_has_empty_telemetry(store: TelemetryStore) -> None:
    assert store.session_telemetry("nobody") == SessionTelemetry()
    store.write_telemetry(TelemetryBatch())


def test_events_are_kept_once_per_session_and_event_id(store: TelemetryStore) -> None:
    store.write_telemetry(TelemetryBatch(events=(ev("a", position_s=1.0), ev("b"))))
    # A retry repeats the id; the first copy stays, even if the retry differs.
    store.write_telemetry(TelemetryBatch(events=(ev("a", position_s=99.0), ev("a"), ev("c"))))
    store.write_telemetry(TelemetryBatch(events=(ev("a", session_id="s2"),)))
    got = store.session_telemetry("s1").events
    assert [e.event_id for e in got] == ["a", "b", "c"]
    assert got[0].position_s == 1.0
    assert [e.event_id for e in store.session_telemetry("s2").events] == ["a"]


def test_samples_and_deliveries_are_idempotent(store: TelemetryStore) -> None:
    batch = TelemetryBatch(cmcd=(sample("x1"), sample("x2")), deliveries=(delivery(0),))
    store.write_telemetry(batch)
    store.write_telemetry(batch)  # the writer's retry of a batch it thought failed
    got = store.session_telemetry("s1")
    assert [c.sample_id for c in got.cmcd] == ["x1", "x2"]
    assert got.deliveries == (delivery(0),)


def test_telemetry_outlives_the_connection(open_store: OpenStore) -> None:
    first = open_store()
    first.write_telemetry(TelemetryBatch((ev("a"),), (sample("x"),), (delivery(0),)))
    first.close()
    got = open_store().session_telemetry("s1")
    assert (len(got.events), len(got.cmcd), len(got.deliveries)) == (1, 1, 1)


def test_telemetry_after_close_is_a_storage_error(open_store: OpenStore) -> None:
    store = open_store()
    store.close()
    with pytest.raises(StorageError):
        store.write_telemetry(TelemetryBatch(events=(ev("a"),)))
    with pytest.raises(StorageError):
        store.events_of(["s1"])


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
