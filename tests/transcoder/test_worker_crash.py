"""A worker killed mid-job leaves nothing visible, and the retried job publishes exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from streamer.catalog import current_record_key
from streamer.errors import ObjectNotFound
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.keyring_file import load_or_create_keyring
from streamer.objects.local import LocalObjectStore
from streamer.settings import Settings
from tests.masters import make_master
from transcoder.submit import submit_master
from transcoder.worker import IngestWorker

pytestmark = pytest.mark.slow

LEASE_S = 3.0


def _ffmpeg_children_of(work_dir: Path) -> list[str]:
    found = subprocess.run(["pgrep", "-af", str(work_dir)], capture_output=True, text=True)
    return [line for line in found.stdout.splitlines() if "ffmpeg" in line and "pgrep" not in line]


def test_killed_worker_leaves_nothing_and_the_job_is_retried_once(
    tmp_path: Path, settings: Settings
) -> None:
    store = LocalObjectStore(settings.data_dir / "objects")
    jobs = SQLiteJobStore(settings.data_dir / "jobs.sqlite3")
    master = make_master(tmp_path / "long.flac", seconds=120.0)
    job = submit_master(master, store=store, jobs=jobs, track_id="crashy")

    worker = subprocess.Popen(
        [sys.executable, "-m", "streamer_app.cli", "--data-dir", str(settings.data_dir),
         "worker", "--once", "--lease-s", str(LEASE_S)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "STREAMER_REJECT_SILENT": "true"},
    )  # fmt: skip
    try:
        work_dir = settings.data_dir / "work" / job.job_id
        deadline = time.monotonic() + 60
        # Wait until encoding is well under way: segments are being written.
        while time.monotonic() < deadline:
            if list(work_dir.glob("out/*/seg_00003.m4s")):
                break
            assert worker.poll() is None, worker.stderr.read().decode()  # type: ignore[union-attr]
            time.sleep(0.05)
        else:
            pytest.fail("the worker never started encoding")
        assert jobs.get(job.job_id).state == "running"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stdout.close()  # type: ignore[union-attr]
        worker.stderr.close()  # type: ignore[union-attr]

    # ffmpeg died with its worker (parent-death signal), and nothing became visible.
    for _ in range(50):
        if not _ffmpeg_children_of(work_dir):
            break
        time.sleep(0.1)
    assert _ffmpeg_children_of(work_dir) == []
    with pytest.raises(ObjectNotFound):
        store.stat(current_record_key("crashy"))

    # Within the lease nobody may take the job over ...
    ring = load_or_create_keyring(settings.secrets_dir / "kek.json")
    assert jobs.claim("eager", datetime.now(UTC), LEASE_S) is None
    # ... after it lapses another worker does (its clock runs ahead instead of us sleeping).
    later = IngestWorker(
        settings, store, jobs, ring, lease_s=60.0,
        clock=lambda: datetime.now(UTC) + timedelta(seconds=LEASE_S + 1),
    )  # fmt: skip
    finished = later.run_one()
    assert finished is not None and finished.job_id == job.job_id
    assert finished.state == "published" and finished.attempts == 2
    assert store.stat(current_record_key("crashy")).size > 0
    versions = {key.split("/")[2] for key in store.list("tracks/crashy/") if key.count("/") > 2}
    assert versions == {finished.version}
    assert later.run_one() is None  # nothing left to do: exactly one publish
