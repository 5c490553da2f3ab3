"""What only the CQL job store promises: processes with sessions of their own share one queue
safely, migrations run once however many migrators race, and driver errors arrive translated.

Runs against `scripts/services up cassandra`; the contract suite covers the JobStore semantics.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import re
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

import pytest

from streamer.backends import open_job_store
from streamer.cql.connection import Cql, CqlRows, CqlSession, open_cql_session
from streamer.cql.schema import (
    MIGRATIONS,
    STALE_MIGRATION_S,
    Migration,
    apply_migrations,
    migrate,
    require_current_schema,
)
from streamer.errors import ConfigError, StorageError
from streamer.jobs.scylla import ScyllaJobStore
from streamer.settings import Settings, load_settings
from tests.backends.cql_fixtures import (
    TestKeyspace,
    cql_settings,
    drop_cql_test_keyspace,
    drop_keyspace,
    new_keyspace_name,
    open_admin_session,
    shared_test_keyspace,
)
from tests.contract.test_job_store_contract import LEASE_S, at, spec

pytestmark = pytest.mark.services  # needs `scripts/services up`

__all__ = ["drop_cql_test_keyspace"]  # a session fixture: drops the test keyspace at the end

JOBS = 60
PROCESS_TIMEOUT_S = 90.0


@pytest.fixture
def keyspace() -> TestKeyspace:
    """This session's migrated keyspace, with empty job tables."""
    shared = shared_test_keyspace()
    shared.truncate()
    return shared


@pytest.fixture
def scratch_keyspace() -> Iterator[Settings]:
    """Settings naming a keyspace nobody created yet; dropped afterwards if a test did."""
    settings = cql_settings(new_keyspace_name())
    yield settings
    with open_admin_session(settings) as admin:
        drop_keyspace(admin, settings.cql_keyspace)


def _spawn() -> Any:
    return multiprocessing.get_context("spawn")  # no fork of a threaded driver or test runner


# Two worker processes, each with its own session


def claim_until_empty(
    settings: Settings,
    worker_id: str,
    start: Barrier,
    results: Queue[tuple[str, list[str]]],
) -> None:
    """Runs in a child process: claim jobs until none is left and report their ids."""
    store = ScyllaJobStore.from_settings(settings)
    try:
        start.wait(timeout=60)
        claimed = []
        while (job := store.claim(worker_id, at(100), LEASE_S)) is not None:
            claimed.append(job.job_id)
        results.put((worker_id, claimed))
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_two_processes_never_claim_the_same_job(keyspace: TestKeyspace) -> None:
    store = ScyllaJobStore(keyspace.session)
    jobs = {store.enqueue(spec(f"t{index}"), at(index % 7)).job_id for index in range(JOBS)}
    context = _spawn()
    start = context.Barrier(2)
    results: Queue[tuple[str, list[str]]] = context.Queue()
    workers = [
        context.Process(target=claim_until_empty, args=(keyspace.settings, name, start, results))
        for name in ("worker-a", "worker-b")
    ]
    for worker in workers:
        worker.start()
    try:
        reports = dict(results.get(timeout=PROCESS_TIMEOUT_S) for _ in workers)
    finally:
        for worker in workers:
            worker.join(timeout=30)
            if worker.is_alive():
                worker.kill()
    assert [worker.exitcode for worker in workers] == [0, 0]
    claimed = [job_id for mine in reports.values() for job_id in mine]
    assert sorted(claimed) == sorted(jobs)  # every job once, none twice
    assert all(reports.values()), f"one worker took every job: {reports}"
    stored = {job_id: store.get(job_id) for job_id in jobs}
    assert {job.attempts for job in stored.values()} == {1}
    assert {job_id: job.worker_id for job_id, job in stored.items()} == {
        job_id: worker for worker, mine in reports.items() for job_id in mine
    }


# The queue index is a hint


def _queue_rows(session: CqlSession) -> list[dict[str, Any]]:
    return session.execute(
        Cql("SELECT shard, created_us, seq, job_id FROM job_queue", idempotent=True),
        action="read the queue index",
    ).all()


def test_finished_jobs_leave_the_queue_index(keyspace: TestKeyspace) -> None:
    store = ScyllaJobStore(keyspace.session, max_attempts=1)
    published = store.enqueue(spec("t1"), at(0))
    failed = store.enqueue(spec("t2"), at(1))
    lost = store.enqueue(spec("t3"), at(2))
    assert len(_queue_rows(keyspace.session)) == 3
    store.claim("w1", at(3), LEASE_S)
    store.claim("w1", at(3), LEASE_S)
    store.claim("w1", at(3), LEASE_S)
    assert store.finish(published.job_id, "w1", at(4), version="v1")
    assert store.finish(failed.job_id, "w1", at(4), error_code="silent_master")
    assert store.claim("w2", at(1000), LEASE_S) is None  # fails `lost`: one attempt allowed
    assert store.get(lost.job_id).error_code == "worker_lost"
    assert _queue_rows(keyspace.session) == []
    assert [job.job_id for job in store.list_jobs()] == [
        lost.job_id,
        failed.job_id,
        published.job_id,
    ]


def test_a_claim_removes_the_index_row_a_dead_finisher_left(keyspace: TestKeyspace) -> None:
    store = ScyllaJobStore(keyspace.session)
    job = store.enqueue(spec(), at(0))
    [row] = _queue_rows(keyspace.session)
    store.claim("w1", at(1), LEASE_S)
    assert store.finish(job.job_id, "w1", at(2), version="v1")
    insert = Cql(
        "INSERT INTO job_queue (shard, created_us, seq, job_id) VALUES (?, ?, ?, ?)",
        idempotent=True,
    )
    keyspace.session.execute(
        insert, (row["shard"], row["created_us"], row["seq"], row["job_id"]), action="re-index"
    )
    assert store.claim("w2", at(10_000), LEASE_S) is None
    assert _queue_rows(keyspace.session) == []
    assert store.get(job.job_id).version == "v1"


def test_an_index_row_without_its_job_is_skipped(keyspace: TestKeyspace) -> None:
    """An enqueue whose index write landed before its job row is visible: not an error."""
    store = ScyllaJobStore(keyspace.session)
    keyspace.session.execute(
        Cql(
            "INSERT INTO job_queue (shard, created_us, seq, job_id) VALUES (0, 0, 0, ?)",
            idempotent=True,
        ),
        ("f" * 32,),
        action="index a job in flight",
    )
    job = store.enqueue(spec(), at(0))
    claimed = store.claim("w1", at(1), LEASE_S)
    assert claimed is not None and claimed.job_id == job.job_id
    assert store.claim("w1", at(2), LEASE_S) is None
    assert len(_queue_rows(keyspace.session)) == 2  # kept: its job may still arrive


def test_a_shortened_lease_is_taken_over_when_the_claimed_one_ends(
    keyspace: TestKeyspace,
) -> None:
    """The documented difference from SQLite: the index remembers the lease a claim granted."""
    store = ScyllaJobStore(keyspace.session)
    job = store.enqueue(spec(), at(0))
    store.claim("w1", at(0), LEASE_S)
    assert store.heartbeat(job.job_id, "w1", at(1), 10.0, 5.0, None)  # lease until at(11)
    assert store.claim("w2", at(30), LEASE_S) is None  # SQLite would take it here
    taken = store.claim("w2", at(LEASE_S + 1), LEASE_S)
    assert taken is not None and (taken.worker_id, taken.attempts) == ("w2", 2)


def test_list_jobs_spans_days(keyspace: TestKeyspace) -> None:
    store = ScyllaJobStore(keyspace.session)
    days = [datetime(2024, 5, day, 23, 59, 59, 999999, tzinfo=UTC) for day in (1, 3, 2)]
    jobs = [store.enqueue(spec(f"t{index}"), moment) for index, moment in enumerate(days)]
    assert store.list_jobs() == [jobs[1], jobs[2], jobs[0]]
    assert store.list_jobs(limit=2) == [jobs[1], jobs[2]]
    claimed = [store.claim("w1", at(10**6), LEASE_S) for _ in jobs]
    assert [job.job_id for job in claimed if job] == [
        jobs[0].job_id,
        jobs[2].job_id,
        jobs[1].job_id,
    ]


# Migrations


def test_migrations_are_idempotent(keyspace: TestKeyspace) -> None:
    assert migrate(keyspace.settings) == []
    assert apply_migrations(keyspace.session, keyspace.keyspace) == []
    require_current_schema(keyspace.session, keyspace.keyspace)


def migrate_in_child(settings: Settings, start: Barrier, results: Queue[list[str] | str]) -> None:
    """Runs in a child process: migrate at the same moment as a sibling."""
    try:
        start.wait(timeout=60)
        results.put(migrate(settings))
    except Exception as exc:  # reported, not lost in the child's stderr
        results.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_concurrent_migrations_apply_each_version_once(scratch_keyspace: Settings) -> None:
    context = _spawn()
    start = context.Barrier(2)
    results: Queue[list[str] | str] = context.Queue()
    migrators = [
        context.Process(target=migrate_in_child, args=(scratch_keyspace, start, results))
        for _ in range(2)
    ]
    for migrator in migrators:
        migrator.start()
    try:
        reports = [results.get(timeout=PROCESS_TIMEOUT_S) for _ in migrators]
    finally:
        for migrator in migrators:
            migrator.join(timeout=30)
            if migrator.is_alive():
                migrator.kill()
    assert all(isinstance(report, list) for report in reports), reports
    applied = sorted(entry for report in reports for entry in report)
    assert applied == sorted(f"{m.version}: {m.description}" for m in MIGRATIONS)
    store = ScyllaJobStore.from_settings(scratch_keyspace)
    try:
        job = store.enqueue(spec(), at(0))
        assert store.get(job.job_id) == job
    finally:
        store.close()


PROBE = Migration(
    9001, "probe table", ("CREATE TABLE IF NOT EXISTS {keyspace}.probe (k int PRIMARY KEY)",)
)
CLAIMED_AT = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def probe_claimed_by_another(keyspace: TestKeyspace) -> Iterator[CqlSession]:
    """Migration 9001 claimed by another migrator at CLAIMED_AT and not finished."""
    session = keyspace.session
    session.execute(
        Cql(
            "INSERT INTO schema_migrations (version, description, state, owner, started_at)"
            " VALUES (?, ?, 'applying', 'migrator-elsewhere', ?)",
            idempotent=True,
        ),
        (PROBE.version, PROBE.description, CLAIMED_AT),
        action="claim the probe migration",
    )
    yield session
    session.execute(
        Cql("DELETE FROM schema_migrations WHERE version = ?", idempotent=True),
        (PROBE.version,),
        action="forget the probe migration",
    )
    session.execute_schema("DROP TABLE IF EXISTS probe", action="drop the probe table")


def test_a_migration_claimed_by_another_is_waited_for(
    keyspace: TestKeyspace, probe_claimed_by_another: CqlSession
) -> None:
    session = probe_claimed_by_another
    naps: list[float] = []

    def the_other_finishes(seconds: float) -> None:
        naps.append(seconds)
        session.execute(
            Cql(
                "UPDATE schema_migrations SET state = 'applied' WHERE version = ?"
                " IF owner = 'migrator-elsewhere'",
                idempotent=False,
            ),
            (PROBE.version,),
            action="finish the probe migration",
        )

    applied = apply_migrations(
        session,
        keyspace.keyspace,
        migrations=(PROBE,),
        clock=lambda: CLAIMED_AT + timedelta(seconds=5),
        sleep=the_other_finishes,
    )
    assert applied == []
    assert len(naps) == 1
    tables = session.execute(
        Cql("SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?", True),
        (keyspace.keyspace,),
        action="list tables",
    ).all()
    assert "probe" not in {row["table_name"] for row in tables}  # the other one's job


def test_a_stale_migration_claim_is_taken_over(
    keyspace: TestKeyspace, probe_claimed_by_another: CqlSession
) -> None:
    def no_sleep(seconds: float) -> None:
        raise AssertionError("a stale claim is taken over, not waited for")

    applied = apply_migrations(
        probe_claimed_by_another,
        keyspace.keyspace,
        migrations=(PROBE,),
        clock=lambda: CLAIMED_AT + timedelta(seconds=STALE_MIGRATION_S + 1),
        sleep=no_sleep,
    )
    assert applied == ["9001: probe table"]
    row = probe_claimed_by_another.execute(
        Cql("SELECT state, owner FROM schema_migrations WHERE version = ?", True),
        (PROBE.version,),
        action="read the probe migration",
    ).one()
    assert row is not None and row["state"] == "applied"
    assert row["owner"].startswith("migrator-") and row["owner"] != "migrator-elsewhere"


def test_a_claim_that_stands_still_is_taken_over_whatever_its_clock_says(
    keyspace: TestKeyspace, probe_claimed_by_another: CqlSession
) -> None:
    probe_claimed_by_another.execute(
        Cql("UPDATE schema_migrations SET started_at = ? WHERE version = ?", True),
        (CLAIMED_AT + timedelta(days=1), PROBE.version),  # its host's clock runs a day ahead
        action="date the claim in the future",
    )
    now = [CLAIMED_AT]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += timedelta(seconds=100)

    applied = apply_migrations(
        probe_claimed_by_another,
        keyspace.keyspace,
        migrations=(PROBE,),
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert applied == ["9001: probe table"]
    assert len(naps) == 4  # watched it stand still for more than STALE_MIGRATION_S


def test_a_store_refuses_a_keyspace_that_was_not_migrated(scratch_keyspace: Settings) -> None:
    with pytest.raises(ConfigError, match=r"does not exist.*run `streamer db migrate`"):
        ScyllaJobStore.from_settings(scratch_keyspace)
    with open_admin_session(scratch_keyspace) as admin:
        admin.execute_schema(
            f"CREATE KEYSPACE {scratch_keyspace.cql_keyspace} WITH replication ="
            " {'class': 'SimpleStrategy', 'replication_factor': 1}",
            action="create a bare keyspace",
        )
    with pytest.raises(ConfigError, match=r"no schema yet; run `streamer db migrate`"):
        ScyllaJobStore.from_settings(scratch_keyspace)


def test_a_store_refuses_a_schema_behind_the_code(keyspace: TestKeyspace) -> None:
    newer = (*MIGRATIONS, Migration(9002, "plays", ()))
    with pytest.raises(ConfigError, match=r"lacks schema migrations \(9002: plays\); run"):
        require_current_schema(keyspace.session, keyspace.keyspace, newer)


def test_the_registry_opens_the_scylla_job_store(keyspace: TestKeyspace) -> None:
    store = open_job_store(dataclasses.replace(keyspace.settings, job_store="scylla"))
    assert isinstance(store, ScyllaJobStore)
    try:
        assert store.list_jobs() == []
    finally:
        store.close()


# Errors arrive translated, in bounded time


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_closed_port_is_a_storage_error_in_bounded_time() -> None:
    port = _closed_port()
    settings = load_settings(environ={}, cql_hosts="127.0.0.1", cql_port=port)
    started = time.monotonic()
    with pytest.raises(StorageError, match=rf"cannot connect to the CQL store at 127.0.0.1:{port}"):
        ScyllaJobStore.from_settings(settings)
    assert time.monotonic() - started < 15.0


def test_missing_replicas_are_a_storage_error(keyspace: TestKeyspace) -> None:
    job = ScyllaJobStore(keyspace.session).enqueue(spec(), at(0))
    three = dataclasses.replace(keyspace.settings, cql_consistency="THREE")
    store = ScyllaJobStore(open_cql_session(three))  # one node cannot give three answers
    try:
        with pytest.raises(
            StorageError, match=rf"cannot read job {job.job_id}: .*1 of 3 replicas .* THREE"
        ):
            store.get(job.job_id)
    finally:
        store.close()


def test_async_results_and_errors_arrive_through_callbacks(keyspace: TestKeyspace) -> None:
    read = Cql("SELECT day FROM job_days WHERE scope = 'jobs'", idempotent=True)
    outcomes: list[object] = []
    done = threading.Event()

    def record(outcome: object) -> None:
        outcomes.append(outcome)
        done.set()

    keyspace.session.execute_async(read, action="read days").add_callbacks(record, record)
    assert done.wait(timeout=10) and outcomes == [[]]
    done.clear()
    three = dataclasses.replace(keyspace.settings, cql_consistency="THREE")
    with open_cql_session(three) as session:
        session.execute_async(read, action="read days").add_callbacks(record, record)
        assert done.wait(timeout=10)
    assert isinstance(outcomes[1], StorageError)
    assert re.search(r"cannot read days: .*1 of 3 replicas", str(outcomes[1]))


def test_a_request_timeout_must_be_positive(keyspace: TestKeyspace) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        keyspace.session.execute(
            Cql("SELECT day FROM job_days", idempotent=True), action="read", timeout=0
        )


# Settings are checked before anything connects


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("cql_consistency", "SERIAL", "STREAMER_CQL_CONSISTENCY is 'SERIAL'; choose one of"),
        ("cql_keyspace", "streamer-prod", "STREAMER_CQL_KEYSPACE is 'streamer-prod'"),
        ("cql_keyspace", "1streamer", "STREAMER_CQL_KEYSPACE is '1streamer'"),
        ("cql_hosts", " , ", "STREAMER_CQL_HOSTS is ' , '; give one or more hosts"),
    ],
)
def test_malformed_cql_settings(setting: str, value: str, message: str) -> None:
    settings = load_settings(environ={f"STREAMER_{setting.upper()}": value})
    with pytest.raises(ConfigError, match=message):
        open_cql_session(settings)
    with pytest.raises(ConfigError, match=message):
        migrate(settings)


def test_replication_must_be_a_map(scratch_keyspace: Settings) -> None:
    with pytest.raises(ConfigError, match="replication must be a map"):
        migrate(scratch_keyspace, replication="SimpleStrategy")


def test_rows_translate_errors_met_while_paging() -> None:
    """CqlRows iterates lazily; an error on a later page leaves as StorageError too."""

    class FailingPages:
        def __iter__(self) -> Iterator[dict[str, Any]]:
            yield {"n": 1}
            raise ConnectionResetError("connection reset by peer")

    rows = CqlRows(FailingPages(), lambda exc: StorageError(f"cannot page: {exc}"))
    seen = []
    with pytest.raises(StorageError, match="cannot page: connection reset"):
        for row in rows:
            seen.append(row)
    assert seen == [{"n": 1}]
