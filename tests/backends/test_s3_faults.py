"""The S3 store across server failures: bounded retries, clear errors, and recovery.

Each test runs its own versitygw (see conftest.PrivateS3Server), so stopping it disturbs no
other test. The store's client is created once per test and survives the server's restarts.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from streamer.errors import ObjectNotFound, StorageError
from streamer.objects.s3 import S3ObjectStore
from tests.backends.conftest import PrivateS3Server

pytestmark = pytest.mark.services  # needs `scripts/services up`

DEADLINE_S = 3.0
# Refused connections fail at once; what the deadline leaves is one attempt and one backoff.
SLACK_S = 2.5


def test_put_gives_up_after_the_deadline_and_the_store_recovers_when_the_server_returns(
    private_s3: PrivateS3Server, tmp_path: Path
) -> None:
    store = S3ObjectStore.from_settings(private_s3.settings(tmp_path), retry_deadline_s=DEADLINE_S)
    store.put("tracks/before", b"before", "text/plain")

    private_s3.stop()
    started = time.monotonic()
    with pytest.raises(StorageError) as caught:
        store.put("tracks/during", b"during", "text/plain")
    elapsed = time.monotonic() - started
    assert DEADLINE_S <= elapsed < DEADLINE_S + SLACK_S
    message = str(caught.value)
    assert "cannot put object 'tracks/during' in bucket 'faults'" in message
    assert f"127.0.0.1:{private_s3.port}" in message
    assert "Connection refused" in message
    assert "gave up after" in message
    assert not isinstance(caught.value, ObjectNotFound)
    assert caught.value.http_status == 503

    private_s3.start()
    store.put("tracks/after", b"after", "text/plain")  # the same store, the same client
    assert store.get("tracks/before") == b"before"
    assert store.get("tracks/after") == b"after"
    assert list(store.list("tracks/")) == ["tracks/after", "tracks/before"]


def test_a_put_retried_through_a_server_restart_succeeds(
    private_s3: PrivateS3Server, tmp_path: Path
) -> None:
    store = S3ObjectStore.from_settings(private_s3.settings(tmp_path), retry_deadline_s=15.0)
    store.put("warm", b"pooled connection", "text/plain")  # leaves a keep-alive connection
    private_s3.stop()
    outcome: list[object] = []

    def put() -> None:
        try:
            outcome.append(store.put("tracks/t1/current.json", b'{"v": 2}', "application/json"))
        except Exception as exc:
            outcome.append(exc)

    writer = threading.Thread(target=put)
    writer.start()
    time.sleep(1.0)  # the put is now retrying against a closed port
    assert writer.is_alive()
    private_s3.start()
    writer.join(timeout=20)
    assert not writer.is_alive()
    assert not isinstance(outcome[0], Exception), outcome[0]
    assert store.get("tracks/t1/current.json") == b'{"v": 2}'


def test_every_call_fails_with_storage_error_while_the_server_is_down(
    private_s3: PrivateS3Server, tmp_path: Path
) -> None:
    store = S3ObjectStore.from_settings(private_s3.settings(tmp_path), retry_deadline_s=0.5)
    store.put("k", b"v", "text/plain")
    source = tmp_path / "master.wav"
    source.write_bytes(b"RIFF" * 1000)
    private_s3.stop()
    calls: dict[str, Callable[[], object]] = {
        "get": lambda: store.get("k"),
        "read": lambda: store.get_range("k", 1, 2),
        "stat": lambda: store.stat("k"),
        "list": lambda: list(store.list("")),
        "put": lambda: store.put("k", b"w", "text/plain"),
        "put_file": lambda: store.put_file("m", source, "audio/wav"),
        "delete": lambda: store.delete("k"),
    }
    for name, call in calls.items():
        started = time.monotonic()
        with pytest.raises(StorageError, match="Connection refused") as caught:
            call()
        assert type(caught.value) is StorageError, name
        assert time.monotonic() - started < 0.5 + SLACK_S, name


def test_wrong_credentials_fail_at_once_without_the_secret_in_the_message(
    private_s3: PrivateS3Server, tmp_path: Path
) -> None:
    settings = private_s3.settings(tmp_path)
    S3ObjectStore.from_settings(settings)  # creates the bucket
    wrong = "not-the-secret-" + "x" * 20
    started = time.monotonic()
    with pytest.raises(StorageError, match=r"SignatureDoesNotMatch|AccessDenied") as caught:
        S3ObjectStore.from_settings(dataclasses.replace(settings, s3_secret_key=wrong))
    assert time.monotonic() - started < 1.0
    assert wrong not in str(caught.value)
    assert settings.s3_secret_key not in str(caught.value)
