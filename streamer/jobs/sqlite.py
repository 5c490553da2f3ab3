"""SQLiteJobStore: the ingest job queue in one SQLite file, the embedded default.

Safe across threads and processes: every call opens its own connection; the database runs in
WAL mode so readers never wait for the writer; `claim` takes the write lock before it reads
(BEGIN IMMEDIATE), so two workers can never both see a job as free and both take it.
Datetimes are stored as fixed-width ISO 8601 UTC text, which sorts and compares as time does.
"""

from __future__ import annotations

import sqlite3
import uuid
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from streamer.errors import JobNotFound
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
from streamer.sqlite_files import connection, create_schema, immediate

SCHEMA_VERSION = 1  # PRAGMA user_version; bump with a migration when the table changes
BUSY_TIMEOUT_S = 10.0  # a claim holds the write lock for milliseconds; ten seconds means trouble

_SCHEMA = (
    """
    CREATE TABLE IF NOT EXISTS jobs (
        seq INTEGER PRIMARY KEY,  -- insertion order: breaks ties between equal created_at
        job_id TEXT NOT NULL UNIQUE,
        spec TEXT NOT NULL,  -- IngestSpec as JSON
        state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'published', 'failed')),
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_until TEXT,
        progress_percent REAL NOT NULL DEFAULT 0,
        speed_x_realtime REAL,
        version TEXT,
        error_code TEXT,
        error_message TEXT
    )
    """,
    "CREATE INDEX IF NOT EXISTS jobs_by_state ON jobs (state, created_at, seq)",
    "CREATE INDEX IF NOT EXISTS jobs_by_age ON jobs (created_at, seq)",
)


class SQLiteJobStore:
    """The JobStore in a SQLite file shared by the submitting CLI and every worker process."""

    def __init__(self, path: Path, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        self.path = Path(path)
        self.max_attempts = max_attempts
        create_schema(self.path, "job store", _SCHEMA, SCHEMA_VERSION, BUSY_TIMEOUT_S)

    def __repr__(self) -> str:
        return f"SQLiteJobStore({str(self.path)!r})"

    def enqueue(self, spec: IngestSpec, now: datetime) -> Job:
        job_id = uuid.uuid4().hex
        created = _to_text(now, "now")
        with self._connect("enqueue a job") as conn:
            conn.execute(
                "INSERT INTO jobs (job_id, spec, state, created_at, updated_at)"
                " VALUES (?, ?, 'queued', ?, ?)",
                (job_id, encode_spec(spec), created, created),
            )
            return _fetch(conn, job_id)

    def get(self, job_id: str) -> Job:
        with self._connect(f"read job {job_id}") as conn:
            return _fetch(conn, job_id)

    def list_jobs(self, limit: int = 100) -> list[Job]:
        if limit < 0:
            raise ValueError(f"limit must be at least 0, got {limit}")
        with self._connect("list jobs") as conn:
            rows = conn.execute(
                "SELECT * FROM jobs ORDER BY created_at DESC, seq DESC LIMIT ?", (limit,)
            ).fetchall()
        return [job_from_row(row, _INSTANTS) for row in rows]

    def claim(self, worker_id: str, now: datetime, lease_s: float) -> Job | None:
        now_text = _to_text(now, "now")
        lease_until = _to_text(now + lease_length(lease_s), "now")
        with self._connect(f"claim a job for worker {worker_id}") as conn, immediate(conn):
            while True:
                row = conn.execute(
                    "SELECT * FROM jobs WHERE state = 'queued' ORDER BY created_at, seq LIMIT 1"
                ).fetchone()
                if row is None:
                    row = conn.execute(
                        "SELECT * FROM jobs WHERE state = 'running' AND lease_until < ?"
                        " ORDER BY created_at, seq LIMIT 1",
                        (now_text,),
                    ).fetchone()
                if row is None:
                    return None
                if row["attempts"] >= self.max_attempts:
                    conn.execute(
                        "UPDATE jobs SET state = 'failed', lease_until = NULL, updated_at = ?,"
                        " error_code = 'worker_lost', error_message = ? WHERE seq = ?",
                        (now_text, self._lost_message(row), row["seq"]),
                    )
                    continue
                conn.execute(
                    "UPDATE jobs SET state = 'running', worker_id = ?, lease_until = ?,"
                    " attempts = attempts + 1, progress_percent = 0, speed_x_realtime = NULL,"
                    " updated_at = ? WHERE seq = ?",
                    (worker_id, lease_until, now_text, row["seq"]),
                )
                return _fetch(conn, row["job_id"])

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
        lease_until = _to_text(now + lease_length(lease_s), "now")
        with self._connect(f"renew the lease of job {job_id}") as conn:
            renewed = conn.execute(
                "UPDATE jobs SET lease_until = ?, progress_percent = ?, speed_x_realtime = ?,"
                " updated_at = ? WHERE job_id = ? AND worker_id = ? AND state = 'running'",
                (
                    lease_until,
                    progress_percent,
                    speed_x_realtime,
                    _to_text(now, "now"),
                    job_id,
                    worker_id,
                ),
            ).rowcount
            if not renewed:
                _fetch(conn, job_id)  # JobNotFound, or the job is another worker's now
            return bool(renewed)

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
        state, progress = ("published", 100.0) if version is not None else ("failed", None)
        with self._connect(f"finish job {job_id}") as conn:
            finished = conn.execute(
                "UPDATE jobs SET state = ?, version = ?, error_code = ?, error_message = ?,"
                " progress_percent = COALESCE(?, progress_percent), lease_until = NULL,"
                " updated_at = ? WHERE job_id = ? AND worker_id = ? AND state = 'running'",
                (
                    state,
                    version,
                    error_code,
                    error_message,
                    progress,
                    _to_text(now, "now"),
                    job_id,
                    worker_id,
                ),
            ).rowcount
            if not finished:
                _fetch(conn, job_id)
            return bool(finished)

    def _lost_message(self, row: sqlite3.Row) -> str:
        return (
            f"{row['attempts']} workers took job {row['job_id']} and stopped renewing its lease"
            f" (the last was {row['worker_id']}); not retried beyond {self.max_attempts} attempts"
        )

    def _connect(self, action: str) -> AbstractContextManager[sqlite3.Connection]:
        return connection(self.path, "job store", action, BUSY_TIMEOUT_S)


def _fetch(conn: sqlite3.Connection, job_id: str) -> Job:
    row = conn.execute("SELECT * FROM jobs WHERE job_id = ?", (job_id,)).fetchone()
    if row is None:
        raise JobNotFound(job_id)
    return job_from_row(row, _INSTANTS)


def _to_text(moment: datetime, name: str) -> str:
    """Fixed-width UTC text, so that SQL compares instants by comparing strings."""
    require_aware(moment, name)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_text(text: str) -> datetime:
    return datetime.fromisoformat(text)


_INSTANTS = InstantColumns("created_at", "updated_at", "lease_until", decode=_from_text)
