"""The writer's sink: plays and QoE decided from the events this process holds, or read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from cdn_edge.telemetry.metrics import TelemetryMetrics
from cdn_edge.telemetry.sink import SessionStoreSink
from streamer.plays import decide_play
from streamer.qoe import SessionQoe, session_qoe
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import PlayerEvent, without_gaps
from tests.telemetry.builders import deliveries, event, listening

DAY0 = date(2023, 11, 14)


class CountingStore(SQLiteSessionStore):
    """The embedded store, counting the sessions whose events are read back."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.read_back: list[str] = []

    def events_of(self, session_ids: Sequence[str]) -> dict[str, tuple[PlayerEvent, ...]]:
        self.read_back.extend(session_ids)
        return super().events_of(session_ids)


def numbered(events: list[PlayerEvent], session_id: str = "s1") -> list[PlayerEvent]:
    """The events as a numbering player sends them: seq 0, 1, ... in order."""
    return [
        replace(e, session_id=session_id, event_id=f"{session_id}.{i}", seq=i)
        for i, e in enumerate(events)
    ]


def plays(store: SQLiteSessionStore) -> int:
    return sum(store.plays_by_day("trk1", DAY0, DAY0).values())


def sessions_checked(metrics: TelemetryMetrics, source: str) -> float:
    return metrics.sessions_checked.labels(source)._value.get()


@pytest.fixture
def store(tmp_path: Path) -> CountingStore:
    return CountingStore(tmp_path / "sessions.sqlite3")


@pytest.fixture
def metrics() -> TelemetryMetrics:
    return TelemetryMetrics(CollectorRegistry())


def test_events_are_without_gaps_when_numbered_from_zero() -> None:
    events = numbered(listening(30))
    assert without_gaps(events)
    assert without_gaps(events + events[:2])  # a retried request repeats its events
    assert not without_gaps(events[1:])  # the first is elsewhere
    assert not without_gaps(events[:1] + events[2:])  # a gap
    assert not without_gaps(listening(30))  # not numbered: every seq 0
    assert not without_gaps([])


def test_a_numbering_player_is_decided_from_memory(store, metrics) -> None:
    sink = SessionStoreSink(store, store, metrics)
    sink.write_batch(deliveries(8))
    events = numbered([*listening(40), event("end", 41, 41)])
    for one in events:  # one event a batch, as heartbeats arrive
        sink.write_batch([one])

    # Decided from memory; once played, its events were folded into its QoE and let go.
    assert store.read_back == []
    assert plays(store) == 1
    expected = decide_play("s1", "trk1", events, deliveries(8))
    assert store.session_telemetry("s1").play == expected
    assert metrics.track_played.labels("trk1")._value.get() == session_qoe(events).played_s
    # Every batch until the play was counted (play and three heartbeats); the end was folded.
    assert sessions_checked(metrics, "held") == 4
    assert sink.held_events == 0 and sink.qoe_folds == 0


def test_a_player_that_does_not_number_its_events_is_read_back(store, metrics) -> None:
    sink = SessionStoreSink(store, store, metrics)
    sink.write_batch(deliveries(8))
    for one in listening(40):
        sink.write_batch([one])

    assert plays(store) == 1
    # The first event alone is every event so far; each heartbeat until the play is read back.
    assert store.read_back == ["s1"] * 3
    assert sessions_checked(metrics, "read") == 3


def test_a_session_split_between_two_edges_counts_one_play(tmp_path, metrics) -> None:
    shared = CountingStore(tmp_path / "shared.sqlite3")
    first = SessionStoreSink(shared, shared, metrics)
    second = SessionStoreSink(shared, shared, TelemetryMetrics(CollectorRegistry()))
    first.write_batch(deliveries(8))
    events = numbered([*listening(60), event("end", 61, 61)])
    for index, one in enumerate(events):
        (first if index % 2 == 0 else second).write_batch([one])

    assert plays(shared) == 1
    # Neither holds every event, so each reads the session back; the play is the one the whole
    # session shows, whoever claimed it.
    assert shared.session_telemetry("s1").play == decide_play("s1", "trk1", events, deliveries(8))
    assert "s1" in shared.read_back


def test_an_edge_that_started_mid_session_reads_it_back_once(store, metrics) -> None:
    events = numbered(listening(60))
    earlier = SessionStoreSink(store, store, TelemetryMetrics(CollectorRegistry()))
    earlier.write_batch(events[:2])  # decided from memory; then that process stopped

    restarted = SessionStoreSink(store, store, metrics)
    restarted.write_batch(deliveries(10))
    restarted.write_batch(events[2:3])
    restarted.write_batch(events[3:4])

    assert store.read_back == ["s1"]  # then it held them all again
    assert plays(store) == 1


def test_forgotten_sessions_are_read_back(store, metrics) -> None:
    sink = SessionStoreSink(store, store, metrics, held_events=3)
    others = numbered(listening(20), session_id="s2")
    events = numbered(listening(40))
    sink.write_batch(deliveries(8))
    sink.write_batch(events[:2])
    sink.write_batch(others)  # pushes s1 out: at most three events are held
    sink.write_batch(events[2:])

    assert store.read_back == ["s1"]
    assert plays(store) == 1


def test_a_played_session_holds_nothing_however_long_it_plays(store, metrics) -> None:
    """The soak's case: sessions that play for hours and never end hold no memory once
    played; only sessions short of the play threshold are held."""
    sink = SessionStoreSink(store, store, metrics)
    sink.write_batch(deliveries(8))
    sink.write_batch(deliveries(8, session_id="s2"))
    long = numbered(listening(3600))  # an hour of heartbeats
    starting = numbered(listening(20), session_id="s2")  # short of the threshold
    held_after: list[int] = []
    for one in long:
        sink.write_batch([one])
        held_after.append(sink.held_events)
    sink.write_batch(starting)

    assert plays(store) == 1
    assert max(held_after[len(held_after) // 10 :]) == 0  # flat at nothing once played
    assert sink.qoe_folds == 1  # s1's running QoE, the same size after an hour
    assert sink.held_events == len(starting)  # s2's, still to be decided


class QoeSeen(TelemetryMetrics):
    """The metrics, keeping each session's QoE as the sink exports it."""

    def __init__(self) -> None:
        super().__init__(CollectorRegistry())
        self.seen: list[SessionQoe] = []

    def observe_session(self, track_id: str, qoe: SessionQoe) -> None:
        self.seen.append(qoe)
        super().observe_session(track_id, qoe)


def test_a_long_session_ending_gets_its_qoe_from_its_fold(store) -> None:
    metrics = QoeSeen()
    sink = SessionStoreSink(store, store, metrics)
    sink.write_batch(deliveries(8))
    stall = [event("stall_start", 300.5, 300), event("stall_end", 303, 300)]
    after = [event("heartbeat", 303 + t, 300.0 + t) for t in range(10, 301, 10)]
    events = numbered([*listening(300), *stall, *after, event("end", 604, 600)])
    for one in events:
        sink.write_batch([one])

    assert store.read_back == []
    assert session_qoe(events).stalls == 1 and session_qoe(events).played_s == 600
    assert metrics.seen == [session_qoe(events)]  # every field, as from all the events
    assert sink.held_events == 0 and sink.qoe_folds == 0


def test_a_retry_after_the_play_reads_the_session_back_at_its_end(store, metrics) -> None:
    sink = SessionStoreSink(store, store, metrics)
    sink.write_batch(deliveries(8))
    events = numbered([*listening(120), event("end", 121, 121)])
    for index, one in enumerate(events):
        sink.write_batch([one])
        if index == 6:  # played by now: a player sends this one again (its 202 was lost)
            sink.write_batch([one])

    assert sink.qoe_folds == 0
    assert store.read_back == ["s1"]  # once, at the end, with every event
    assert metrics.track_played.labels("trk1")._value.get() == session_qoe(events).played_s


def test_held_events_never_exceed_the_bound(store, metrics) -> None:
    sink = SessionStoreSink(store, store, metrics, held_events=50)
    peak = 0
    for index in range(40):  # 40 sessions short of a play (no deliveries), 3 events each
        sink.write_batch(numbered(listening(20), session_id=f"p{index}"))
        peak = max(peak, sink.held_events)

    assert peak <= 50
    assert sink.held_events > 0


def test_qoe_folds_never_exceed_the_bound(store, metrics) -> None:
    sink = SessionStoreSink(store, store, metrics, qoe_folds=3)
    for index in range(6):
        session_id = f"f{index}"
        sink.write_batch(deliveries(8, session_id=session_id))
        sink.write_batch(numbered(listening(40), session_id=session_id))
        assert sink.qoe_folds <= 3

    assert sink.qoe_folds == 3
    # The first session's fold went: its end is read back, and its QoE still exported.
    sink.write_batch([replace(event("end", 41, 40), session_id="f0", event_id="f0.end", seq=5)])
    assert store.read_back[-1:] == ["f0"]
