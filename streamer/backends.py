"""The storage registry: settings name an implementation, these functions open it.

Embedded defaults are imported here; real backends are imported only when chosen, so their
drivers are needed only where they run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from streamer.ads.port import AD_STORE_FILE, AdStore
from streamer.audit.port import AuditLog
from streamer.errors import ConfigError
from streamer.jobs.port import JobStore
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.objects.port import ObjectStore
from streamer.offline.port import OFFLINE_STORE_FILE, OfflineStore
from streamer.sessions.port import SESSION_STORE_FILE, SessionStore
from streamer.settings import ENV_PREFIX, Settings


def open_object_store(settings: Settings) -> ObjectStore:
    """The object store that `settings.object_store` names."""
    return _choose(_OBJECT_STORES, settings.object_store, "OBJECT_STORE")(settings)


def open_job_store(settings: Settings) -> JobStore:
    """The job store that `settings.job_store` names."""
    return _choose(_JOB_STORES, settings.job_store, "JOB_STORE")(settings)


def open_session_store(settings: Settings) -> SessionStore:
    """The session store that `settings.session_store` names: one object, all three ports
    (streamer.sessions.port); hand each caller the port it uses."""
    return _choose(_SESSION_STORES, settings.session_store, "SESSION_STORE")(settings)


def open_audit_log(settings: Settings) -> AuditLog:
    """The audit log, kept by the session store that `settings.session_store` names."""
    return _choose(_AUDIT_LOGS, settings.session_store, "SESSION_STORE")(settings)


def open_ad_store(settings: Settings) -> AdStore:
    """The ad store that `settings.ad_store` names (streamer.ads.port)."""
    return _choose(_AD_STORES, settings.ad_store, "AD_STORE")(settings)


def open_offline_store(settings: Settings) -> OfflineStore:
    """The devices and download licences store, on the backend `settings.session_store` names
    (it lives beside the sessions: a SQLite file in the data directory, or the same keyspace)."""
    return _choose(_OFFLINE_STORES, settings.session_store, "SESSION_STORE")(settings)


def _local_object_store(settings: Settings) -> ObjectStore:
    return LocalObjectStore(settings.data_dir / "objects")


def _s3_object_store(settings: Settings) -> ObjectStore:
    try:
        from streamer.objects.s3 import S3ObjectStore
    except ImportError as exc:
        raise _backend_missing(exc, "s3", "streamer.objects.s3", "OBJECT_STORE") from exc
    store: ObjectStore = S3ObjectStore.from_settings(settings)
    return store


def _sqlite_job_store(settings: Settings) -> JobStore:
    return SQLiteJobStore(settings.data_dir / "jobs.sqlite3")


def _scylla_job_store(settings: Settings) -> JobStore:
    try:
        from streamer.jobs.scylla import ScyllaJobStore
    except ImportError as exc:
        raise _backend_missing(exc, "scylla", "streamer.jobs.scylla", "JOB_STORE") from exc
    store: JobStore = ScyllaJobStore.from_settings(settings)
    return store


def _sqlite_session_store(settings: Settings) -> SessionStore:
    from streamer.sessions.sqlite import SQLiteSessionStore

    return SQLiteSessionStore(settings.data_dir / SESSION_STORE_FILE)


def _scylla_session_store(settings: Settings) -> SessionStore:
    try:
        from streamer.sessions.scylla import ScyllaSessionStore
    except ImportError as exc:
        raise _backend_missing(exc, "scylla", "streamer.sessions.scylla", "SESSION_STORE") from exc
    store: SessionStore = ScyllaSessionStore.from_settings(settings)
    return store


def _sqlite_audit_log(settings: Settings) -> AuditLog:
    from streamer.audit.sqlite import SQLiteAuditLog

    return SQLiteAuditLog(settings.data_dir / SESSION_STORE_FILE)


def _scylla_audit_log(settings: Settings) -> AuditLog:
    try:
        from streamer.audit.scylla import ScyllaAuditLog
    except ImportError as exc:
        raise _backend_missing(exc, "scylla", "streamer.audit.scylla", "SESSION_STORE") from exc
    log: AuditLog = ScyllaAuditLog.from_settings(settings)
    return log


def _sqlite_ad_store(settings: Settings) -> AdStore:
    from streamer.ads.sqlite import SQLiteAdStore

    return SQLiteAdStore(settings.data_dir / AD_STORE_FILE)


def _scylla_ad_store(settings: Settings) -> AdStore:
    try:
        from streamer.ads.scylla import ScyllaAdStore
    except ImportError as exc:
        raise _backend_missing(exc, "scylla", "streamer.ads.scylla", "AD_STORE") from exc
    store: AdStore = ScyllaAdStore.from_settings(settings)
    return store


def _sqlite_offline_store(settings: Settings) -> OfflineStore:
    from streamer.offline.sqlite import SQLiteOfflineStore

    return SQLiteOfflineStore(settings.data_dir / OFFLINE_STORE_FILE)


def _scylla_offline_store(settings: Settings) -> OfflineStore:
    try:
        from streamer.offline.scylla import ScyllaOfflineStore
    except ImportError as exc:
        raise _backend_missing(exc, "scylla", "streamer.offline.scylla", "SESSION_STORE") from exc
    store: OfflineStore = ScyllaOfflineStore.from_settings(settings)
    return store


_Opener = TypeVar("_Opener")

_OBJECT_STORES: dict[str, Callable[[Settings], ObjectStore]] = {
    "local": _local_object_store,
    "s3": _s3_object_store,
}
_JOB_STORES: dict[str, Callable[[Settings], JobStore]] = {
    "sqlite": _sqlite_job_store,
    "scylla": _scylla_job_store,
}
_SESSION_STORES: dict[str, Callable[[Settings], SessionStore]] = {
    "sqlite": _sqlite_session_store,
    "scylla": _scylla_session_store,
}
_AUDIT_LOGS: dict[str, Callable[[Settings], AuditLog]] = {
    "sqlite": _sqlite_audit_log,
    "scylla": _scylla_audit_log,
}

_AD_STORES: dict[str, Callable[[Settings], AdStore]] = {
    "sqlite": _sqlite_ad_store,
    "scylla": _scylla_ad_store,
}
_OFFLINE_STORES: dict[str, Callable[[Settings], OfflineStore]] = {
    "sqlite": _sqlite_offline_store,
    "scylla": _scylla_offline_store,
}


def _choose(registry: dict[str, _Opener], name: str, setting: str) -> _Opener:
    try:
        return registry[name]
    except KeyError:
        choices = ", ".join(repr(choice) for choice in sorted(registry))
        raise ConfigError(f"{ENV_PREFIX}{setting} is {name!r}; choose one of {choices}") from None


def _backend_missing(exc: ImportError, name: str, module: str, setting: str) -> ConfigError:
    return ConfigError(
        f"{ENV_PREFIX}{setting} is {name!r}, but {module} cannot be imported ({exc}); "
        "install the project with its dependencies (pip install -e .)"
    )
