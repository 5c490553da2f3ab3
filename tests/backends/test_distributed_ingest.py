"""Ingest on the real backends: workers sharing the Scylla job queue and an S3 object store.

- An S3 outage mid-ingest fails the attempt without making anything visible; once S3 is back
  the job is retried and publishes exactly once.
- A worker process killed mid-job (SIGKILL) is replaced: another worker takes the job over when
  its lease lapses and publishes it exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drm import KeyRing, new_kek
from streamer.catalog import current_record_key
from streamer.errors import ObjectNotFound
from streamer.jobs.port import Job
from streamer.keyring_file import load_or_create_keyring
from streamer.objects.s3 import S3ObjectStore
from streamer.settings import Settings
from tests.backends.conftest import PrivateS3Server
from tests.backends.cql_fixtures import shared_test_keyspace
from tests.backends.services import services_env
from tests.masters import make_master
from transcoder.submit import submit_master
from transcoder.worker import IngestWorker

pytestmark = [pytest.mark.services, pytest.mark.slow]

LEASE_S = 3.0


def _ahead(seconds: float):
    """A clock running `seconds` ahead: a lease lapses without the test sleeping through it."""
    return lambda: datetime.now(UTC) + timedelta(seconds=seconds)


def _versions(store: S3ObjectStore, track_id: str) -> set[str]:
    return {key.split("/")[2] for key in store.list(f"tracks/{track_id}/") if key.count("/") > 2}


def _wait_for(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.05)


def test_s3_outage_mid_ingest_is_retried_and_publishes_once(
    private_s3: PrivateS3Server, tmp_path: Path
) -> None:
    settings = private_s3.settings(tmp_path, bucket="ingest-outage")
    store = S3ObjectStore.from_settings(settings, retry_deadline_s=2.0)
    jobs = shared_test_keyspace().fresh_store()
    kek = new_kek()
    ring = KeyRing(kek.kek_id, (kek,))
    master = make_master(tmp_path / "song.flac", seconds=90.0)
    job = submit_master(master, store=store, jobs=jobs, track_id="outage")

    first = IngestWorker(settings, store, jobs, ring, lease_s=LEASE_S)
    outcome: list[Job | None] = []
    attempt = threading.Thread(target=lambda: outcome.append(first.run_one()))
    attempt.start()
    work = settings.data_dir / "work" / job.job_id
    _wait_for(lambda: bool(list(work.glob("out/*/seg_00002.m4s"))), 60, "encoding to start")
    private_s3.stop()  # S3 goes away while ffmpeg works; publishing will find it gone
    attempt.join(timeout=120)
    assert not attempt.is_alive()
    assert outcome[0] is not None and outcome[0].state == "running"  # left for a retry

    private_s3.start()
    with pytest.raises(ObjectNotFound):
        store.stat(current_record_key("outage"))  # nothing became visible
    assert jobs.claim("eager", datetime.now(UTC), LEASE_S) is None  # the lease still holds

    retry = IngestWorker(settings, store, jobs, ring, lease_s=60.0, clock=_ahead(LEASE_S + 1))
    finished = retry.run_one()
    assert finished is not None and finished.job_id == job.job_id
    assert finished.state == "published" and finished.attempts == 2
    assert store.stat(current_record_key("outage")).size > 0
    assert _versions(store, "outage") == {finished.version}


def test_killed_worker_is_replaced_through_the_scylla_queue(tmp_path: Path) -> None:
    keyspace = shared_test_keyspace()
    jobs = keyspace.fresh_store()
    env = services_env()
    bucket = f"ingest-kill-{uuid.uuid4().hex[:8]}"
    worker_env = {
        **os.environ,
        **{k: v for k, v in env.items() if k.startswith("STREAMER_")},
        "STREAMER_DATA_DIR": str(tmp_path / "data"),
        "STREAMER_OBJECT_STORE": "s3",
        "STREAMER_S3_BUCKET": bucket,
        "STREAMER_JOB_STORE": "scylla",
        "STREAMER_CQL_KEYSPACE": keyspace.keyspace,
    }
    settings = Settings(
        **{
            **keyspace.settings.__dict__,
            "data_dir": tmp_path / "data",
            "object_store": "s3",
            "job_store": "scylla",
            "s3_endpoint": env["STREAMER_S3_ENDPOINT"],
            "s3_access_key": env["STREAMER_S3_ACCESS_KEY"],
            "s3_secret_key": env["STREAMER_S3_SECRET_KEY"],
            "s3_bucket": bucket,
        }
    )
    store = S3ObjectStore.from_settings(settings)
    master = make_master(tmp_path / "long.flac", seconds=120.0)
    job = submit_master(master, store=store, jobs=jobs, track_id="killed")

    worker = subprocess.Popen(
        [sys.executable, "-m", "streamer_app.cli", "worker", "--once", "--lease-s", str(LEASE_S)],
        env=worker_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        work = settings.data_dir / "work" / job.job_id
        _wait_for(lambda: bool(list(work.glob("out/*/seg_00003.m4s"))) or worker.poll() is not None,
                  90, "the worker to start encoding")  # fmt: skip
        assert worker.poll() is None, worker.stderr.read().decode()  # type: ignore[union-attr]
        assert jobs.get(job.job_id).state == "running"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        worker.stderr.close()  # type: ignore[union-attr]

    with pytest.raises(ObjectNotFound):
        store.stat(current_record_key("killed"))
    ring = load_or_create_keyring(settings.kek_path)
    successor = IngestWorker(settings, store, jobs, ring, lease_s=60.0, clock=_ahead(LEASE_S + 1))
    finished = successor.run_one()
    assert finished is not None and finished.job_id == job.job_id
    assert finished.state == "published" and finished.attempts == 2
    assert _versions(store, "killed") == {finished.version}
    assert successor.run_one() is None
