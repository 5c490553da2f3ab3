"""ScyllaJobStore: the ingest job queue in ScyllaDB (any CQL store), for many hosts of workers.

The tables are described in `streamer.cql.schema` (migration 1). `jobs` holds the truth; every
change to a job after its insert is a conditional update (LWT, Paxos at LOCAL_SERIAL) that
compares the values the change depends on, so of two workers racing for a job exactly one
wins, and a worker that lost its lease can neither renew it nor finish the job. The insert is
conditional too (`IF NOT EXISTS`), so all writes to a job row are ordered by Paxos ballots and
never by the clocks of the hosts that sent them.

`job_queue` indexes the unfinished jobs oldest first. A claim reads the heads of its shards,
merges them in (created, seq, job id) order, reads the jobs they point to, and tries them in
order: the oldest queued job, else the oldest running job whose lease lapsed. The index is a
hint: a claim skips rows whose job is not there (an enqueue in flight) and deletes rows of
finished jobs (a finisher that died before it removed its row).

After a claim, the index row records the lease it granted (`lease_floor_us`); later claims
pass the job by without reading it until then. Heartbeats only lengthen leases as workers use
them (the same lease_s from a later instant); a heartbeat that shortened one would delay a
takeover until the claimed lease ends, which is the only way this store's behaviour can differ
from the SQLite store's.

`seq` breaks ties between jobs created at the same instant, as SQLite's row id does: it is
the wall clock in nanoseconds, strictly increasing within a process.

A conditional write that times out may or may not have applied (the error says so). For a
claim, that leaves at worst a job leased to a worker that does not know it: the lease lapses
and another worker takes the job, counting one more attempt.

One module on purpose (about 470 lines): the claim, renew and finish protocol is one set of
invariants over two tables, easier to check read together than split.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from threading import Lock
from typing import Any

from streamer.cql.connection import Cql, CqlSession
from streamer.cql.schema import QUEUE_SHARDS, open_migrated_session
from streamer.errors import JobNotFound, StorageError
from streamer.jobs.port import (
    DEFAULT_MAX_ATTEMPTS,
    IngestSpec,
    InstantColumns,
    Job,
    check_outcome,
    check_progress,
    encode_spec,
    job_from_row,
    lease_length,
    require_aware,
)
from streamer.settings import Settings

_log = logging.getLogger(__name__)

CLAIM_READ_AHEAD = 32  # jobs read at once while a claim walks the queue; running ones come first
QUEUE_PAGE_ROWS = 256  # index rows fetched per page and shard

_ID_TRIES = 3  # IF NOT EXISTS refuses a uuid4 that exists: practically never, surely not thrice
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FINISHED = ("published", "failed")
_JOB_COLUMNS = (
    "job_id, spec, state, created_us, seq, updated_us, attempts, worker_id, lease_until_us,"
    " progress_percent, speed_x_realtime, version, error_code, error_message"
)

_INSERT_JOB = Cql(
    "INSERT INTO jobs (job_id, spec, state, created_us, seq, updated_us, attempts,"
    " progress_percent) VALUES (?, ?, 'queued', ?, ?, ?, 0, 0) IF NOT EXISTS",
    idempotent=False,
)
_INDEX_QUEUE = Cql(
    "INSERT INTO job_queue (shard, created_us, seq, job_id) VALUES (?, ?, ?, ?)",
    idempotent=True,
)
_INDEX_DAY = Cql(
    "INSERT INTO jobs_by_day (day, created_us, seq, job_id) VALUES (?, ?, ?, ?)",
    idempotent=True,
)
_INDEX_DAYS = Cql("INSERT INTO job_days (scope, day) VALUES ('jobs', ?)", idempotent=True)
_GET_JOB = Cql(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE job_id = ?", idempotent=True)
_READ_QUEUE = Cql(
    "SELECT shard, created_us, seq, job_id, lease_floor_us FROM job_queue WHERE shard = ?",
    idempotent=True,
)
_NOTE_LEASE = Cql(
    "UPDATE job_queue SET lease_floor_us = ?"
    " WHERE shard = ? AND created_us = ? AND seq = ? AND job_id = ?",
    idempotent=True,
)
_UNINDEX_QUEUE = Cql(
    "DELETE FROM job_queue WHERE shard = ? AND created_us = ? AND seq = ? AND job_id = ?",
    idempotent=True,
)
_READ_DAYS = Cql("SELECT day FROM job_days WHERE scope = 'jobs'", idempotent=True)
_READ_DAY = Cql("SELECT job_id FROM jobs_by_day WHERE day = ? LIMIT ?", idempotent=True)
_TAKE_QUEUED = Cql(
    "UPDATE jobs SET state = 'running', worker_id = ?, lease_until_us = ?, attempts = ?,"
    " progress_percent = 0, speed_x_realtime = null, updated_us = ?"
    " WHERE job_id = ? IF state = 'queued' AND attempts = ?",
    idempotent=False,
)
_TAKE_LAPSED = Cql(
    "UPDATE jobs SET state = 'running', worker_id = ?, lease_until_us = ?, attempts = ?,"
    " progress_percent = 0, speed_x_realtime = null, updated_us = ?"
    " WHERE job_id = ? IF state = 'running' AND attempts = ? AND lease_until_us < ?",
    idempotent=False,
)
_FAIL_LOST = Cql(
    "UPDATE jobs SET state = 'failed', lease_until_us = null, updated_us = ?,"
    " error_code = 'worker_lost', error_message = ?"
    " WHERE job_id = ? IF state = 'running' AND attempts = ? AND worker_id = ?"
    " AND lease_until_us < ?",
    idempotent=False,
)
_HEARTBEAT = Cql(
    "UPDATE jobs SET lease_until_us = ?, progress_percent = ?, speed_x_realtime = ?,"
    " updated_us = ? WHERE job_id = ? IF state = 'running' AND worker_id = ?",
    idempotent=False,
)
_FINISH_PUBLISHED = Cql(
    "UPDATE jobs SET state = 'published', version = ?, error_code = ?, error_message = ?,"
    " progress_percent = 100, lease_until_us = null, updated_us = ?"
    " WHERE job_id = ? IF state = 'running' AND worker_id = ?",
    idempotent=False,
)
_FINISH_FAILED = Cql(
    "UPDATE jobs SET state = 'failed', version = ?, error_code = ?, error_message = ?,"
    " lease_until_us = null, updated_us = ?"
    " WHERE job_id = ? IF state = 'running' AND worker_id = ?",
    idempotent=False,
)


class ScyllaJobStore:
    """The JobStore in a CQL keyspace shared by every submitter and worker, on any host."""

    def __init__(self, session: CqlSession, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        if session.keyspace is None:
            raise ValueError(f"{session!r} has no keyspace; open it with use_keyspace=True")
        self.session = session
        self.max_attempts = max_attempts

    @classmethod
    def from_settings(
        cls, settings: Settings, max_attempts: int = DEFAULT_MAX_ATTEMPTS
    ) -> ScyllaJobStore:
        """Connect; ConfigError saying to run `streamer db migrate` if the schema is behind."""
        return cls(open_migrated_session(settings), max_attempts)

    def __repr__(self) -> str:
        return f"ScyllaJobStore({self.session!r})"

    def close(self) -> None:
        self.session.close()

    def enqueue(self, spec: IngestSpec, now: datetime) -> Job:
        created_us = _to_us(now, "now")
        spec_text = encode_spec(spec)
        action = f"enqueue a job for track {spec.track_id}"
        for _ in range(_ID_TRIES):
            job_id, seq = uuid.uuid4().hex, _SEQUENCE.next()
            inserted, _ = self.session.execute(
                _INSERT_JOB, (job_id, spec_text, created_us, seq, created_us), action=action
            ).conditional()
            if inserted:
                break
        else:
            raise StorageError(f"cannot {action}: {_ID_TRIES} new job ids were all taken")
        day = _day(created_us)
        self.session.execute_batch(
            [
                (_INDEX_QUEUE, (_shard(job_id), created_us, seq, job_id)),
                (_INDEX_DAY, (day, created_us, seq, job_id)),
                (_INDEX_DAYS, (day,)),
            ],
            action=action,
        )
        return Job(
            job_id=job_id,
            spec=spec,
            state="queued",
            created_at=_from_us(created_us),
            updated_at=_from_us(created_us),
        )

    def get(self, job_id: str) -> Job:
        return job_from_row(self._read(job_id), _INSTANTS)

    def list_jobs(self, limit: int = 100) -> list[Job]:
        if limit < 0:
            raise ValueError(f"limit must be at least 0, got {limit}")
        if limit == 0:
            return []
        job_ids: list[str] = []
        for day_row in self.session.execute(_READ_DAYS, action="list the days with jobs"):
            newest = self.session.execute(
                _READ_DAY, (day_row["day"], limit - len(job_ids)), action="list jobs"
            )
            job_ids.extend(row["job_id"] for row in newest)
            if len(job_ids) >= limit:
                break
        futures = [
            self.session.execute_async(_GET_JOB, (job_id,), action=f"read job {job_id}")
            for job_id in job_ids
        ]
        jobs = [future.result().one() for future in futures]
        return [job_from_row(row, _INSTANTS) for row in jobs if row is not None]

    def claim(self, worker_id: str, now: datetime, lease_s: float) -> Job | None:
        now_us = _to_us(now, "now")
        lease_until_us = _to_us(now + lease_length(lease_s), "now")
        action = f"claim a job for worker {worker_id}"
        lapsed: list[dict[str, Any]] = []
        for entry, row in self._unfinished(now_us, action):
            if row is None:
                continue  # its enqueue is still in flight, or never completed
            if row["state"] in _FINISHED:
                self._unindex(entry, action)
            elif row["state"] == "queued":
                job = self._take(row, worker_id, now_us, lease_until_us, action)
                if job is not None:
                    return job
            elif row["lease_until_us"] is not None and row["lease_until_us"] < now_us:
                lapsed.append(row)
        for row in lapsed:  # no job is queued: take over the oldest lapsed lease
            if row["attempts"] >= self.max_attempts:
                self._fail_lost(row, now_us, action)
                continue
            job = self._take(row, worker_id, now_us, lease_until_us, action)
            if job is not None:
                return job
        return None

    def heartbeat(
        self,
        job_id: str,
        worker_id: str,
        now: datetime,
        lease_s: float,
        progress_percent: float,
        speed_x_realtime: float | None,
    ) -> bool:
        check_progress(job_id, progress_percent)
        lease_until_us = _to_us(now + lease_length(lease_s), "now")
        renewed, current = self.session.execute(
            _HEARTBEAT,
            (
                lease_until_us,
                progress_percent,
                speed_x_realtime,
                _to_us(now, "now"),
                job_id,
                worker_id,
            ),
            action=f"renew the lease of job {job_id}",
        ).conditional()
        if not renewed and current.get("state") is None:
            raise JobNotFound(job_id)  # every stored job has a state
        return renewed

    def finish(
        self,
        job_id: str,
        worker_id: str,
        now: datetime,
        *,
        version: str | None = None,
        error_code: str | None = None,
        error_message: str | None = None,
    ) -> bool:
        check_outcome(job_id, version, error_code)
        statement = _FINISH_PUBLISHED if version is not None else _FINISH_FAILED
        action = f"finish job {job_id}"
        finished, current = self.session.execute(
            statement,
            (version, error_code, error_message, _to_us(now, "now"), job_id, worker_id),
            action=action,
        ).conditional()
        if not finished:
            if current.get("state") is None:
                raise JobNotFound(job_id)
            return False
        try:
            row = self._read(job_id)
        except StorageError as exc:
            _log.warning(
                "job %s finished; its queue entry stays for a claim to remove: %s", job_id, exc
            )
        else:
            self._unindex(row, action)
        return True

    def _read(self, job_id: str) -> dict[str, Any]:
        row = self.session.execute(_GET_JOB, (job_id,), action=f"read job {job_id}").one()
        if row is None:
            raise JobNotFound(job_id)
        return row

    def _unfinished(
        self, now_us: int, action: str
    ) -> Iterator[tuple[dict[str, Any], dict[str, Any] | None]]:
        """Index rows of jobs that may be free, oldest first, with their job (None if absent).

        A row whose lease floor is not past is running for sure, and is passed by unread.
        """
        heads = [
            self.session.execute_async(
                _READ_QUEUE, (shard,), action=action, fetch_size=QUEUE_PAGE_ROWS
            )
            for shard in range(QUEUE_SHARDS)
        ]
        merged = heapq.merge(
            *(future.result() for future in heads),
            key=lambda entry: (entry["created_us"], entry["seq"], entry["job_id"]),
        )
        maybe_free = (
            entry
            for entry in merged
            if entry["lease_floor_us"] is None or entry["lease_floor_us"] < now_us
        )
        while chunk := list(itertools.islice(maybe_free, CLAIM_READ_AHEAD)):
            reads = [
                self.session.execute_async(_GET_JOB, (entry["job_id"],), action=action)
                for entry in chunk
            ]
            for entry, read in zip(chunk, reads, strict=True):
                yield entry, read.result().one()

    def _take(
        self,
        row: dict[str, Any],
        worker_id: str,
        now_us: int,
        lease_until_us: int,
        action: str,
    ) -> Job | None:
        """Lease the job `row` shows, if it is still as the row shows; None if another won."""
        attempts = row["attempts"] + 1
        params = [worker_id, lease_until_us, attempts, now_us, row["job_id"], row["attempts"]]
        if row["state"] == "queued":
            statement = _TAKE_QUEUED
        else:
            statement, params = _TAKE_LAPSED, [*params, now_us]
        taken, _ = self.session.execute(statement, params, action=action).conditional()
        if not taken:
            return None
        self._note_lease(row, lease_until_us, action)
        return job_from_row(
            {
                **row,
                "state": "running",
                "worker_id": worker_id,
                "lease_until_us": lease_until_us,
                "attempts": attempts,
                "progress_percent": 0.0,
                "speed_x_realtime": None,
                "updated_us": now_us,
            },
            _INSTANTS,
        )

    def _fail_lost(self, row: dict[str, Any], now_us: int, action: str) -> None:
        message = (
            f"{row['attempts']} workers took job {row['job_id']} and stopped renewing its lease"
            f" (the last was {row['worker_id']}); not retried beyond {self.max_attempts} attempts"
        )
        failed, _ = self.session.execute(
            _FAIL_LOST,
            (now_us, message, row["job_id"], row["attempts"], row["worker_id"], now_us),
            action=action,
        ).conditional()
        if failed:
            self._unindex(row, action)

    def _note_lease(self, row: dict[str, Any], lease_until_us: int, action: str) -> None:
        """Tell later claims that this job is surely running until `lease_until_us`.

        Only a hint: a heartbeat with a shorter lease can end the lease before the floor,
        which delays a takeover by at most this lease, and never allows a double claim.
        """
        try:
            self.session.execute(
                _NOTE_LEASE,
                (
                    lease_until_us,
                    _shard(row["job_id"]),
                    row["created_us"],
                    row["seq"],
                    row["job_id"],
                ),
                action=action,
            )
        except StorageError as exc:
            _log.warning("job %s is claimed; later claims will read it: %s", row["job_id"], exc)

    def _unindex(self, row: dict[str, Any], action: str) -> None:
        """Remove a finished job from the queue index; if that fails, a later claim will."""
        try:
            self.session.execute(
                _UNINDEX_QUEUE,
                (_shard(row["job_id"]), row["created_us"], row["seq"], row["job_id"]),
                action=action,
            )
        except StorageError as exc:
            _log.warning("finished job %s stays in the queue index for now: %s", row["job_id"], exc)


class _Sequence:
    """Insertion order: the wall clock in nanoseconds, strictly increasing in this process."""

    def __init__(self) -> None:
        self._last = 0
        self._lock = Lock()

    def next(self) -> int:
        with self._lock:
            self._last = max(self._last + 1, time.time_ns())
            return self._last


_SEQUENCE = _Sequence()


def _shard(job_id: str) -> int:
    return int(job_id[:8], 16) % QUEUE_SHARDS


def _day(moment_us: int) -> date:
    return _from_us(moment_us).date()


def _to_us(moment: datetime, name: str) -> int:
    """Microseconds since the epoch: exact, unlike CQL timestamps, which keep milliseconds."""
    require_aware(moment, name)
    return (moment - _EPOCH) // _MICROSECOND


def _from_us(moment_us: int) -> datetime:
    return _EPOCH + moment_us * _MICROSECOND


_INSTANTS = InstantColumns("created_us", "updated_us", "lease_until_us", decode=_from_us)
