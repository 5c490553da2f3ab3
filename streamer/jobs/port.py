"""Ingest jobs: queued, running (with a lease and progress), published or failed.

A job is claimed with a lease that its worker renews while it works. A worker that dies stops
renewing; once the lease lapses another worker claims the job again (`attempts` counts the
claims). A job publishes at most once: `finish_published` only succeeds for the lease holder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

from streamer.errors import StorageError

JobState = Literal["queued", "running", "published", "failed"]

JOB_STORE_FILE = "jobs.sqlite3"  # under settings.data_dir
DEFAULT_LEASE_S = 60.0  # a worker renews every lease/3; a dead worker's job is retried after this
DEFAULT_MAX_ATTEMPTS = 3  # a master that crashes three workers is failed, not retried forever


IngestKind = Literal["track", "ad"]
INGEST_KINDS: tuple[IngestKind, ...] = ("track", "ad")


@dataclass(frozen=True)
class IngestSpec:
    """What to ingest: a master already in the object store, and where to publish it."""

    master_key: str  # object key of the master bytes, e.g. "masters/<sha256>"
    master_sha256: str
    filename: str  # original name, for messages and format hints
    track_id: str  # for kind "ad", the ad creative's id
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: IngestKind = "track"  # "ad": an ad creative (transcoder.ad_ingest), not a track


@dataclass(frozen=True)
class Job:
    job_id: str
    spec: IngestSpec
    state: JobState
    created_at: datetime
    updated_at: datetime
    attempts: int = 0
    worker_id: str | None = None
    lease_until: datetime | None = None
    progress_percent: float = 0.0
    speed_x_realtime: float | None = None
    version: str | None = None  # set when published
    error_code: str | None = None  # set when failed
    error_message: str | None = None


def encode_spec(spec: IngestSpec) -> str:
    """The spec as JSON text, as every job store keeps it."""
    try:
        return json.dumps(asdict(spec), sort_keys=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"metadata of track {spec.track_id} is not JSON: {exc}") from exc


def decode_spec(job_id: str, text: str) -> IngestSpec:
    try:
        fields: dict[str, Any] = json.loads(text)
        return IngestSpec(**fields)
    except (TypeError, ValueError) as exc:
        raise StorageError(f"job {job_id} has an unreadable spec: {exc}") from exc


class ColumnsByName(Protocol):
    """A store's row: a dict from the CQL driver, a sqlite3.Row from SQLite."""

    def __getitem__(self, column: str) -> Any: ...


# Columns both stores keep exactly as the Job field of the same name; each store names and
# encodes only the spec and the three instants its own way (text in SQLite, microseconds in CQL).
STORED_AS_IS = (
    "job_id",
    "state",
    "attempts",
    "worker_id",
    "progress_percent",
    "speed_x_realtime",
    "version",
    "error_code",
    "error_message",
)


@dataclass(frozen=True)
class InstantColumns:
    """How a store keeps a job's three instants: its column names and their decoder."""

    created_at: str
    updated_at: str
    lease_until: str
    decode: Callable[[Any], datetime]


def job_from_row(row: ColumnsByName, instants: InstantColumns) -> Job:
    """A Job from a store's row: the `STORED_AS_IS` columns, the spec, and decoded instants."""
    lease_until = row[instants.lease_until]
    return Job(
        spec=decode_spec(row["job_id"], row["spec"]),
        created_at=instants.decode(row[instants.created_at]),
        updated_at=instants.decode(row[instants.updated_at]),
        lease_until=None if lease_until is None else instants.decode(lease_until),
        **{name: row[name] for name in STORED_AS_IS},
    )


def require_aware(moment: datetime, name: str) -> datetime:
    """`moment`, if it carries a time zone: a naive one would be stored as some other instant."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {moment.isoformat()}")
    return moment


def check_progress(job_id: str, progress_percent: float) -> None:
    """A job's progress is a percentage."""
    if not 0.0 <= progress_percent <= 100.0:
        raise ValueError(f"progress of job {job_id} is {progress_percent}%, not 0 to 100")


def check_outcome(job_id: str, version: str | None, error_code: str | None) -> None:
    """A job finishes published (a version) or failed (an error code): exactly one of them."""
    if (version is None) == (error_code is None):
        raise ValueError(
            f"finishing job {job_id} needs either a version (published) or an error_code"
            f" (failed); got version={version!r}, error_code={error_code!r}"
        )


def lease_length(lease_s: float) -> timedelta:
    if not lease_s > 0:
        raise ValueError(f"lease must be positive, got {lease_s} s")
    return timedelta(seconds=lease_s)


class JobStore(Protocol):
    def enqueue(self, spec: IngestSpec, now: datetime) -> Job:
        """Add a queued job and return it."""
        ...

    def get(self, job_id: str) -> Job:
        """Raises JobNotFound."""
        ...

    def list_jobs(self, limit: int = 100) -> list[Job]:
        """The newest `limit` jobs, newest first."""
        ...

    def claim(self, worker_id: str, now: datetime, lease_s: float) -> Job | None:
        """Take the oldest queued job, or a running one whose lease lapsed; None if none."""
        ...

    def heartbeat(
        self,
        job_id: str,
        worker_id: str,
        now: datetime,
        lease_s: float,
        progress_percent: float,
        speed_x_realtime: float | None,
    ) -> bool:
        """Extend the lease and record progress; False if the lease was lost to another worker."""
        ...

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
        """Mark published (version) or failed (error); False if the lease was lost."""
        ...
