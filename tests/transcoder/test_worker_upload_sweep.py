"""Ingest workers sweep abandoned uploads on start and hourly; a failed sweep stops nothing."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drm import KeyRing
from streamer.errors import StorageError
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.objects.port import ABANDONED_UPLOAD_AGE
from streamer.settings import Settings
from transcoder.worker import UPLOAD_SWEEP_INTERVAL, IngestWorker

T0 = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
STEP = timedelta(minutes=20)


class SweptStore(LocalObjectStore):
    """A local store that also has abandoned uploads to sweep, as S3 has."""

    def __init__(self, root: Path, *, down: bool = False) -> None:
        super().__init__(root)
        self.sweeps: list[timedelta] = []
        self.down = down

    def cleanup_incomplete_uploads(self, older_than: timedelta) -> int:
        self.sweeps.append(older_than)
        if self.down:
            raise StorageError("cannot list multipart uploads: the S3 server is down")
        return 2


def run_for(worker: IngestWorker, clock: list[datetime], steps: int) -> None:
    """run_until over an empty queue, the clock moving STEP per loop, for `steps` loops."""
    loops = iter(range(steps + 1))

    def done() -> bool:
        if next(loops) == steps:
            return True
        clock[0] += STEP
        return False

    worker.run_until(done, idle_s=0)


@pytest.fixture
def jobs(settings: Settings) -> SQLiteJobStore:
    return SQLiteJobStore(settings.data_dir / "jobs.sqlite3")


def test_sweeps_on_start_and_every_interval(
    settings: Settings, jobs: SQLiteJobStore, ring: KeyRing
) -> None:
    store = SweptStore(settings.data_dir / "objects")
    clock = [T0]
    worker = IngestWorker(settings, store, jobs, ring, clock=lambda: clock[0])
    run_for(worker, clock, steps=7)  # 7 loops of 20 min: sweeps at 0:20, 1:20 and 2:20
    assert UPLOAD_SWEEP_INTERVAL == 3 * STEP
    assert store.sweeps == [ABANDONED_UPLOAD_AGE] * 3


def test_a_failed_sweep_is_logged_and_work_goes_on(
    settings: Settings, jobs: SQLiteJobStore, ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    store = SweptStore(settings.data_dir / "objects", down=True)
    clock = [T0]
    worker = IngestWorker(settings, store, jobs, ring, clock=lambda: clock[0])
    with caplog.at_level(logging.WARNING, "transcoder.worker"):
        run_for(worker, clock, steps=4)
    assert len(store.sweeps) == 2
    assert "could not sweep abandoned uploads: cannot list multipart uploads" in caplog.text


def test_a_store_without_uploads_is_not_swept(
    settings: Settings, jobs: SQLiteJobStore, ring: KeyRing
) -> None:
    worker = IngestWorker(settings, LocalObjectStore(settings.data_dir / "objects"), jobs, ring)
    assert worker.sweep_abandoned_uploads() == 0
