"""The ingest worker: claims jobs, keeps their lease alive, runs the pipeline, records outcomes.

Any number of workers (threads, processes, machines) can share one job store: a claim is a
lease, renewed every third of its length while the job runs. A worker that dies stops renewing
and the job passes to another worker once the lease lapses; a worker whose job hit a retryable
failure cuts its lease to a short pause, so the job is claimed again soon. Only the lease
holder may finish a job, and publishing makes a version visible in one final write, so a job
publishes once.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from drm import KeyRing
from streamer.errors import StorageError
from streamer.jobs.port import DEFAULT_LEASE_S, Job, JobStore
from streamer.objects.port import ABANDONED_UPLOAD_AGE, IncompleteUploads, ObjectStore
from streamer.settings import Settings
from transcoder.ad_ingest import ingest_ad
from transcoder.errors import IngestError, LeaseLost
from transcoder.pipeline import ingest_master

log = logging.getLogger(__name__)

DOWNLOAD_CHUNK_BYTES = 8 * 1024 * 1024
# A retryable failure (the object store or job store unreachable) hands the job back after
# this pause rather than a whole lease: long enough for a store to fail over.
RETRY_AFTER_S = 5.0
# Workers upload the masters and renditions, so they also abort uploads a crash abandoned (S3
# keeps and bills their parts forever). Hourly is plenty: abandoned uploads are a day old.
UPLOAD_SWEEP_INTERVAL = timedelta(hours=1)

JobProgress = Callable[[Job, str, float, float | None], None]


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def download(store: ObjectStore, key: str, path: Path) -> None:
    """Copy an object to a file in chunks; masters can be gigabytes."""
    size = store.stat(key).size
    with path.open("wb") as handle:
        for start in range(0, size, DOWNLOAD_CHUNK_BYTES):
            handle.write(store.get_range(key, start, DOWNLOAD_CHUNK_BYTES))


@dataclass
class _Lease:
    """Progress shared between the pipeline and the heartbeat thread."""

    stage: str = "claimed"
    percent: float = 0.0
    speed: float | None = None
    lost: bool = False
    stop: threading.Event = field(default_factory=threading.Event)


class IngestWorker:
    def __init__(
        self,
        settings: Settings,
        store: ObjectStore,
        jobs: JobStore,
        ring: KeyRing,
        *,
        worker_id: str | None = None,
        lease_s: float = DEFAULT_LEASE_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_progress: JobProgress | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.jobs = jobs
        self.ring = ring
        self.worker_id = worker_id or new_worker_id()
        self.lease_s = lease_s
        self.clock = clock
        self.on_progress = on_progress

    def run_one(self) -> Job | None:
        """Claim one job and carry it to an outcome; None when the queue is empty."""
        job = self.jobs.claim(self.worker_id, self.clock(), self.lease_s)
        if job is None:
            return None
        log.info("worker %s claimed job %s (attempt %d)", self.worker_id, job.job_id, job.attempts)
        lease = _Lease()
        heartbeat = threading.Thread(target=self._heartbeat, args=(job, lease), daemon=True)
        heartbeat.start()
        try:
            result = self._process(job, lease)
        except Exception as exc:
            if not isinstance(exc, IngestError | StorageError):
                log.exception("job %s failed unexpectedly", job.job_id)
            lease.stop.set()
            heartbeat.join()  # no renewal may land after the outcome is recorded
            self._record_failure(job, lease, exc)
        else:
            lease.stop.set()
            heartbeat.join()
            if not self.jobs.finish(job.job_id, self.worker_id, self.clock(), version=result):
                log.warning("job %s published but its lease had passed on", job.job_id)
        finally:
            lease.stop.set()
            heartbeat.join()
            shutil.rmtree(self._work_dir(job), ignore_errors=True)
        return self.jobs.get(job.job_id)

    def run_until(self, done: Callable[[], bool], idle_s: float = 0.5) -> None:
        """Work until `done()` is true, waiting `idle_s` between empty polls.

        Abandoned uploads are swept on start and then every UPLOAD_SWEEP_INTERVAL.
        """
        idle = threading.Event()
        next_sweep = self.clock()
        while not done():
            if self.clock() >= next_sweep:
                self.sweep_abandoned_uploads()
                next_sweep = self.clock() + UPLOAD_SWEEP_INTERVAL
            if self.run_one() is None:
                idle.wait(idle_s)

    def sweep_abandoned_uploads(self, older_than: timedelta = ABANDONED_UPLOAD_AGE) -> int:
        """Abort uploads abandoned in the store; how many. A failure is logged, not raised."""
        if not isinstance(self.store, IncompleteUploads):
            return 0
        try:
            aborted = self.store.cleanup_incomplete_uploads(older_than)
        except StorageError as exc:
            log.warning("worker %s could not sweep abandoned uploads: %s", self.worker_id, exc)
            return 0
        if aborted:
            log.info("worker %s aborted %d abandoned uploads", self.worker_id, aborted)
        return aborted

    def _work_dir(self, job: Job) -> Path:
        return self.settings.data_dir / "work" / job.job_id

    def _process(self, job: Job, lease: _Lease) -> str:
        """Ingest the job's master; the version published."""
        work = self._work_dir(job)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        suffix = Path(job.spec.filename).suffix.lower()[:8]
        master = work / f"master{suffix}"
        lease.stage = "downloading"
        download(self.store, job.spec.master_key, master)

        def progress(stage: str, percent: float, speed: float | None) -> None:
            if lease.lost:
                raise LeaseLost(f"job {job.job_id} was taken over by another worker")
            lease.stage, lease.percent, lease.speed = stage, percent, speed
            if self.on_progress is not None:
                self.on_progress(job, stage, percent, speed)

        if job.spec.kind == "ad":
            lease.stage = "encoding"
            return ingest_ad(
                master,
                ad_id=job.spec.track_id,
                metadata=job.spec.metadata,
                settings=self.settings,
                store=self.store,
                work_dir=work / "out",
                master_sha256=job.spec.master_sha256,
                display_name=job.spec.filename,
                now=self.clock,
            ).creative.version
        return ingest_master(
            master,
            track_id=job.spec.track_id,
            metadata=job.spec.metadata,
            settings=self.settings,
            store=self.store,
            ring=self.ring,
            work_dir=work / "out",
            master_sha256=job.spec.master_sha256,
            display_name=job.spec.filename,
            on_progress=progress,
            now=self.clock,
        ).record.version

    def _heartbeat(self, job: Job, lease: _Lease) -> None:
        while not lease.stop.wait(self.lease_s / 3):
            alive = self.jobs.heartbeat(
                job.job_id, self.worker_id, self.clock(), self.lease_s, lease.percent, lease.speed
            )
            if not alive:
                lease.lost = True
                return

    def _hand_back(self, job: Job, lease: _Lease, exc: Exception) -> None:
        """Cut the lease to RETRY_AFTER_S: any worker (this one too) claims the job again after
        that pause, instead of after the rest of a lease nobody renews. The claim counts the
        attempt, and the store fails the job after its maximum. If the store cannot be reached
        either, the lease simply lapses."""
        pause_s = min(RETRY_AFTER_S, self.lease_s)
        log.warning("job %s will be retried in %.0f s: %s", job.job_id, pause_s, exc)
        try:
            self.jobs.heartbeat(
                job.job_id, self.worker_id, self.clock(), pause_s, lease.percent, lease.speed
            )
        except StorageError as store_exc:
            log.warning("job %s: %s; it is retried when its lease lapses", job.job_id, store_exc)

    def _record_failure(self, job: Job, lease: _Lease, exc: Exception) -> None:
        lease.stop.set()
        if isinstance(exc, LeaseLost):
            return
        retryable = isinstance(exc, StorageError) or getattr(exc, "retryable", False)
        if retryable:
            self._hand_back(job, lease, exc)
            return
        code = getattr(exc, "code", "internal_error")
        message = str(exc) if isinstance(exc, IngestError) else f"internal error: {exc!r}"
        self.jobs.finish(
            job.job_id, self.worker_id, self.clock(), error_code=code, error_message=message
        )
