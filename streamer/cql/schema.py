"""The CQL schema as numbered migrations, applied in order by `streamer db migrate`.

Adding a table is appending a `Migration` to `MIGRATIONS`; never edit one that has shipped.
Every statement must be safe to run twice (`CREATE ... IF NOT EXISTS`), because a migrator
that dies half-way leaves its migration to be finished by the next one.

`schema_migrations` records each version. A migrator claims a version with a conditional
insert (LWT, `IF NOT EXISTS`), runs its statements, then marks it applied; a second process
migrating at the same moment loses the insert and waits for the first to finish instead of
running the statements beside it. A claim that stays unfinished longer than
`STALE_MIGRATION_S` is taken over with a conditional update.

Tables are designed query-first. The ingest job queue (version 1):

    jobs           PRIMARY KEY (job_id)
        The job itself; every change after the insert is a conditional update (LWT), so
        exactly one claimant wins. One row per partition, about 1 KB (the spec's metadata).
    job_queue      PRIMARY KEY ((shard), created_us, seq, job_id)
        Index of unfinished (queued or running) jobs, oldest first; a claim merges the heads
        of the `QUEUE_SHARDS` partitions. `lease_floor_us`, written after a claim, is the
        lease it granted: until then the job is surely running, and a claim passes it by
        without reading it, so a claim reads about one job row however many jobs run.
        Rows are deleted when a job finishes, so a
        partition holds the backlog divided by the shards, about 60 bytes a job (100 000
        queued jobs: 1.5 MB per shard), plus the tombstones of jobs finished in the last
        `gc_grace_seconds`. That is short (3 h) because the index is only a hint: a claim
        checks every row against `jobs` and deletes rows of finished jobs, so a row that
        comes back after a lost tombstone is harmless.
    jobs_by_day    PRIMARY KEY ((day), created_us, seq, job_id), newest first
        Every job by the UTC day it was created, for "newest jobs first". One partition a
        day, about 60 bytes a job: 10 000 jobs a day is 600 KB.
    job_days       PRIMARY KEY ((scope), day), newest first
        The days that have jobs, so a listing knows where to start. One small partition,
        one row a day: about 10 KB a year.

Playback sessions and their telemetry (version 2): playback_sessions, sessions_by_user,
player_events, cmcd_samples, segment_deliveries, plays_by_session, plays_by_track_day,
track_plays_by_day (counters), play_recounts_due and session_qoe, described with their
partition sizes in `streamer.sessions.scylla`. Telemetry times there are the model's
milliseconds. The columns of the tables that hold models are declared in
streamer.sessions.tables, from which the stores derive their statements; a test checks the
live schema against them. Version 3 drops session_qoe: QoE is computed from the events where
it is used (streamer.qoe), and nothing read that table.

The audit log (version 4): audit_entries and audit_heads, described with their partition
sizes in `streamer.audit.scylla`.

Offline downloads (version 5): offline_devices, offline_licences, offline_licences_by_device,
described in `streamer.offline.scylla`; kept until deleted (devices and licences are account
records, small and few).

Times are bigint microseconds since the Unix epoch, UTC: CQL `timestamp` keeps milliseconds
only, and a job must read back exactly the instants it was given.

Replication is chosen when the keyspace is created: the default suits one development node;
production uses NetworkTopologyStrategy with three replicas per datacenter, e.g.
"{'class': 'NetworkTopologyStrategy', 'dc1': 3}", with LOCAL_QUORUM consistency.

Over 400 lines because the migrations are data that never changes once shipped; the migrator
itself is the last 150 lines.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from streamer.ads.port import AD_RETENTION_S
from streamer.cql.connection import Cql, CqlSession, keyspace_name, open_cql_session
from streamer.errors import ConfigError, StorageError
from streamer.sessions.port import CMCD_RETENTION_S, EVENT_RETENTION_S, SESSION_RETENTION_S
from streamer.settings import Settings

DEFAULT_REPLICATION = "{'class': 'SimpleStrategy', 'replication_factor': 1}"  # one dev node
STALE_MIGRATION_S = 300.0  # one migration's DDL takes seconds; five minutes means its owner died
MIGRATION_POLL_S = 0.5
QUEUE_SHARDS = 4  # job_queue partitions; changing it strands rows, so it needs a migration
PLAY_SHARDS = 32  # partitions per (track, day) of the play index; changing it needs a migration
# Retention (default_time_to_live) as migration 2 creates its tables comes from
# streamer.sessions.port (the embedded store prunes by the same values): changing one there needs a
# new ALTER TABLE migration here too, since the text of a shipped migration is fixed.


@dataclass(frozen=True)
class Migration:
    """One schema version: CQL statements with `{keyspace}` where the keyspace name goes."""

    version: int
    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "ingest jobs: jobs, job_queue, jobs_by_day, job_days",
        (
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.jobs (
                job_id text PRIMARY KEY,
                spec text,
                state text,
                created_us bigint,
                seq bigint,
                updated_us bigint,
                attempts int,
                worker_id text,
                lease_until_us bigint,
                progress_percent double,
                speed_x_realtime double,
                version text,
                error_code text,
                error_message text
            )
            """,
            # Leveled compaction: a small, often-deleted table read from its head, where
            # reads should touch few SSTables and tombstones should go soon.
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.job_queue (
                shard int,
                created_us bigint,
                seq bigint,
                job_id text,
                lease_floor_us bigint,
                PRIMARY KEY ((shard), created_us, seq, job_id)
            ) WITH gc_grace_seconds = 10800
              AND compaction = {{'class': 'LeveledCompactionStrategy'}}
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.jobs_by_day (
                day date,
                created_us bigint,
                seq bigint,
                job_id text,
                PRIMARY KEY ((day), created_us, seq, job_id)
            ) WITH CLUSTERING ORDER BY (created_us DESC, seq DESC, job_id DESC)
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.job_days (
                scope text,
                day date,
                PRIMARY KEY ((scope), day)
            ) WITH CLUSTERING ORDER BY (day DESC)
            """,
        ),
    ),
    Migration(
        2,
        "playback sessions and telemetry: sessions, events, CMCD, deliveries, plays, QoE",
        (
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.playback_sessions (
                session_id text PRIMARY KEY,
                user_id text,
                tier text,
                region text,
                track_id text,
                version text,
                device text,
                variants text,
                created_at bigint,
                expires_at bigint
            ) WITH default_time_to_live = {SESSION_RETENTION_S}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.sessions_by_user (
                user_id text,
                day date,
                created_at bigint,
                session_id text,
                PRIMARY KEY ((user_id, day), created_at, session_id)
            ) WITH CLUSTERING ORDER BY (created_at DESC, session_id DESC)
              AND default_time_to_live = {SESSION_RETENTION_S}
            """,
            # Telemetry rows are written first-write-wins (USING TIMESTAMP running backwards;
            # see streamer.sessions.scylla), which rules out time-window compaction.
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.player_events (
                session_id text,
                client_ms bigint,
                seq bigint,
                event_id text,
                received_ms bigint,
                type text,
                track_id text,
                position_s double,
                offline boolean,
                pathway text,
                rendition text,
                error_code text,
                error_message text,
                fatal boolean,
                extra text,
                PRIMARY KEY ((session_id), client_ms, seq, event_id)
            ) WITH default_time_to_live = {EVENT_RETENTION_S}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.cmcd_samples (
                session_id text,
                received_ms bigint,
                sample_id text,
                route text,
                object text,
                status int,
                keys text,
                PRIMARY KEY ((session_id), received_ms, sample_id)
            ) WITH default_time_to_live = {CMCD_RETENTION_S}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.segment_deliveries (
                session_id text,
                delivered_ms bigint,
                name text,
                track_id text,
                version text,
                rendition text,
                start_s double,
                duration_s double,
                PRIMARY KEY ((session_id), delivered_ms, name)
            ) WITH default_time_to_live = {EVENT_RETENTION_S}
            """,
            # Royalty plays are kept until deleted on purpose: no TTL.
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.plays_by_session (
                session_id text PRIMARY KEY,
                track_id text,
                day date,
                played_ms bigint,
                offline boolean
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.plays_by_track_day (
                track_id text,
                day date,
                shard int,
                session_id text,
                PRIMARY KEY ((track_id, day, shard), session_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.track_plays_by_day (
                track_id text,
                year int,
                day date,
                plays counter,
                PRIMARY KEY ((track_id, year), day)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.play_recounts_due (
                day date,
                shard int,
                track_id text,
                PRIMARY KEY ((day, shard), track_id)
            )
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.session_qoe (
                session_id text PRIMARY KEY,
                track_id text,
                played_s double,
                startup_s double,
                stalls int,
                stalled_s double,
                rebuffer_ratio double,
                average_bitrate_kbps double,
                bitrate_switches int,
                errors int,
                fatal_errors int,
                ended boolean,
                pathway text
            ) WITH default_time_to_live = {SESSION_RETENTION_S}
            """,
        ),
    ),
    Migration(
        3,
        "drop session_qoe: QoE is computed where it is read, not stored",
        ("DROP TABLE IF EXISTS {keyspace}.session_qoe",),
    ),
    # The audit log (streamer.audit.scylla): entries in partitions of AUDIT_EPOCH_ENTRIES per
    # stream, appended with conditional batches; the checkpoints of every stream.
    Migration(
        4,
        "audit log: audit_entries, audit_heads",
        (
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.audit_entries (
                stream text,
                epoch bigint,
                seq bigint,
                event_id text,
                at_us bigint,
                action text,
                actor text,
                subject text,
                details text,
                key_id text,
                prev_hash text,
                hash text,
                PRIMARY KEY ((stream, epoch), seq)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.audit_heads (
                scope text,
                stream text,
                seq bigint,
                hash text,
                PRIMARY KEY ((scope), stream)
            )
            """,
        ),
    ),
    Migration(
        5,
        "offline downloads: devices per account, download licences",
        (
            # One partition per account; `devices_version` (static) is the compare-and-set
            # token every registration bumps with an LWT, so the device limit holds under races.
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.offline_devices (
                user_id text,
                device_id text,
                public_key blob,
                name text,
                registered_at bigint,
                devices_version int static,
                PRIMARY KEY ((user_id), device_id)
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.offline_licences (
                licence_id text PRIMARY KEY,
                device_id text,
                user_id text,
                track_id text,
                version text,
                renditions text,
                granted_at bigint,
                expires_at bigint,
                revoked_at bigint,
                revoked_by text
            )
            """,
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.offline_licences_by_device (
                user_id text,
                device_id text,
                licence_id text,
                PRIMARY KEY ((user_id, device_id), licence_id)
            )
            """,
        ),
    ),
    # Audio ads (streamer.ads, docs/decisions/0011): campaigns, decisions by listener day (frequency
    # caps, the last break) and by campaign day (pacing), impressions and quartiles by
    # campaign day (reports). Keys are the records' identities: writes are idempotent.
    Migration(
        6,
        "audio ads: ad_campaigns, ad_decisions_by_user, ad_decisions_by_campaign, ad_events",
        (
            """
            CREATE TABLE IF NOT EXISTS {keyspace}.ad_campaigns (
                campaign_id text PRIMARY KEY,
                doc text
            )
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.ad_decisions_by_user (
                user_id text,
                day date,
                decision_id text,
                session_id text,
                campaign_id text,
                ad_id text,
                break_index int,
                decided_at double,
                reason text,
                PRIMARY KEY ((user_id, day), decision_id)
            ) WITH default_time_to_live = {AD_RETENTION_S}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.ad_decisions_by_campaign (
                campaign_id text,
                day date,
                decision_id text,
                PRIMARY KEY ((campaign_id, day), decision_id)
            ) WITH default_time_to_live = {AD_RETENTION_S}
            """,
            f"""
            CREATE TABLE IF NOT EXISTS {{keyspace}}.ad_events (
                campaign_id text,
                day date,
                decision_id text,
                event text,
                at double,
                source text,
                PRIMARY KEY ((campaign_id, day), decision_id, event)
            ) WITH default_time_to_live = {AD_RETENTION_S}
            """,
        ),
    ),
)

_BOOTSTRAP = (
    "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = {replication}",
    """
    CREATE TABLE IF NOT EXISTS {keyspace}.schema_migrations (
        version int PRIMARY KEY,
        description text,
        state text,
        owner text,
        started_at timestamp,
        applied_at timestamp
    )
    """,
)


def migrate(settings: Settings, replication: str = DEFAULT_REPLICATION) -> list[str]:
    """Create or upgrade the keyspace `settings.cql_keyspace`; the migrations this call applied.

    For `streamer db migrate`. Each entry reads "<version>: <description>". Safe to run again
    and from several processes at once.
    """
    with open_cql_session(settings, use_keyspace=False) as session:
        return apply_migrations(session, keyspace_name(settings), replication)


def apply_migrations(
    session: CqlSession,
    keyspace: str,
    replication: str = DEFAULT_REPLICATION,
    migrations: tuple[Migration, ...] = MIGRATIONS,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Apply `migrations` not yet recorded in `keyspace`, in version order."""
    _check_migrations(migrations)
    replication = replication.strip()
    if not (replication.startswith("{") and replication.endswith("}")):
        raise ConfigError(
            f"CQL replication must be a map such as {DEFAULT_REPLICATION}; got {replication!r}"
        )
    for text in _BOOTSTRAP:
        session.execute_schema(
            text.format(keyspace=keyspace, replication=replication),
            action=f"create keyspace {keyspace} and its schema_migrations table",
        )
    owner = f"migrator-{uuid.uuid4().hex[:12]}"
    applied: list[str] = []
    for migration in sorted(migrations, key=lambda m: m.version):
        if _run_or_wait(session, keyspace, migration, owner, clock, sleep):
            applied.append(f"{migration.version}: {migration.description}")
    return applied


def open_migrated_session(settings: Settings) -> CqlSession:
    """A session in the configured keyspace, for a store to own; ConfigError saying to run
    `streamer db migrate` if the schema is behind (the session is closed then)."""
    session = open_cql_session(settings)
    try:
        require_current_schema(session, keyspace_name(settings))
    except BaseException:
        session.close()
        raise
    return session


def require_current_schema(
    session: CqlSession, keyspace: str, migrations: tuple[Migration, ...] = MIGRATIONS
) -> None:
    """Raise ConfigError, saying to run `streamer db migrate`, if a migration is not applied."""
    tables = session.execute(
        _TABLES, (keyspace,), action=f"list the tables of keyspace {keyspace}"
    ).all()
    if "schema_migrations" not in {row["table_name"] for row in tables}:
        raise ConfigError(
            f"keyspace {keyspace!r} at {session.where} has no schema yet; run `streamer db migrate`"
        )
    rows = session.execute(
        Cql(f"SELECT version, state FROM {keyspace}.schema_migrations", idempotent=True),
        action=f"read the schema version of keyspace {keyspace}",
    ).all()
    done = {row["version"] for row in rows if row["state"] == "applied"}
    missing = [m for m in sorted(migrations, key=lambda m: m.version) if m.version not in done]
    if missing:
        listed = "; ".join(f"{m.version}: {m.description}" for m in missing)
        raise ConfigError(
            f"keyspace {keyspace!r} at {session.where} lacks schema migrations ({listed});"
            " run `streamer db migrate`"
        )


_TABLES = Cql(
    "SELECT table_name FROM system_schema.tables WHERE keyspace_name = ?",
    idempotent=True,
    consistency="LOCAL_ONE",  # system_schema is local to each node
)


def _run_or_wait(
    session: CqlSession,
    keyspace: str,
    migration: Migration,
    owner: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> bool:
    """Apply one migration, or wait for the process applying it; True if this one applied it."""
    table = f"{keyspace}.schema_migrations"
    what = f"schema migration {migration.version} ({migration.description}) in {keyspace}"
    claim = Cql(
        f"INSERT INTO {table} (version, description, state, owner, started_at)"
        " VALUES (?, ?, 'applying', ?, ?) IF NOT EXISTS",
        idempotent=False,
    )
    take_over = Cql(
        f"UPDATE {table} SET owner = ?, started_at = ? WHERE version = ?"
        " IF state = 'applying' AND owner = ? AND started_at = ?",
        idempotent=False,
    )
    finish = Cql(
        f"UPDATE {table} SET state = 'applied', applied_at = ? WHERE version = ? IF owner = ?",
        idempotent=False,
    )
    won, current = session.execute(
        claim,
        (migration.version, migration.description, owner, clock()),
        action=f"claim {what}",
    ).conditional()
    waiting_since, waiting_for = clock(), current.get("owner")
    while not won:
        if current.get("state") == "applied":
            return False
        started = current["started_at"]
        if current.get("owner") != waiting_for:  # taken over by a third: it is alive
            waiting_since, waiting_for = clock(), current.get("owner")
        # Stale by its own record, or by how long this process has watched it stand still
        # (a record written by a host whose clock runs ahead never looks old).
        waited_s = (clock() - waiting_since).total_seconds()
        if max(_age_s(clock(), started), waited_s) > STALE_MIGRATION_S:
            won, current = session.execute(
                take_over,
                (owner, clock(), migration.version, current["owner"], started),
                action=f"take over {what} from {current['owner']}",
            ).conditional()
            continue
        sleep(MIGRATION_POLL_S)
        current = _read_serial(session, table, migration.version, what)
    for text in migration.statements:
        session.execute_schema(text.format(keyspace=keyspace), action=f"apply {what}")
    done, current = session.execute(
        finish, (clock(), migration.version, owner), action=f"record {what}"
    ).conditional()
    if not done:
        raise StorageError(
            f"{what} was taken over by {current.get('owner')} while {owner} applied it;"
            " run `streamer db migrate` again"
        )
    return True


def _read_serial(session: CqlSession, table: str, version: int, what: str) -> dict[str, Any]:
    """The migration's row as the last conditional write left it."""
    read = Cql(
        f"SELECT state, owner, started_at FROM {table} WHERE version = ?",
        idempotent=True,
        consistency="LOCAL_SERIAL",
    )
    row = session.execute(read, (version,), action=f"wait for {what}").one()
    if row is None:
        raise StorageError(f"{what} was claimed, then its record vanished; run it again")
    return row


def _age_s(now: datetime, started: datetime | None) -> float:
    if started is None:
        return float("inf")
    if started.tzinfo is None:  # the driver returns CQL timestamps as naive UTC
        started = started.replace(tzinfo=UTC)
    return (now - started).total_seconds()


def _check_migrations(migrations: tuple[Migration, ...]) -> None:
    versions = [migration.version for migration in migrations]
    if len(set(versions)) != len(versions) or any(version < 1 for version in versions):
        raise ValueError(f"schema migration versions must be distinct and positive: {versions}")
