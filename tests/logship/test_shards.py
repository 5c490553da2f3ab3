"""Shipping nginx's log shards: one shipper process per file, each line exactly once, plays
counted once, and a killed supervisor takes its shards down with it."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from cdn_edge.logship.errors import ShipperStateError
from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.shards import expand_logs, shard_metrics_file
from cdn_edge.logship.stats import ShipStats, combine_stats, render_metrics
from streamer.plays import utc_day
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import TelemetryBatch
from tests.logship.builders import SEGMENTS, T0, line, published_track, session_lines
from tests.logship.test_killed_shipper import REPO, WAIT_S, environment
from tests.telemetry.builders import T0_MS, listening

SESSIONS = 30
PLAYED = 20


def shard_of(raw: bytes, shards: int) -> int:
    # As nginx's split_clients: a hash of the session (else the request id) picks the file.
    fields = json.loads(raw)
    return zlib.crc32((fields["session_id"] or fields["request_id"]).encode()) % shards


def write_shards(tmp_path: Path, shards: int = 2) -> tuple[Path, list[bytes]]:
    data = tmp_path / "data"
    published_track(data)
    store = SQLiteSessionStore(data / "sessions.sqlite3")
    events = [e for i in range(PLAYED) for e in listening(40, session_id=f"s{i}")]
    store.write_telemetry(TelemetryBatch(events=tuple(events)))
    store.close()
    lines = [x for i in range(SESSIONS) for x in session_lines(f"s{i}", t0=T0 + i)]
    lines += [line(status="403", session_id="", object="") for _ in range(5)]
    files: list[list[bytes]] = [[] for _ in range(shards)]
    for raw in lines:
        files[shard_of(raw, shards)].append(raw)
    for k, shard in enumerate(files):
        assert shard, "every shard gets lines"
        (tmp_path / f"access.{k}.log").write_bytes(b"".join(shard))
    return data, lines


def logship(data: Path, pattern: str, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        *("python", "-m", "streamer_app.cli", "--data-dir", str(data), "logship"),
        *("--log", pattern, "--batch-lines", "9", *extra),
    ]
    command[0] = sys.executable
    return subprocess.Popen(
        command, env=environment(), cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


def assert_exactly_once(data: Path) -> None:
    store = SQLiteSessionStore(data / "sessions.sqlite3")
    try:
        day = utc_day(T0_MS)
        assert store.plays_by_day("trk1", day, day) == {day: PLAYED}
        for i in range(SESSIONS):
            telemetry = store.session_telemetry(f"s{i}")
            assert len(telemetry.deliveries) == SEGMENTS and len(telemetry.cmcd) == SEGMENTS
    finally:
        store.close()
    with sqlite3.connect(data / "sessions.sqlite3") as db:
        (deliveries,) = db.execute("SELECT COUNT(*) FROM segment_deliveries").fetchone()
        (samples,) = db.execute("SELECT COUNT(*) FROM cmcd_samples").fetchone()
    assert deliveries == samples == SESSIONS * SEGMENTS


def test_a_glob_ships_each_shard_once_in_its_own_process(tmp_path: Path) -> None:
    data, lines = write_shards(tmp_path)
    metrics = tmp_path / "logship.prom"
    pattern = str(tmp_path / "access.*.log")
    out, err = logship(data, pattern, "--once", "--metrics-file", str(metrics)).communicate(
        timeout=120
    )
    stats = json.loads(out)
    assert stats["lines"] == len(lines) and stats["bytes_behind"] == 0, err.decode()
    assert stats["deliveries"] == SESSIONS * SEGMENTS and stats["plays_counted"] == PLAYED
    assert stats["unverified"] == 5
    for k in (0, 1):
        assert (data / "logship" / f"access.{k}.log.position.json").exists()
        text = shard_metrics_file(metrics, tmp_path / f"access.{k}.log").read_text()
        assert f'logship_lag_bytes{{log="access.{k}.log"}} 0' in text
    assert_exactly_once(data)
    # Again: every shard resumes at its end; nothing is shipped twice.
    again = json.loads(logship(data, pattern, "--once").communicate(timeout=120)[0])
    assert again["lines"] == 0
    assert_exactly_once(data)


@pytest.mark.slow
def test_killing_the_supervisor_stops_its_shards_and_a_restart_loses_nothing(
    tmp_path: Path,
) -> None:
    data, _ = write_shards(tmp_path)
    pattern = str(tmp_path / "access.*.log")
    process = logship(data, pattern, "--batch-lines", "3")
    positions = [data / "logship" / f"access.{k}.log.position.json" for k in (0, 1)]
    deadline = time.monotonic() + WAIT_S
    while not all(p.exists() for p in positions):
        assert time.monotonic() < deadline, "the shards never saved a position"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=WAIT_S)
    # The orphaned shards notice between batches and stop, releasing their locks.
    for position in positions:
        lock = OffsetFile(position)
        while True:
            try:
                lock.lock()
                break
            except ShipperStateError:
                assert time.monotonic() < deadline + WAIT_S, "an orphaned shard kept running"
                time.sleep(0.01)
        lock.close()
    finished = logship(data, pattern, "--once")
    out, err = finished.communicate(timeout=120)
    assert finished.returncode == 0, err.decode()
    assert json.loads(out)["bytes_behind"] == 0
    assert_exactly_once(data)


def test_a_pattern_matching_nothing_or_a_state_file_for_several_logs_is_refused(
    tmp_path: Path,
) -> None:
    with pytest.raises(ShipperStateError):
        expand_logs(tmp_path / "access.*.log")
    (tmp_path / "access.1.log").touch()
    (tmp_path / "access.0.log").touch()
    (tmp_path / "access.0.log.1").touch()  # rotated: not a shard
    assert expand_logs(tmp_path / "access.*.log") == (
        tmp_path / "access.0.log",
        tmp_path / "access.1.log",
    )
    assert expand_logs(tmp_path / "access.log") == (tmp_path / "access.log",)
    data = tmp_path / "data"
    refused = logship(data, str(tmp_path / "access.*.log"), "--once", "--state", "x.json")
    _, err = refused.communicate(timeout=60)
    assert refused.returncode != 0 and b"give no --state" in err


def test_shard_stats_add_up_and_metrics_carry_the_log_label() -> None:
    a = ShipStats(lines=3, malformed={"not_json": 1}, bytes_behind=10, seconds_behind=2.0)
    b = ShipStats(lines=4, malformed={"not_json": 2, "torn": 1}, seconds_behind=5.0, offset=9)
    both = combine_stats([a, b])
    assert (both.lines, both.bytes_behind, both.seconds_behind) == (7, 10, 5.0)
    assert both.malformed == {"not_json": 3, "torn": 1} and both.offset == 0
    text = render_metrics(a, {"log": 'access."0".log'})
    assert 'logship_lines_total{log="access.\\"0\\".log"} 3' in text
    assert 'logship_malformed_lines_total{log="access.\\"0\\".log",reason="not_json"} 1' in text
