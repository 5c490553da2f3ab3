"""What only the SQLite job store promises: several processes share one file safely."""

from __future__ import annotations

import multiprocessing
import sqlite3
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import pytest

from streamer.errors import StorageError
from streamer.jobs.sqlite import SCHEMA_VERSION, SQLiteJobStore

from .test_job_store_contract import LEASE_S, at, spec

JOBS = 120


def claim_until_empty(
    path: str, worker_id: str, start: Barrier, results: Queue[tuple[str, list[str]]]
) -> None:
    """Runs in a child process: claim jobs until none is left and report their ids."""
    store = SQLiteJobStore(Path(path))
    start.wait(timeout=30)
    claimed = []
    while (job := store.claim(worker_id, at(100), LEASE_S)) is not None:
        claimed.append(job.job_id)
    results.put((worker_id, claimed))


@pytest.mark.slow
def test_two_processes_never_claim_the_same_job(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    store = SQLiteJobStore(path)
    jobs = {store.enqueue(spec(f"t{index}"), at(index % 7)).job_id for index in range(JOBS)}
    context = multiprocessing.get_context("spawn")  # no fork of a threaded test runner
    start = context.Barrier(2)
    results: Queue[tuple[str, list[str]]] = context.Queue()
    workers = [
        context.Process(target=claim_until_empty, args=(str(path), name, start, results))
        for name in ("worker-a", "worker-b")
    ]
    for worker in workers:
        worker.start()
    reports = dict(results.get(timeout=60) for _ in workers)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    claimed = reports["worker-a"] + reports["worker-b"]
    assert sorted(claimed) == sorted(jobs)  # every job once, none twice
    assert {store.get(job_id).attempts for job_id in jobs} == {1}
    assert {store.get(job_id).worker_id for job_id in reports["worker-a"]} <= {"worker-a"}


def test_jobs_survive_reopening(tmp_path: Path) -> None:
    job = SQLiteJobStore(tmp_path / "jobs.sqlite3").enqueue(spec(), at(0))
    assert SQLiteJobStore(tmp_path / "jobs.sqlite3").get(job.job_id) == job


def test_the_database_runs_in_wal_mode(tmp_path: Path) -> None:
    SQLiteJobStore(tmp_path / "jobs.sqlite3")
    with sqlite3.connect(tmp_path / "jobs.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_creates_its_directory(tmp_path: Path) -> None:
    SQLiteJobStore(tmp_path / "data" / "deeper" / "jobs.sqlite3").enqueue(spec(), at(0))


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    path.write_bytes(b"this is not a database, it is a text file " * 100)
    with pytest.raises(StorageError, match=r"jobs\.sqlite3"):
        SQLiteJobStore(path)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "jobs.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StorageError, match="schema version 2"):
        SQLiteJobStore(path)


def test_max_attempts_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        SQLiteJobStore(tmp_path / "jobs.sqlite3", max_attempts=0)


def test_metadata_that_is_not_json_is_refused(tmp_path: Path) -> None:
    store = SQLiteJobStore(tmp_path / "jobs.sqlite3")
    with pytest.raises(ValueError, match="metadata of track t1"):
        store.enqueue(spec("t1", cover=b"\x89PNG"), at(0))
    assert store.list_jobs() == []
