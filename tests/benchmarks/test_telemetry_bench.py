"""The telemetry-ingest benchmark: its workload, baseline loop, writer side, report, and a
short run end to end against the real Cassandra of `scripts/services`."""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from benchmarks.telemetry import (
    BENCH_KEYSPACE,
    bench_settings,
    build_parser,
    main,
    new_keyspace_name,
    services_env,
    stale_keyspaces,
)
from benchmarks.telemetry_driver import insert_all
from benchmarks.telemetry_edge import run_writer, store_deliveries
from benchmarks.telemetry_report import FAIL, PASS, render_markdown, summarize_runs
from benchmarks.telemetry_workload import build_workload, interleave
from streamer.plays import decide_play
from streamer.qoe import session_qoe
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import PlayerEvent
from tests.backends import services as backend_services

T0_MS = 1_795_000_000_000


def _soon() -> float:
    """A deadline that the tests never reach."""
    return time.perf_counter() + 60.0


def _workload(sessions: int = 60, listeners: int = 10, seed: int = 7, **kwargs: Any):
    return build_workload("w", sessions, listeners, seed=seed, start_ms=T0_MS, **kwargs)


# The workload


def test_the_workload_is_the_same_for_the_same_seed_and_differs_by_session_ids_only():
    first, again = _workload(), _workload()
    assert first.requests == again.requests
    other = build_workload("x", 60, 10, seed=7, start_ms=T0_MS)
    assert [e.type for r in other.requests for e in r] == [
        e.type for r in first.requests for e in r
    ]
    assert not set(other.events_by_session) & set(first.events_by_session)


def test_each_session_reports_in_order_from_play_to_end_with_unique_event_ids():
    workload = _workload(sessions=200)
    by_session: dict[str, list[PlayerEvent]] = {}
    for request in workload.requests:
        assert len({e.session_id for e in request}) == 1  # a request is one session's
        for event in request:
            by_session.setdefault(event.session_id, []).append(event)
    assert {s: len(e) for s, e in by_session.items()} == workload.events_by_session
    ids = [e.event_id for events in by_session.values() for e in events]
    assert len(ids) == len(set(ids)) == workload.events
    for events in by_session.values():
        assert [e.seq for e in events] == list(range(len(events)))
        assert events[0].type == "play" and events[-1].type == "end"
        assert [e.client_ms for e in events] == sorted(e.client_ms for e in events)


def test_the_mix_is_mostly_heartbeats_with_every_incident_and_a_few_offline_sessions():
    workload = _workload(sessions=2000, listeners=500)
    types = workload.describe()["events_by_type"]
    assert types["heartbeat"] > 0.75 * workload.events
    assert types["play"] >= types["end"] == 2000
    for kind in ("bitrate_switch", "stall_start", "stall_end", "pause", "seek", "error"):
        assert types.get(kind, 0) > 0, kind
    offline = [r for r in workload.requests if r[0].offline]
    assert offline and all(len(r) == workload.events_by_session[r[0].session_id] for r in offline)
    assert 1.0 < workload.describe()["events_per_request_mean"] < 1.2


def test_played_sessions_count_a_play_from_their_events_and_stored_deliveries():
    workload = _workload(sessions=100)
    events: dict[str, list[PlayerEvent]] = {}
    for request in workload.requests:
        for event in request:
            events.setdefault(event.session_id, []).append(event)
    played = 0
    for session_id, session_events in events.items():
        deliveries = [d for d in workload.deliveries if d.session_id == session_id]
        claim = decide_play(session_id, session_events[0].track_id, session_events, deliveries)
        qoe = session_qoe(session_events)
        assert qoe.ended
        if qoe.played_s >= 40:  # well past the threshold: the deliveries must cover it too
            assert claim is not None, session_id
        played += claim is not None
    assert 50 < played < 100  # about a quarter are skipped early
    assert not _workload(sessions=5, deliveries=False).deliveries


def test_interleaving_keeps_each_script_in_order_and_at_most_listeners_playing():
    scripts = [[(f"s{n}", i) for i in range(n % 5 + 1)] for n in range(40)]
    out = interleave(scripts, 4, random.Random(3))
    assert sorted(out) == sorted(item for script in scripts for item in script)
    playing: set[str] = set()
    left = Counter(session for script in scripts for session, _ in script)
    for session, _ in out:
        playing.add(session)
        assert len(playing) <= 4
        left[session] -= 1
        if not left[session]:
            playing.remove(session)
    for script in scripts:
        assert [i for s, i in out if s == script[0][0]] == [i for _, i in script]


def test_a_workload_needs_sessions_and_listeners():
    with pytest.raises(ValueError, match="sessions"):
        build_workload("w", 0, 1, seed=1, start_ms=T0_MS)


# The baseline loop, over a fake driver session


class FakeFuture:
    def __init__(self, session: FakeSession, row: Sequence[Any]) -> None:
        self.session = session
        self.row = row
        self.callbacks: tuple[Callable[..., None], Callable[..., None]] | None = None

    def add_callbacks(self, ok: Callable[..., None], error: Callable[..., None]) -> None:
        self.callbacks = (ok, error)
        if self.session.immediate:  # completed before the callbacks were added
            self.finish()

    def finish(self) -> None:
        assert self.callbacks is not None
        ok, error = self.callbacks
        self.session.in_flight -= 1
        if self.row[0] in self.session.failing:
            error(RuntimeError(f"refused {self.row[0]}"))
        else:
            ok([])


class FakeSession:
    """Answers at once (`immediate`), or when `finish_all` is called from another thread."""

    def __init__(self, immediate: bool = True, failing: frozenset[str] = frozenset()) -> None:
        self.immediate = immediate
        self.failing = failing
        self.sent: list[Sequence[Any]] = []
        self.pending: list[FakeFuture] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()

    def execute_async(self, prepared: object, row: Sequence[Any], timeout: float) -> FakeFuture:
        assert timeout > 0
        with self.lock:
            self.sent.append(row)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
            future = FakeFuture(self, row)
            if not self.immediate:
                self.pending.append(future)
        return future


def test_every_row_is_sent_once_and_answers_that_come_at_once_do_not_recurse():
    session = FakeSession(immediate=True)
    rows = [(f"r{i}",) for i in range(20_000)]  # deeper than the recursion limit
    result = insert_all(session, object(), rows, 8, deadline=_soon())
    assert session.sent == rows
    assert (result.sent, result.ok, result.failed, result.first_error) == (20_000, 20_000, 0, None)


def test_no_more_than_the_concurrency_is_in_flight_and_failures_are_counted():
    session = FakeSession(immediate=False, failing=frozenset({"r3"}))

    def answer() -> None:
        while True:
            with session.lock:
                batch, session.pending = session.pending, []
            if not batch and len(session.sent) == 10 and session.in_flight == 0:
                return
            for future in batch:
                future.finish()

    answering = threading.Thread(target=answer)
    answering.start()
    result = insert_all(session, object(), [(f"r{i}",) for i in range(10)], 3, _soon())
    answering.join(timeout=10)
    assert session.most_in_flight <= 3
    assert (result.sent, result.ok, result.failed) == (10, 9, 1)
    assert result.first_error == "RuntimeError: refused r3"


def test_nothing_is_sent_after_the_deadline():
    ticks = iter(range(100))
    session = FakeSession()
    result = insert_all(
        session,
        object(),
        [(f"r{i}",) for i in range(50)],
        4,
        deadline=5,
        clock=lambda: next(ticks),
    )
    assert 0 < result.sent < 5 and result.ok == result.sent


# The writer side, over the embedded store


async def test_the_writer_side_acknowledges_and_stores_every_event(tmp_path: Path):
    store = SQLiteSessionStore(tmp_path / "s.sqlite3")
    workload = _workload(sessions=30)
    store_deliveries(store, workload)
    result, sent = await run_writer(store, workload, 30.0, capacity=200, max_batch=50)
    assert sum(sent.values()) == result["events"] == result["acknowledged"] == workload.events
    assert result["events_per_s"] > 0 and not result["cut_by_deadline"]
    assert result["dropped"] == 0 and result["plays_counted"] > 0
    assert result["waits_429"] > 0  # 200 held at most: the producer waited for room
    assert result["enqueue_us"]["count"] == result["requests"] == len(workload.requests)
    assert result["store_calls"]["writes"] == result["batches"]
    for session_id, count in sent.items():
        assert len(store.session_telemetry(session_id).events) == count
    store.close()


async def test_the_writer_side_stops_sending_at_its_deadline_and_drains(tmp_path: Path):
    store = SQLiteSessionStore(tmp_path / "s.sqlite3")
    # A deadline far shorter than the workload takes to submit (about 37,000 requests).
    result, sent = await run_writer(store, _workload(sessions=2000), 0.01, capacity=10_000)
    assert result["cut_by_deadline"]
    assert result["acknowledged"] == result["events"] == sum(sent.values())
    store.close()


# Settings, keyspaces, report


def test_cql_settings_come_from_options_then_environment_then_the_services_file(tmp_path: Path):
    (tmp_path / "services.env").write_text(
        "# comment\nSTREAMER_CQL_HOSTS=10.0.0.9\nSTREAMER_CQL_PORT=19042\nSERVICES_X=1\n"
    )
    environ = {"STREAMER_CACHE": str(tmp_path), "STREAMER_CQL_PORT": "9999"}
    assert services_env(environ)["STREAMER_CQL_HOSTS"] == "10.0.0.9"
    args = build_parser().parse_args([])
    settings = bench_settings(args, "streamer_bench_1_abc", environ)
    assert (settings.cql_hosts, settings.cql_port) == ("10.0.0.9", 9999)
    assert settings.cql_keyspace == "streamer_bench_1_abc"
    args = build_parser().parse_args(["--cql-port", "1234"])
    assert bench_settings(args, "k", environ).cql_port == 1234


def test_keyspaces_left_by_killed_runs_are_found_by_age():
    name = new_keyspace_name(1_000_000)
    assert BENCH_KEYSPACE.fullmatch(name)
    names = [name, new_keyspace_name(1_020_000), "streamer", "streamer_test_1_abc"]
    assert stale_keyspaces(names, now=1_000_000 + 7 * 3600) == [name]


def _side(rate: float, lost: int = 0, **extra: Any) -> dict[str, Any]:
    cpu = {"benchmark": 0.5, "cassandra": 0.5, "machine": 1.2}
    return {"events": 1000, "elapsed_s": 1.0, "events_per_s": rate, "lost": lost,
            "failed": 0, "cpu_cores": cpu, **extra}  # fmt: skip


def _writer(rate: float, lost: int = 0) -> dict[str, Any]:
    hist = {"p50": 1.0, "p99": 4.0, "max": 30.0, "count": 1000}
    return _side(rate, lost, enqueue_us=hist, loop_lag_ms=hist, waits_429=3, batch_ms=hist,
                 batch_items_mean=500.0, dropped=0, store_s={"writes": 1.0, "reads": 2.0},
                 batches=2, plays_counted=5)  # fmt: skip


def _runs(baseline: list[float], writer: list[float], lost: int = 0) -> list[dict[str, Any]]:
    return [
        {"run": n + 1, "order": ["baseline", "writer"], "baseline": _side(b),
         "writer": _writer(w, lost if n == 0 else 0)}
        for n, (b, w) in enumerate(zip(baseline, writer, strict=True))
    ]  # fmt: skip


def test_the_ratio_of_medians_is_judged_against_seventy_percent_and_no_loss():
    done = summarize_runs(_runs([1000, 900, 1100], [700, 800, 600]))
    assert done["summary"]["ratio"] == 0.7
    assert done["summary"]["writer_events_per_s"] == {
        "median": 700, "low": 600, "high": 800, "runs": 3
    }  # fmt: skip
    assert [t["result"] for t in done["targets"]] == [PASS, PASS]
    below = summarize_runs(_runs([1000, 1000, 1000], [690, 690, 690], lost=2))
    assert [t["result"] for t in below["targets"]] == [FAIL, FAIL]
    assert "writer 2" in below["targets"][1]["measured"]


def test_the_markdown_has_targets_sides_and_every_run():
    doc: dict[str, Any] = {
        "date": "2026-11-27T00:00:00+00:00",
        "command": "python -m benchmarks.telemetry",
        "machine": {"cores": 2, "cpu": "AMD EPYC", "memory_gib": 24.0, "kernel": "6.1",
                    "python": "3.11.2"},
        "cql": {"hosts": "127.0.0.1", "port": 19042, "server": "Cassandra 5.0.9"},
        "workload": {"events": 1000, "sessions": 50, "requests": 990, "listeners": 10,
                     "events_by_type": {"heartbeat": 900, "play": 50, "end": 50},
                     "deliveries": True, "deliveries_stored_first": 1500},
        "baseline_concurrency": {"chosen": 64, "tried": [{"concurrency": 64,
                                                           "events_per_s": 1000.0}]},
        "runs": _runs([1000, 900, 1100], [700, 800, 600]),
    }  # fmt: skip
    doc.update(summarize_runs(doc["runs"]))
    text = render_markdown(doc)
    assert "| writer >= 70% of the driver-only insert rate | 0.70 (700 / 1000 events/s)" in text
    assert "| edge writer | 700 (600-800) | 0 |" in text
    assert "Ratio writer / baseline within each run: 0.70 (0.55-0.89)." in text
    assert text.count("| baseline |") == 3 and text.count("| writer |") == 3
    assert render_markdown(doc, brief=True).startswith("| target |")


# End to end, against the real Cassandra


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.services
def test_a_short_run_writes_every_event_on_both_sides(tmp_path: Path):
    env = backend_services.services_env()
    if "STREAMER_CQL_PORT" not in env:
        backend_services.missing(
            "cassandra", "no CQL server is configured (no STREAMER_CQL_PORT, no env file)"
        )
    host = env.get("STREAMER_CQL_HOSTS", "127.0.0.1").split(",")[0].strip()
    backend_services.require_listening("cassandra", host, int(env["STREAMER_CQL_PORT"]))
    status = main(
        [
            "--runs", "2", "--seconds", "3", "--sessions", "40", "--listeners", "10",
            "--concurrency", "16", "--cql-hosts", host, "--cql-port", env["STREAMER_CQL_PORT"],
            "--out", str(tmp_path),
        ]
    )  # fmt: skip
    assert status == 0
    doc = json.loads((tmp_path / "telemetry.json").read_text())
    assert [r["order"] for r in doc["runs"]] == [["baseline", "writer"], ["writer", "baseline"]]
    for record in doc["runs"]:
        for side in ("baseline", "writer"):
            result = record[side]
            assert result["events"] == doc["workload"]["events"], side
            assert result["lost"] == 0 and result["unexpected"] == 0, side
            assert result["stored"] == result["events"], side
            assert result["events_per_s"] > 0, side
        assert record["writer"]["plays_counted"] > 0
        assert record["writer"]["enqueue_us"]["count"] == doc["workload"]["requests"]
    assert doc["summary"]["lost"] == {"baseline": 0, "writer": 0}
    assert {t["name"] for t in doc["targets"]} == {
        "writer >= 70% of the driver-only insert rate",
        "no event lost",
    }
    assert doc["summary"]["ratio"] > 0
    assert (tmp_path / "telemetry.md").read_text().startswith("# Telemetry ingest")
