"""The one place that opens a CQL session (ScyllaDB in production, Cassandra in tests).

`open_cql_session(settings)` returns a `CqlSession`: the driver's Cluster and Session with the
house policies fixed once. Routing is token-aware over a DC-aware round robin (with the
scylla-driver that is also shard-aware); the default consistency is `settings.cql_consistency`
(ONE on a single node, LOCAL_QUORUM in production) and conditional writes (LWT) run their
Paxos round at LOCAL_SERIAL, so a datacenter never waits for another. Every connect and
request has a timeout; the protocol version is negotiated (v5 with Cassandra 5, v4 with Scylla).

Statements are declared as `Cql(text, idempotent=...)` next to the code that runs them and are
prepared once per session. Every driver error leaves this module as `StorageError` naming
the operation; no `cassandra.*` type or exception reaches the callers of a `CqlSession`.

One module on purpose (about 450 lines): it is the only one that touches the driver's types
and exceptions, and keeping them in one file keeps them from spreading.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from threading import Lock
from typing import Any

from cassandra import (
    ConsistencyLevel,
    DriverException,
    OperationTimedOut,
    Unavailable,
    WriteTimeout,
    WriteType,
)
from cassandra import Timeout as ReplicaTimeout
from cassandra.cluster import (
    EXEC_PROFILE_DEFAULT,
    Cluster,
    ExecutionProfile,
    NoHostAvailable,
    ResponseFuture,
    ResultSet,
)
from cassandra.cluster import Session as DriverSession
from cassandra.connection import ConnectionException
from cassandra.policies import (
    DCAwareRoundRobinPolicy,
    ExponentialReconnectionPolicy,
    TokenAwarePolicy,
)
from cassandra.query import BatchStatement, BatchType, PreparedStatement, dict_factory

from streamer.errors import ConfigError, StorageError
from streamer.settings import DEFAULT_CQL_RECONNECT_MAX_S, ENV_PREFIX, Settings

DEFAULT_CONNECT_TIMEOUT_S = 10.0  # a loopback or LAN node answers in milliseconds
DEFAULT_REQUEST_TIMEOUT_S = 10.0  # above the server's own 5 s read/write timeouts, so theirs win
SCHEMA_AGREEMENT_WAIT_S = 30.0  # DDL waits until every node has the new schema
RECONNECT_BASE_DELAY_S = 0.5
RECONNECT_MAX_DELAY_S = DEFAULT_CQL_RECONNECT_MAX_S  # settings.cql_reconnect_max_s by default

# Consistency levels a setting may name. SERIAL levels are for the Paxos round only, and ANY
# would acknowledge a write nobody can read.
CONSISTENCY_LEVELS = (
    "ONE",
    "TWO",
    "THREE",
    "QUORUM",
    "ALL",
    "LOCAL_ONE",
    "LOCAL_QUORUM",
    "EACH_QUORUM",
)
_STATEMENT_LEVELS = (*CONSISTENCY_LEVELS, "SERIAL", "LOCAL_SERIAL")
_KEYSPACE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,47}")  # CQL: unquoted, at most 48 chars

# Driver errors that are translated; anything else is a bug and keeps its own type.
_DRIVER_ERRORS = (DriverException, NoHostAvailable, ConnectionException, OSError)


@dataclass(frozen=True)
class Cql:
    """One CQL statement: its text, and whether running it twice is harmless (a retry may).

    `consistency` overrides the session's level for this statement alone: LOCAL_SERIAL for a
    read that must see every acknowledged conditional write, LOCAL_ONE for the node-local
    `system_schema` tables, which no other consistency level can read.
    """

    text: str
    idempotent: bool
    consistency: str | None = None

    def __post_init__(self) -> None:
        if self.consistency is not None and self.consistency not in _STATEMENT_LEVELS:
            raise ValueError(
                f"consistency {self.consistency!r} of `{_first_words(self.text)}` is not one"
                f" of {', '.join(_STATEMENT_LEVELS)}"
            )


class CqlRows:
    """The rows of one statement as dicts, fetched page by page as they are iterated."""

    def __init__(self, result: ResultSet, describe: Callable[[BaseException], StorageError]):
        self._result = result
        self._describe = describe

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rows = iter(self._result)
        while True:
            try:
                row = next(rows)  # may fetch the next page from the server
            except StopIteration:
                return
            except _DRIVER_ERRORS as exc:
                raise self._describe(exc) from exc
            yield row

    def one(self) -> dict[str, Any] | None:
        """The first row, or None."""
        return next(iter(self), None)

    def all(self) -> list[dict[str, Any]]:
        return list(self)

    def conditional(self) -> tuple[bool, dict[str, Any]]:
        """A conditional write's outcome: applied, and the current values when it was not."""
        row = self.one()
        if row is None:  # an LWT always answers with one row
            raise self._describe(RuntimeError("the conditional write returned no row"))
        return bool(row["[applied]"]), row


class CqlFuture:
    """A statement in flight; `result()` waits for it (bounded by the request timeout)."""

    def __init__(
        self, future: ResponseFuture, describe: Callable[[BaseException], StorageError]
    ) -> None:
        self._future = future
        self._describe = describe

    def result(self) -> CqlRows:
        try:
            result = self._future.result()
        except _DRIVER_ERRORS as exc:
            raise self._describe(exc) from exc
        return CqlRows(result, self._describe)

    def add_callbacks(
        self,
        on_rows: Callable[[list[dict[str, Any]]], object],
        on_error: Callable[[StorageError], object],
    ) -> None:
        """Call one of the two, from a driver thread, when the statement completes.

        `on_rows` receives the first page only: this is for writes and small reads.
        """

        def error(exc: BaseException) -> None:
            translated = self._describe(exc)
            translated.__cause__ = exc
            on_error(translated)

        self._future.add_callbacks(lambda rows: on_rows(list(rows or ())), error)


class CqlSession:
    """A connected cluster and session with the house policies; close it when done."""

    def __init__(
        self,
        cluster: Cluster,
        session: DriverSession,
        keyspace: str | None,
        request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
    ) -> None:
        self._cluster = cluster
        self._session = session
        self.keyspace = keyspace
        self.request_timeout_s = request_timeout_s
        self.where = ", ".join(f"{host}:{cluster.port}" for host in cluster.contact_points)
        self._prepared: dict[str, PreparedStatement] = {}
        self._prepare_lock = Lock()

    def __repr__(self) -> str:
        return f"CqlSession({self.where!r}, keyspace={self.keyspace!r})"

    def __enter__(self) -> CqlSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def prepare(self, statement: Cql) -> PreparedStatement:
        """The prepared form of `statement`, prepared once per session."""
        prepared = self._prepared.get(statement.text)
        if prepared is not None:
            return prepared
        with self._prepare_lock:
            prepared = self._prepared.get(statement.text)
            if prepared is None:
                action = f"prepare {_first_words(statement.text)}"
                try:
                    prepared = self._session.prepare(statement.text)
                except _DRIVER_ERRORS as exc:
                    raise self._error(action, exc) from exc
                prepared.is_idempotent = statement.idempotent
                if statement.consistency is not None:
                    prepared.consistency_level = ConsistencyLevel.name_to_value[
                        statement.consistency
                    ]
                self._prepared[statement.text] = prepared
        return prepared

    def execute(
        self,
        statement: Cql,
        params: Sequence[Any] = (),
        *,
        action: str,
        timeout: float | None = None,
        fetch_size: int | None = None,
    ) -> CqlRows:
        """Run a prepared statement and wait for its first page; `action` names it in errors."""
        return self.execute_async(
            statement, params, action=action, timeout=timeout, fetch_size=fetch_size
        ).result()

    def execute_async(
        self,
        statement: Cql,
        params: Sequence[Any] = (),
        *,
        action: str,
        timeout: float | None = None,
        fetch_size: int | None = None,
    ) -> CqlFuture:
        """Send a prepared statement without waiting: for fan-out reads and batched writers.

        `timeout` defaults to the session's request timeout; there is no unbounded wait.
        """
        bound = self.prepare(statement).bind(params)
        if fetch_size is not None:
            bound.fetch_size = fetch_size
        try:
            future = self._session.execute_async(bound, timeout=self._timeout(timeout))
        except _DRIVER_ERRORS as exc:
            raise self._error(action, exc) from exc
        return CqlFuture(future, lambda exc: self._error(action, exc))

    def execute_batch(
        self,
        statements: Sequence[tuple[Cql, Sequence[Any]]],
        *,
        action: str,
        timeout: float | None = None,
    ) -> None:
        """Run writes to several partitions as a logged batch: all of them apply, or none."""
        batch = BatchStatement(batch_type=BatchType.LOGGED)
        for statement, params in statements:
            batch.add(self.prepare(statement), params)
        batch.is_idempotent = all(statement.idempotent for statement, _ in statements)
        try:
            self._session.execute(batch, timeout=self._timeout(timeout))
        except _DRIVER_ERRORS as exc:
            raise self._error(action, exc) from exc

    def execute_conditional_batch(
        self,
        statements: Sequence[tuple[Cql, Sequence[Any]]],
        *,
        action: str,
        timeout: float | None = None,
    ) -> tuple[bool, list[dict[str, Any]]]:
        """Run conditional writes (LWT) to ONE partition as one Paxos round: all apply or none.

        Returns whether they applied and, when not, the rows that stood in the way.
        """
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)  # one partition: no batchlog
        for statement, params in statements:
            batch.add(self.prepare(statement), params)
        batch.is_idempotent = False  # a retried LWT may see its own first write and fail
        try:
            result = self._session.execute(batch, timeout=self._timeout(timeout))
        except _DRIVER_ERRORS as exc:
            raise self._error(action, exc) from exc
        rows = CqlRows(result, lambda exc: self._error(action, exc)).all()
        if not rows:
            raise self._error(action, RuntimeError("the conditional batch returned no row"))
        return bool(rows[0]["[applied]"]), rows

    def execute_partition_batch_async(
        self,
        statements: Sequence[tuple[Cql, Sequence[Any]]],
        *,
        action: str,
        timeout: float | None = None,
    ) -> CqlFuture:
        """Send writes to ONE partition key as an unlogged batch, without waiting.

        Rows of one key (in any tables of the keyspace) travel as one mutation to the same
        replicas, which apply it whole; across keys an unlogged batch would only add load to
        its coordinator, so callers group by key.
        """
        batch = BatchStatement(batch_type=BatchType.UNLOGGED)
        for statement, params in statements:
            batch.add(self.prepare(statement), params)
        batch.is_idempotent = all(statement.idempotent for statement, _ in statements)
        try:
            future = self._session.execute_async(batch, timeout=self._timeout(timeout))
        except _DRIVER_ERRORS as exc:
            raise self._error(action, exc) from exc
        return CqlFuture(future, lambda exc: self._error(action, exc))

    def execute_schema(
        self, text: str, *, action: str, timeout: float = SCHEMA_AGREEMENT_WAIT_S
    ) -> None:
        """Run one DDL statement unprepared and wait until every node agrees on the schema."""
        try:
            self._session.execute(text, timeout=timeout)
        except _DRIVER_ERRORS as exc:
            raise self._error(action, exc) from exc

    def close(self) -> None:
        """Close every connection and stop the driver's threads; safe to call twice."""
        self._cluster.shutdown()

    def _timeout(self, timeout: float | None) -> float:
        chosen = self.request_timeout_s if timeout is None else timeout
        if not chosen > 0:  # the driver reads None as "wait forever"
            raise ValueError(f"a CQL request timeout must be positive, got {chosen}")
        return chosen

    def _error(self, action: str, exc: BaseException) -> StorageError:
        return StorageError(f"CQL store at {self.where} cannot {action}: {describe_error(exc)}")


def _reconnection_policy(settings: Settings) -> ExponentialReconnectionPolicy:
    """The driver's backoff between reconnects to a node that is down: exponential (with the
    driver's jitter) from RECONNECT_BASE_DELAY_S, capped at `settings.cql_reconnect_max_s`."""
    return ExponentialReconnectionPolicy(RECONNECT_BASE_DELAY_S, settings.cql_reconnect_max_s)


def reconnect_delays(settings: Settings, attempts: int) -> list[float]:
    """The seconds the driver waits before each of its first `attempts` reconnects."""
    schedule = _reconnection_policy(settings).new_schedule()
    return [float(next(schedule)) for _ in range(attempts)]


def open_cql_session(
    settings: Settings,
    *,
    use_keyspace: bool = True,
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
    request_timeout_s: float = DEFAULT_REQUEST_TIMEOUT_S,
) -> CqlSession:
    """Connect to `settings.cql_hosts`; in `settings.cql_keyspace` unless `use_keyspace` is off.

    Raises ConfigError for malformed settings or a keyspace that does not exist, and
    StorageError when no node answers within `connect_timeout_s`.
    """
    hosts = parse_hosts(settings.cql_hosts)
    keyspace = keyspace_name(settings)
    consistency = consistency_level(settings.cql_consistency)
    profile = ExecutionProfile(
        load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc=None)),
        consistency_level=consistency,
        serial_consistency_level=ConsistencyLevel.LOCAL_SERIAL,
        request_timeout=request_timeout_s,
        row_factory=dict_factory,
    )
    where = ", ".join(f"{host}:{settings.cql_port}" for host in hosts)
    try:
        cluster = Cluster(
            contact_points=list(hosts),
            port=settings.cql_port,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
            connect_timeout=connect_timeout_s,
            control_connection_timeout=connect_timeout_s,
            max_schema_agreement_wait=int(SCHEMA_AGREEMENT_WAIT_S),
            # The driver's default backs off to 10 minutes: an edge would spool telemetry for
            # that long after a node came back. Capped, it is back within seconds.
            reconnection_policy=_reconnection_policy(settings),
        )
    except _DRIVER_ERRORS as exc:  # e.g. a host name that does not resolve
        raise StorageError(f"cannot use CQL hosts {where}: {describe_error(exc)}") from exc
    try:
        session = cluster.connect()
    except _DRIVER_ERRORS as exc:
        cluster.shutdown()
        raise StorageError(
            f"cannot connect to the CQL store at {where}"
            f" within {connect_timeout_s:g} s: {describe_error(exc)}"
        ) from exc
    cql = CqlSession(cluster, session, None, request_timeout_s)
    if not use_keyspace:
        return cql
    try:
        found = cql.execute(
            _FIND_KEYSPACE, (keyspace,), action=f"look up keyspace {keyspace}"
        ).one()
        if found is None:
            raise ConfigError(
                f"keyspace {keyspace!r} ({ENV_PREFIX}CQL_KEYSPACE) does not exist in the CQL"
                f" store at {where}; run `streamer db migrate` to create it"
            )
        try:
            session.set_keyspace(keyspace)
        except _DRIVER_ERRORS as exc:
            raise cql._error(f"use keyspace {keyspace}", exc) from exc
    except BaseException:
        cql.close()
        raise
    cql.keyspace = keyspace
    return cql


_FIND_KEYSPACE = Cql(
    "SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = ?",
    idempotent=True,
    consistency="LOCAL_ONE",
)


def parse_hosts(text: str) -> tuple[str, ...]:
    """`cql_hosts` is a comma-separated list of host names or addresses."""
    hosts = tuple(host.strip() for host in text.split(",") if host.strip())
    if not hosts:
        raise ConfigError(
            f"{ENV_PREFIX}CQL_HOSTS is {text!r}; give one or more hosts separated by commas"
        )
    return hosts


def keyspace_name(settings: Settings) -> str:
    """The validated keyspace name: it is spliced into CQL text, so it must be an identifier."""
    name = settings.cql_keyspace
    if not _KEYSPACE_NAME.fullmatch(name):
        raise ConfigError(
            f"{ENV_PREFIX}CQL_KEYSPACE is {name!r}; use a letter, then letters, digits or"
            " underscores, at most 48 characters"
        )
    return name


def consistency_level(name: str) -> int:
    """The driver's value for a consistency level named in settings."""
    normalised = name.strip().upper()
    if normalised not in CONSISTENCY_LEVELS:
        raise ConfigError(
            f"{ENV_PREFIX}CQL_CONSISTENCY is {name!r}; choose one of"
            f" {', '.join(CONSISTENCY_LEVELS)} (LOCAL_QUORUM in production)"
        )
    level: int = ConsistencyLevel.name_to_value[normalised]
    return level


def describe_error(exc: BaseException) -> str:
    """A driver error in one line: what was expected, what happened."""
    if isinstance(exc, NoHostAvailable):
        causes = "; ".join(
            f"{host}: {describe_error(cause) if isinstance(cause, BaseException) else cause}"
            for host, cause in sorted(exc.errors.items(), key=lambda item: str(item[0]))
        )
        return f"no node could serve it ({causes or 'no node is known'})"
    if isinstance(exc, OperationTimedOut):
        return f"no answer within the request timeout ({exc})"
    if isinstance(exc, Unavailable):
        return (
            f"{exc.alive_replicas} of {exc.required_replicas} replicas needed for consistency"
            f" {ConsistencyLevel.value_to_name.get(exc.consistency, exc.consistency)} are up"
        )
    if isinstance(exc, ReplicaTimeout):
        outcome = ""
        if isinstance(exc, WriteTimeout) and exc.write_type == WriteType.CAS:
            outcome = "; the conditional write may or may not have applied"
        return (
            f"{exc.received_responses} of {exc.required_responses} replicas answered before"
            f" the server's timeout{outcome}"
        )
    if isinstance(exc, ConnectionException | OSError):
        return f"connection failed: {exc}"
    return f"{type(exc).__name__}: {exc}"


def _first_words(text: str, words: int = 4) -> str:
    return " ".join(text.split()[:words])
