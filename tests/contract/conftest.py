"""Implementations under contract: add a backend by adding one line to a table below."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from streamer.jobs.port import DEFAULT_MAX_ATTEMPTS, JobStore
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.objects.memory import InMemoryObjectStore
from streamer.objects.port import ObjectStore
from tests.backends.cql_fixtures import drop_cql_test_keyspace, open_test_scylla_job_store
from tests.backends.services import backend_params, open_test_s3_store

# name -> open a fresh, empty store inside the test's directory; `cleanup` undoes the rest
OBJECT_STORES: dict[str, Callable[[Path, ExitStack], ObjectStore]] = {
    "memory": lambda tmp, cleanup: InMemoryObjectStore(),
    "local": lambda tmp, cleanup: LocalObjectStore(tmp / "objects"),
    "s3": open_test_s3_store,  # a fresh bucket on the server of `scripts/services up s3`
}

# name -> open a fresh, empty store inside the test's directory, failing jobs after n attempts
JOB_STORES: dict[str, Callable[[Path, int], JobStore]] = {
    "sqlite": lambda tmp, max_attempts: SQLiteJobStore(tmp / "jobs.sqlite3", max_attempts),
    "scylla": open_test_scylla_job_store,  # empty tables in a keyspace of this test session
}

MakeJobStore = Callable[..., JobStore]

__all__ = ["drop_cql_test_keyspace"]  # a session fixture: drops the scylla test keyspace


@pytest.fixture(params=backend_params(OBJECT_STORES))
def object_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    with ExitStack() as cleanup:
        yield OBJECT_STORES[request.param](tmp_path, cleanup)


@pytest.fixture(params=backend_params(JOB_STORES))
def make_job_store(request: pytest.FixtureRequest, tmp_path: Path) -> MakeJobStore:
    """Opens the parametrised job store; `max_attempts` as the keyword says."""

    def make(max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> JobStore:
        return JOB_STORES[request.param](tmp_path, max_attempts)

    return make


@pytest.fixture
def job_store(make_job_store: MakeJobStore) -> JobStore:
    return make_job_store()
