"""The storage registry opens what the settings name, and explains what it cannot open."""

from __future__ import annotations

import dataclasses

import pytest

from streamer.backends import open_job_store, open_object_store, open_offline_store
from streamer.errors import ConfigError
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.offline.sqlite import SQLiteOfflineStore
from streamer.settings import Settings


def test_embedded_defaults(settings: Settings) -> None:
    objects = open_object_store(settings)
    jobs = open_job_store(settings)
    assert isinstance(objects, LocalObjectStore)
    assert objects.root == settings.data_dir / "objects"
    assert isinstance(jobs, SQLiteJobStore)
    assert jobs.path == settings.data_dir / "jobs.sqlite3"


def test_s3_needs_credentials(settings: Settings) -> None:
    # Opening S3 for real is tested against a server in tests/backends.
    with pytest.raises(
        ConfigError, match="STREAMER_S3_ACCESS_KEY and STREAMER_S3_SECRET_KEY must both be set"
    ):
        open_object_store(dataclasses.replace(settings, object_store="s3"))


def test_unknown_object_store(settings: Settings) -> None:
    with pytest.raises(
        ConfigError, match="STREAMER_OBJECT_STORE is 'ftp'; choose one of 'local', 's3'"
    ):
        open_object_store(dataclasses.replace(settings, object_store="ftp"))


def test_unknown_job_store(settings: Settings) -> None:
    with pytest.raises(
        ConfigError, match="STREAMER_JOB_STORE is 'redis'; choose one of 'scylla', 'sqlite'"
    ):
        open_job_store(dataclasses.replace(settings, job_store="redis"))


def test_the_offline_store_sits_beside_the_sessions(settings: Settings) -> None:
    store = open_offline_store(settings)
    assert isinstance(store, SQLiteOfflineStore)
    assert store.path == settings.data_dir / "offline.sqlite3"
    with pytest.raises(ConfigError, match="STREAMER_SESSION_STORE is 'mongo'"):
        open_offline_store(dataclasses.replace(settings, session_store="mongo"))
