"""`streamer logship` killed with SIGKILL again and again while nginx appends and rotates:
every delivery lands exactly once and every play is counted once."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from streamer.plays import utc_day
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.telemetry.model import TelemetryBatch
from tests.logship.builders import SEGMENTS, T0, line, published_track, session_lines
from tests.telemetry.builders import T0_MS, listening

REPO = Path(__file__).resolve().parents[2]
SESSIONS = 60
PLAYED = 40  # sessions whose events reach the threshold; the rest have deliveries only
KILLS = 8
WAIT_S = 20.0
STARTUP_S = 0.6  # the shipper imports and opens its stores in about 0.4 s


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def shipper_command(data: Path, log: Path, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "streamer_app.cli", "--data-dir", str(data),
        "logship", "--log", str(log), "--batch-lines", "7", "--rotate-wait-s", "0.3", *extra,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMER_")}
    env["PYTHONPATH"] = str(REPO)
    return env


@pytest.mark.slow
def test_a_shipper_killed_mid_stream_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(13)
    data = tmp_path / "data"
    published_track(data)
    store = SQLiteSessionStore(data / "sessions.sqlite3")
    events = [e for i in range(PLAYED) for e in listening(40, session_id=f"s{i}")]
    store.write_telemetry(TelemetryBatch(events=tuple(events)))
    store.close()

    # nginx's output: sessions interleaved, refused requests and garbage among them.
    lines: list[bytes] = []
    for i in range(SESSIONS):
        lines += session_lines(f"s{i}", t0=T0 + i)
    rng.shuffle(lines)
    for at in range(0, len(lines), 37):
        lines.insert(at, line(status="403", session_id="", object=""))
    lines.insert(50, b"garbage that is not json\n")
    blob = b"".join(lines)
    log = tmp_path / "access.log"
    log.touch()
    # Each run gets a chunk to chew on and is killed at a random moment while shipping it.
    chunk = len(blob) // KILLS + 1
    errors = (tmp_path / "shipper.err").open("wb")
    written = 0
    for run in range(KILLS):
        process = subprocess.Popen(
            shipper_command(data, log), env=environment(), cwd=REPO,
            stdout=subprocess.DEVNULL, stderr=errors,
        )  # fmt: skip
        try:
            time.sleep(STARTUP_S)
            end = min(len(blob), written + chunk)
            if run == KILLS // 2:
                # logrotate `create`: rename; nginx writes on to the old file until it
                # reopens (SIGUSR1), then to a new file at the path.
                middle = blob.index(b"\n", written, end) + 1
                append(log, blob[written:middle])
                os.rename(log, tmp_path / "access.log.1")
                later = blob.index(b"\n", middle, end) + 1
                append(tmp_path / "access.log.1", blob[middle:later])
                log.touch()
                written = later
            while written < end:  # appends that split lines anywhere: torn last lines
                step = rng.randint(100, 8000)
                append(log, blob[written : min(end, written + step)])
                written = min(end, written + step)
            # Kill it mid-stream: once it has saved a position in this chunk, a moment later.
            state = data / "logship" / "access.log.position.json"
            before = state.read_bytes() if state.exists() else b""
            deadline = time.monotonic() + WAIT_S
            while (state.read_bytes() if state.exists() else b"") == before:
                assert time.monotonic() < deadline, "the shipper never moved"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.05))
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=WAIT_S)
        assert process.returncode == -signal.SIGKILL, (tmp_path / "shipper.err").read_text()
    errors.close()
    append(log, blob[written:])

    finished = subprocess.run(
        shipper_command(data, log, "--once"), env=environment(), cwd=REPO,
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    stats = json.loads(finished.stdout)
    assert stats["bytes_behind"] == 0

    store = SQLiteSessionStore(data / "sessions.sqlite3")
    try:
        day = utc_day(T0_MS)
        assert store.plays_by_day("trk1", day, day) == {day: PLAYED}
        for i in range(SESSIONS):
            telemetry = store.session_telemetry(f"s{i}")
            names = sorted(d.name for d in telemetry.deliveries)
            assert names == [f"aac_160/seg_{n:05d}.m4s" for n in range(SEGMENTS)], i
            assert len(telemetry.cmcd) == SEGMENTS
            assert (telemetry.play is not None) == (i < PLAYED)
    finally:
        store.close()
    with sqlite3.connect(data / "sessions.sqlite3") as db:
        (deliveries,) = db.execute("SELECT COUNT(*) FROM segment_deliveries").fetchone()
        (samples,) = db.execute("SELECT COUNT(*) FROM cmcd_samples").fetchone()
        (plays,) = db.execute("SELECT COUNT(*) FROM plays").fetchone()
    assert (deliveries, samples, plays) == (SESSIONS * SEGMENTS, SESSIONS * SEGMENTS, PLAYED)
