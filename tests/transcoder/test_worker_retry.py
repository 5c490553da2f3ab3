"""A retryable failure hands the job back after a short pause, not after a whole lease."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from drm import KeyRing
from streamer.errors import StorageError
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.objects.port import ObjectInfo
from streamer.settings import Settings
from tests.masters import make_master
from transcoder.submit import submit_master
from transcoder.worker import RETRY_AFTER_S, IngestWorker

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
LEASE_S = 60.0


class UnreachableMasters(LocalObjectStore):
    """An object store whose masters cannot be read, as during a store outage."""

    def stat(self, key: str) -> ObjectInfo:
        raise StorageError(f"cannot reach the object store for {key}")


def test_a_retryable_failure_hands_the_job_back_after_a_short_pause(
    tmp_path: Path, settings: Settings, ring: KeyRing
) -> None:
    store = LocalObjectStore(settings.data_dir / "objects")
    jobs = SQLiteJobStore(settings.data_dir / "jobs.sqlite3")
    master = make_master(tmp_path / "song.flac", seconds=2.0)
    job = submit_master(master, store=store, jobs=jobs, track_id="retry", now=T0)

    failing = UnreachableMasters(settings.data_dir / "objects")
    worker = IngestWorker(settings, failing, jobs, ring, lease_s=LEASE_S, clock=lambda: T0)
    outcome = worker.run_one()
    assert outcome is not None and outcome.state == "running"  # not failed: to be retried
    assert outcome.lease_until is not None
    assert (
        outcome.lease_until
        <= T0 + timedelta(seconds=RETRY_AFTER_S)
        < T0 + timedelta(seconds=LEASE_S)
    )
    pause = timedelta(seconds=RETRY_AFTER_S)
    assert jobs.claim("other", T0 + pause / 2, LEASE_S) is None  # paused, not abandoned
    again = jobs.claim("other", T0 + pause + timedelta(seconds=1), LEASE_S)
    assert again is not None and again.job_id == job.job_id and again.attempts == 2
