"""A test keyspace on the CQL server of `scripts/services up cassandra`, one per test session.

Creating a keyspace and its tables takes seconds on Cassandra, so a session creates one, with
a name that says when (`streamer_test_<unix time>_<random>`, so concurrent sessions never
share one), and each test starts from empty tables (TRUNCATE). Keyspaces that a killed session
left behind are dropped once they are `STALE_KEYSPACE_S` old.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from streamer.cql.connection import Cql, CqlSession, open_cql_session
from streamer.cql.schema import MIGRATIONS, migrate
from streamer.errors import StorageError
from streamer.jobs.port import DEFAULT_MAX_ATTEMPTS, JobStore
from streamer.jobs.scylla import ScyllaJobStore
from streamer.offline.scylla import ScyllaOfflineStore
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.settings import Settings, load_settings
from tests.backends.services import missing, services_env

STALE_KEYSPACE_S = 6 * 3600.0  # no test session runs for six hours
TRUNCATE_TIMEOUT_S = 30.0  # the server's own truncate_request_timeout
TEST_KEYSPACE = re.compile(r"streamer_test_(\d+)_[0-9a-f]+")
JOB_TABLES = ("jobs", "job_queue", "jobs_by_day", "job_days")
SESSION_TABLES = (
    "playback_sessions",
    "sessions_by_user",
    "player_events",
    "cmcd_samples",
    "segment_deliveries",
    "plays_by_session",
    "plays_by_track_day",
    "track_plays_by_day",
    "play_recounts_due",
)
OFFLINE_TABLES = ("offline_devices", "offline_licences", "offline_licences_by_device")
FRESH_MARK = ".scylla-session-tables-emptied"  # in a test's tmp_path: emptied for this test

_shared: TestKeyspace | None = None


def cql_settings(keyspace: str) -> Settings:
    """Settings for the CQL server of `scripts/services`; fails the test if none is configured."""
    env = services_env()
    names = ("STREAMER_CQL_HOSTS", "STREAMER_CQL_PORT")
    cql_env: dict[str, str] = {name: env[name] for name in names if name in env}
    if "STREAMER_CQL_PORT" not in cql_env:
        missing("cassandra", "no CQL server is configured (no STREAMER_CQL_PORT, no env file)")
    return load_settings(environ=cql_env, cql_keyspace=keyspace, cql_consistency="ONE")


def new_keyspace_name() -> str:
    return f"streamer_test_{int(time.time())}_{secrets.token_hex(3)}"


def open_admin_session(settings: Settings) -> CqlSession:
    """A session outside any keyspace; fails the test, saying how, if the server is down."""
    try:
        return open_cql_session(settings, use_keyspace=False, connect_timeout_s=5.0)
    except StorageError as exc:
        missing("cassandra", f"the CQL server does not answer: {exc}")


def drop_keyspace(session: CqlSession, keyspace: str) -> None:
    session.execute_schema(f"DROP KEYSPACE IF EXISTS {keyspace}", action=f"drop {keyspace}")


def drop_stale_test_keyspaces(session: CqlSession, now: float) -> None:
    rows = session.execute(
        Cql("SELECT keyspace_name FROM system_schema.keyspaces", idempotent=True),
        action="list keyspaces",
    )
    for row in rows:
        match = TEST_KEYSPACE.fullmatch(row["keyspace_name"])
        if match and now - int(match.group(1)) > STALE_KEYSPACE_S:
            drop_keyspace(session, row["keyspace_name"])


class TestKeyspace:
    """A migrated keyspace of this session's own, and one session in it shared by the stores."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self) -> None:
        self.settings = cql_settings(new_keyspace_name())
        with open_admin_session(self.settings) as admin:
            drop_stale_test_keyspaces(admin, time.time())
        applied = migrate(self.settings)
        assert len(applied) == len(MIGRATIONS), applied
        self.session = open_cql_session(self.settings)

    @property
    def keyspace(self) -> str:
        return self.settings.cql_keyspace

    def truncate(self, tables: tuple[str, ...] = JOB_TABLES) -> None:
        """Empty the tables (the job tables unless told), all at once."""
        pending = [
            self.session.execute_async(
                Cql(f"TRUNCATE {table}", idempotent=True),
                action=f"truncate {table}",
                timeout=TRUNCATE_TIMEOUT_S,
            )
            for table in tables
        ]
        for future in pending:
            future.result()

    def fresh_store(self, max_attempts: int = DEFAULT_MAX_ATTEMPTS) -> ScyllaJobStore:
        self.truncate()
        return ScyllaJobStore(self.session, max_attempts)

    def close(self) -> None:
        self.session.close()
        with open_admin_session(self.settings) as admin:
            drop_keyspace(admin, self.keyspace)


def shared_test_keyspace() -> TestKeyspace:
    """This session's keyspace, created on first use."""
    global _shared
    if _shared is None:
        _shared = TestKeyspace()
    return _shared


def open_test_scylla_session_store(tmp: Path) -> ScyllaSessionStore:
    """For the contract table: a store over this session's keyspace, its session tables
    emptied on the test's first open only (opening again must reach the same data)."""
    shared = shared_test_keyspace()
    mark = tmp / FRESH_MARK
    if not mark.exists():
        shared.truncate(SESSION_TABLES)
        mark.touch()
    return ScyllaSessionStore(shared.session)


def open_test_scylla_offline_store(tmp: Path) -> ScyllaOfflineStore:
    """For the contract table: a store over this session's keyspace, its offline tables
    emptied on the test's first open only (opening again must reach the same data)."""
    shared = shared_test_keyspace()
    mark = tmp / ".scylla-offline-tables-emptied"
    if not mark.exists():
        shared.truncate(OFFLINE_TABLES)
        mark.touch()
    return ScyllaOfflineStore(shared.session)


def open_test_scylla_job_store(tmp: Path, max_attempts: int) -> JobStore:
    """For the contract table: a store over empty tables of this session's keyspace."""
    return shared_test_keyspace().fresh_store(max_attempts)


@pytest.fixture(scope="session", autouse=True)
def drop_cql_test_keyspace() -> Iterator[None]:
    """At the end of the session, drop the keyspace if a test created it."""
    yield
    global _shared
    if _shared is not None:
        keyspace, _shared = _shared, None
        keyspace.close()
