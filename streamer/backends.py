"""The storage registry: settings name an implementation, these functions open it.

Each setting names an embedded store (a file or directory in the data directory) or a real
backend (opened by its `from_settings`). A store's module is imported only when chosen, so a
real backend's driver is needed only where it runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

from streamer.ads.port import AD_STORE_FILE, AdStore
from streamer.audit.port import AuditLog
from streamer.errors import ConfigError
from streamer.jobs.port import JOB_STORE_FILE, JobStore
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


def _embedded(module: str, class_name: str, file_name: str) -> Callable[[Settings], Any]:
    """An embedded store on a file (or directory) of its own in the data directory."""

    def open_embedded(settings: Settings) -> Any:
        return getattr(importlib.import_module(module), class_name)(settings.data_dir / file_name)

    return open_embedded


def _real(backend: str, module: str, class_name: str, setting: str) -> Callable[[Settings], Any]:
    """A real backend's store, opened by its `from_settings`; its module (and driver) is
    imported only when chosen."""

    def open_real(settings: Settings) -> Any:
        try:
            store_class = getattr(importlib.import_module(module), class_name)
        except ImportError as exc:
            raise ConfigError(
                f"{ENV_PREFIX}{setting} is {backend!r}, but {module} cannot be imported ({exc}); "
                "install the project with its dependencies (pip install -e .)"
            ) from exc
        return store_class.from_settings(settings)

    return open_real


_Opener = TypeVar("_Opener")

_OBJECT_STORES: dict[str, Callable[[Settings], ObjectStore]] = {
    "local": _embedded("streamer.objects.local", "LocalObjectStore", "objects"),
    "s3": _real("s3", "streamer.objects.s3", "S3ObjectStore", "OBJECT_STORE"),
}
_JOB_STORES: dict[str, Callable[[Settings], JobStore]] = {
    "sqlite": _embedded("streamer.jobs.sqlite", "SQLiteJobStore", JOB_STORE_FILE),
    "scylla": _real("scylla", "streamer.jobs.scylla", "ScyllaJobStore", "JOB_STORE"),
}
# The audit log and the offline store live beside the sessions (in the data directory, or the
# same keyspace): SESSION_STORE chooses the backend of all three.
_SESSION_STORES: dict[str, Callable[[Settings], SessionStore]] = {
    "sqlite": _embedded("streamer.sessions.sqlite", "SQLiteSessionStore", SESSION_STORE_FILE),
    "scylla": _real("scylla", "streamer.sessions.scylla", "ScyllaSessionStore", "SESSION_STORE"),
}
_AUDIT_LOGS: dict[str, Callable[[Settings], AuditLog]] = {
    "sqlite": _embedded("streamer.audit.sqlite", "SQLiteAuditLog", SESSION_STORE_FILE),
    "scylla": _real("scylla", "streamer.audit.scylla", "ScyllaAuditLog", "SESSION_STORE"),
}
_AD_STORES: dict[str, Callable[[Settings], AdStore]] = {
    "sqlite": _embedded("streamer.ads.sqlite", "SQLiteAdStore", AD_STORE_FILE),
    "scylla": _real("scylla", "streamer.ads.scylla", "ScyllaAdStore", "AD_STORE"),
}
_OFFLINE_STORES: dict[str, Callable[[Settings], OfflineStore]] = {
    "sqlite": _embedded("streamer.offline.sqlite", "SQLiteOfflineStore", OFFLINE_STORE_FILE),
    "scylla": _real("scylla", "streamer.offline.scylla", "ScyllaOfflineStore", "SESSION_STORE"),
}


def _choose(registry: dict[str, _Opener], name: str, setting: str) -> _Opener:
    try:
        return registry[name]
    except KeyError:
        choices = ", ".join(repr(choice) for choice in sorted(registry))
        raise ConfigError(f"{ENV_PREFIX}{setting} is {name!r}; choose one of {choices}") from None
