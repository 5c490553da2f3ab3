"""The servers that `scripts/services up` started, as tests find them.

`scripts/services` writes `${STREAMER_CACHE:-~/.cache/streamer}/services.env`; variables set in
the environment win over the file. CI always starts the servers, so a missing server fails the
test with the command that starts it instead of skipping it.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, NoReturn

import pytest

from streamer.objects.s3 import S3ObjectStore, make_client
from streamer.settings import Settings, load_settings

CONNECT_TIMEOUT_S = 2.0
REAL_SERVERS = frozenset({"s3", "scylla"})  # backends that need `scripts/services up`


def backend_params(names: Iterable[str]) -> list[Any]:
    """Fixture params for a table of backends, those on real servers marked `services`."""
    return [
        pytest.param(name, marks=pytest.mark.services) if name in REAL_SERVERS else name
        for name in sorted(names)
    ]


def env_file(environ: Mapping[str, str] | None = None) -> Path:
    environ = os.environ if environ is None else environ
    cache = Path(environ.get("STREAMER_CACHE") or Path.home() / ".cache" / "streamer")
    return cache / "services.env"


def services_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables of the env file, overridden by those of the environment."""
    environ = os.environ if environ is None else environ
    values: dict[str, str] = {}
    try:
        lines = env_file(environ).read_text().splitlines()
    except FileNotFoundError:
        lines = []
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and not name.startswith("#"):
            values[name.strip()] = value.strip()
    values.update(
        (name, value)
        for name, value in environ.items()
        if name.startswith(("STREAMER_", "SERVICES_")) and name != "STREAMER_CONFIG"
    )
    return values


def missing(service: str, what: str) -> NoReturn:
    """Fail the test whose server is not there, saying how to start it."""
    pytest.fail(
        f"{what}; start it with `scripts/services up {service}` (env file: {env_file()})",
        pytrace=False,
    )


def require_listening(service: str, host: str, port: int) -> None:
    try:
        with socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S):
            return
    except OSError as exc:
        missing(service, f"no {service} server answers on {host}:{port} ({exc.strerror or exc})")


def s3_settings(tmp_path: Path, bucket: str) -> Settings:
    """Settings for the S3 server of `scripts/services`, on `bucket`."""
    env = services_env()
    if not env.get("STREAMER_S3_ACCESS_KEY"):
        missing("s3", "no S3 server is configured (no STREAMER_S3_ACCESS_KEY, no env file)")
    settings = load_settings(environ=env, data_dir=tmp_path / "data", s3_bucket=bucket)
    host, _, port = settings.s3_endpoint.rpartition(":")
    require_listening("s3", host, int(port))
    return settings


def fresh_bucket_name() -> str:
    return f"test-{uuid.uuid4().hex[:20]}"


def open_test_s3_store(tmp_path: Path, cleanup: ExitStack) -> S3ObjectStore:
    """A store on a fresh bucket of the shared S3 server; `cleanup` removes the bucket."""
    settings = s3_settings(tmp_path, fresh_bucket_name())
    store = S3ObjectStore.from_settings(settings)
    cleanup.callback(drop_bucket, store, settings)
    return store


def drop_bucket(store: S3ObjectStore, settings: Settings) -> None:
    """Remove every object and upload of the store's bucket, then the bucket."""
    for key in list(store.list("")):
        store.delete(key)
    store.cleanup_incomplete_uploads(older_than=timedelta(0))
    make_client(settings).remove_bucket(store.bucket)
