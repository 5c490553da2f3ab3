"""Scenario 2: SIGKILL of a `streamer worker` mid-encode, with a second worker on the same job
store (SQLite, shared by the processes) polling for work.

While it runs, a watcher reads `current.json` every 50 ms and checks that every object of the
version it names is there with its size: a partial publish would be visible to the edge. Counted:
partial publishes seen, publishes of the job (one), and the time from the kill until the job is
published (the lease lapses, the survivor claims it and encodes it again).
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from streamer.catalog import (
    current_record_key,
    decode_track_record,
    version_prefix,
    version_record_key,
)
from streamer.errors import ObjectNotFound
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.objects.port import ObjectStore
from streamer.settings import load_settings
from tests.chaos import figures
from tests.chaos.test_edge_worker_kill import wait_for
from tests.e2e.conftest import REPO, STREAMER, streamer_env
from tests.masters import make_master
from transcoder.submit import submit_master

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

LEASE_S = 3.0
TRACK_ID = "CHAOS-INGEST-1"
WATCH_INTERVAL_S = 0.05


def missing_objects(store: ObjectStore, track_id: str) -> list[str]:
    """Objects of the visible version that are absent or of the wrong size ([] if none is
    visible yet, or all are there)."""
    try:
        record = decode_track_record(store.get(current_record_key(track_id)))
    except ObjectNotFound:
        return []
    prefix = version_prefix(track_id, record.version)
    expected: dict[str, int | None] = {version_record_key(track_id, record.version): None}
    for rendition in record.renditions:  # keys in the record are the version's own
        expected[f"{prefix}/{rendition.init_key}"] = rendition.init_size
        expected[f"{prefix}/{rendition.playlist_key}"] = None
        expected.update((f"{prefix}/{s.key}", s.size) for s in rendition.segments)
    missing = []
    for key, size in expected.items():
        try:
            found = store.stat(key).size
        except ObjectNotFound:
            missing.append(key)
            continue
        if size is not None and found != size:
            missing.append(f"{key} ({found} bytes, not {size})")
    return missing


class Watcher(threading.Thread):
    """Counts the polls that saw a visible version with objects missing."""

    def __init__(self, store: ObjectStore) -> None:
        super().__init__(name="publish-watcher", daemon=True)
        self.store = store
        self.polls = 0
        self.visible = 0  # polls that found a visible version
        self.partial: list[list[str]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(WATCH_INTERVAL_S):
            self.polls += 1
            try:
                self.store.stat(current_record_key(TRACK_ID))
                self.visible += 1
            except ObjectNotFound:
                pass
            missing = missing_objects(self.store, TRACK_ID)
            if missing:
                self.partial.append(missing)


def worker(data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    env = streamer_env(data_dir, reject_silent="true")
    args = ["worker", "--lease-s", str(LEASE_S), "--idle-s", "0.2"]
    with log.open("ab") as out:
        return subprocess.Popen(
            [*STREAMER, *args], env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
        )


def test_killed_ingest_worker_is_retried_and_publishes_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = load_settings(environ={}, data_dir=data_dir)
    store = LocalObjectStore(settings.data_dir / "objects")
    jobs = SQLiteJobStore(settings.data_dir / "jobs.sqlite3")
    master = make_master(tmp_path / "long.flac", seconds=120.0)
    job = submit_master(master, store=store, jobs=jobs, track_id=TRACK_ID)
    watcher = Watcher(store)
    watcher.start()
    first = worker(data_dir, tmp_path / "first.log")
    survivor: subprocess.Popen[bytes] | None = None
    try:
        work = settings.data_dir / "work" / job.job_id
        wait_for("the first worker encoding", lambda: bool(list(work.glob("out/*/seg_00003.m4s"))))
        assert jobs.get(job.job_id).state == "running"
        survivor = worker(data_dir, tmp_path / "survivor.log")  # idle: the job is leased
        first.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        first.wait(timeout=10)
        assert missing_objects(store, TRACK_ID) == []
        wait_for(
            "the job published by the survivor",
            lambda: jobs.get(job.job_id).state in ("published", "failed"),
            180,
        )
        recover_s = time.monotonic() - killed_at
        wait_for("the watcher to check the visible version", lambda: watcher.visible >= 5)
    finally:
        watcher.stop.set()
        for process in (first, survivor):
            if process is not None and process.poll() is None:
                process.terminate()
                process.wait(timeout=30)
        watcher.join(timeout=5)

    finished = jobs.get(job.job_id)
    versions = {
        key.split("/")[2] for key in store.list(f"tracks/{TRACK_ID}/") if key.count("/") > 2
    }
    figures.record(
        "ingest worker mid-encode (lease 3 s)",
        partial_publishes=len(watcher.partial),
        recover_s=recover_s,
        job_attempts=finished.attempts,
        publishes=len(versions),
        store_polls=watcher.polls,
    )
    assert finished.state == "published", finished
    assert finished.attempts == 2
    assert versions == {finished.version}
    assert watcher.partial == [], watcher.partial[:3]
    assert missing_objects(store, TRACK_ID) == []
