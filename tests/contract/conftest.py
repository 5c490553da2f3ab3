"""Implementations under contract: add a backend by adding one line to a table below."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from streamer.jobs import DEFAULT_MAX_ATTEMPTS, JobStore
from streamer.local_object_store import LocalObjectStore
from streamer.memory_object_store import InMemoryObjectStore
from streamer.object_store import ObjectStore
from streamer.sqlite_job_store import SQLiteJobStore

# name -> open a fresh, empty store inside the test's directory
OBJECT_STORES: dict[str, Callable[[Path], ObjectStore]] = {
    "memory": lambda tmp: InMemoryObjectStore(),
    "local": lambda tmp: LocalObjectStore(tmp / "objects"),
}

# name -> open a fresh, empty store inside the test's directory, failing jobs after n attempts
JOB_STORES: dict[str, Callable[[Path, int], JobStore]] = {
    "sqlite": lambda tmp, max_attempts: SQLiteJobStore(tmp / "jobs.sqlite3", max_attempts),
}

MakeJobStore = Callable[..., JobStore]


@pytest.fixture(params=sorted(OBJECT_STORES))
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> ObjectStore:
    return OBJECT_STORES[request.param](tmp_path)


@pytest.fixture(params=sorted(JOB_STORES))
def make_job_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeJobStore:
    """Opens the parametrised job store; `max_attempts` as the keyword says."""

    def make(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> JobStore:
        return JOB_STORES[request.param](tmp_path, max_attempts)

    return make


@pytest.fixture
def job_store(make_job_store: MakeJobStore) -> JobStore:
    return make_job_store()
