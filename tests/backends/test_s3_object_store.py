"""What the S3 store does beyond the contract suite: parts, integrity, cleanup, configuration.

Most tests use a fresh bucket on the server of `scripts/services up s3`; the retry tests talk to
a tiny loopback HTTP server that answers every request with one S3 error.
"""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import io
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from minio import Minio

from drm import KeyRing, new_kek
from streamer.backends import open_object_store
from streamer.errors import ConfigError, StorageError
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects import s3 as s3_object_store
from streamer.objects.s3 import (
    MAX_BACKOFF_S,
    MIN_PART_SIZE,
    RETRY_DEADLINE_S,
    S3ObjectStore,
    make_client,
)
from streamer.settings import Settings, load_settings
from streamer_app.cli import main as cli_main
from tests.backends.services import drop_bucket, fresh_bucket_name, s3_settings
from transcoder.worker import IngestWorker

pytestmark = pytest.mark.services  # needs `scripts/services up`


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return s3_settings(tmp_path, fresh_bucket_name())


@pytest.fixture
def store(settings: Settings) -> Iterator[S3ObjectStore]:
    with ExitStack() as cleanup:
        opened = S3ObjectStore.from_settings(settings, part_size=MIN_PART_SIZE)
        cleanup.callback(drop_bucket, opened, settings)
        yield opened


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_the_registry_opens_the_s3_store_and_creates_its_bucket(settings: Settings) -> None:
    store = open_object_store(dataclasses.replace(settings, object_store="s3"))
    assert isinstance(store, S3ObjectStore)
    assert make_client(settings).bucket_exists(settings.s3_bucket)
    assert list(store.list("")) == []
    drop_bucket(store, settings)


def test_a_large_master_goes_up_in_parts(store: S3ObjectStore, tmp_path: Path) -> None:
    data = bytes(range(256)) * (2 * MIN_PART_SIZE // 256) + b"tail"  # three parts
    master = tmp_path / "master.wav"
    master.write_bytes(data)
    info = store.put_file("masters/m1", master, "audio/wav")
    assert (info.size, info.etag) == (len(data), sha256(data))
    assert store.stat("masters/m1") == info
    # S3 gives a multipart object the ETag "<md5 of the part md5s>-<parts>".
    raw = make_client_for(store).stat_object(store.bucket, "masters/m1")
    assert (raw.etag or "").endswith("-3")
    boundary = MIN_PART_SIZE
    assert store.get_range("masters/m1", boundary - 2, 4) == data[boundary - 2 : boundary + 2]
    assert store.get("masters/m1") == data


def test_large_bytes_go_up_in_parts_too(store: S3ObjectStore) -> None:
    data = b"\x07" * (MIN_PART_SIZE + 1)
    assert store.put("big", data, "application/octet-stream").etag == sha256(data)
    assert (make_client_for(store).stat_object(store.bucket, "big").etag or "").endswith("-2")
    assert store.get_range("big", MIN_PART_SIZE - 1, 5) == b"\x07\x07"


def test_a_source_that_changes_during_the_upload_is_not_left_behind(
    store: S3ObjectStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    master = tmp_path / "master.wav"
    master.write_bytes(b"what is uploaded")
    # As if the file had held other bytes when it was hashed before the upload.
    monkeypatch.setattr(s3_object_store, "_hash_file", lambda path: (sha256(b"other"), 16))
    with pytest.raises(StorageError, match=r"master\.wav' changed while it was stored as 'm'"):
        store.put_file("m", master, "audio/wav")
    assert list(store.list("")) == []


@pytest.mark.parametrize("cache_control", [None, "", "-", "+", "public, max-age=60", "a b%20"])
@pytest.mark.parametrize("content_type", ['audio/mp4; codecs="mp4a.40.2"', "x/y z"])
def test_metadata_round_trips_through_one_header(
    store: S3ObjectStore, content_type: str, cache_control: str | None
) -> None:
    info = store.put("k", b"data", content_type, cache_control)
    assert store.stat("k") == info
    assert (info.content_type, info.cache_control) == (content_type, cache_control)


def test_an_object_without_our_metadata_is_a_storage_error(store: S3ObjectStore) -> None:
    make_client_for(store).put_object(store.bucket, "foreign", io.BytesIO(b"x"), 1)
    with pytest.raises(StorageError, match=r"'foreign'.*no readable x-amz-meta-object-info"):
        store.stat("foreign")
    assert store.get("foreign") == b"x"


def test_abandoned_multipart_uploads_are_aborted(store: S3ObjectStore) -> None:
    client = make_client_for(store)
    client._create_multipart_upload(store.bucket, "masters/crashed", {})
    assert store.cleanup_incomplete_uploads(older_than=timedelta(hours=1)) == 0
    assert store.cleanup_incomplete_uploads(older_than=timedelta(0)) == 1
    assert client._list_multipart_uploads(store.bucket).uploads == []
    assert store.cleanup_incomplete_uploads(older_than=timedelta(0)) == 0


def test_the_cli_aborts_abandoned_uploads_and_keeps_recent_ones(
    store: S3ObjectStore,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = make_client_for(store)
    client._create_multipart_upload(store.bucket, "masters/crashed", {})
    for name, value in _s3_environment(settings).items():
        monkeypatch.setenv(name, value)
    data = ["--data-dir", str(settings.data_dir)]
    assert cli_main([*data, "objects", "cleanup-uploads"]) == 0  # a day by default
    assert capsys.readouterr().out == "aborted 0 incomplete uploads started over 24 h ago\n"
    assert [u.object_name for u in client._list_multipart_uploads(store.bucket).uploads] == [
        "masters/crashed"
    ]
    assert cli_main([*data, "objects", "cleanup-uploads", "--older-than", "0"]) == 0
    assert capsys.readouterr().out == "aborted 1 incomplete uploads started over 0 h ago\n"
    assert client._list_multipart_uploads(store.bucket).uploads == []


def test_an_ingest_worker_sweeps_abandoned_uploads(
    store: S3ObjectStore, settings: Settings
) -> None:
    client = make_client_for(store)
    client._create_multipart_upload(store.bucket, "masters/crashed", {})
    jobs = SQLiteJobStore(settings.data_dir / "jobs.sqlite3")
    kek = new_kek("kek-test")
    worker = IngestWorker(settings, store, jobs, KeyRing(kek.kek_id, (kek,)))
    assert worker.sweep_abandoned_uploads() == 0  # younger than a day
    assert worker.sweep_abandoned_uploads(older_than=timedelta(0)) == 1
    assert client._list_multipart_uploads(store.bucket).uploads == []


def _s3_environment(settings: Settings) -> dict[str, str]:
    """The STREAMER_* variables that point `streamer` at this test's bucket."""
    return {
        "STREAMER_OBJECT_STORE": "s3",
        "STREAMER_S3_ENDPOINT": settings.s3_endpoint,
        "STREAMER_S3_ACCESS_KEY": settings.s3_access_key,
        "STREAMER_S3_SECRET_KEY": settings.s3_secret_key,
        "STREAMER_S3_BUCKET": settings.s3_bucket,
        "STREAMER_S3_SECURE": "true" if settings.s3_secure else "false",
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"s3_endpoint": "http://127.0.0.1:18333"}, "STREAMER_S3_ENDPOINT is 'http://"),
        ({"s3_endpoint": ""}, "STREAMER_S3_ENDPOINT is ''; expected host:port"),
        ({"s3_secret_key": ""}, "STREAMER_S3_ACCESS_KEY and STREAMER_S3_SECRET_KEY must"),
        ({"s3_bucket": "a"}, "STREAMER_S3_BUCKET is 'a'"),
        ({"s3_bucket": "two..dots"}, "STREAMER_S3_BUCKET is 'two..dots'"),
    ],
)
def test_configuration_errors_name_the_variable(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    # Port 1 refuses at once, should a check be missing and the store reach the network.
    values = {"s3_endpoint": "127.0.0.1:1", "s3_access_key": "a", "s3_secret_key": "b"}
    overrides: dict[str, Any] = {**values, **change}
    settings = load_settings(environ={}, data_dir=tmp_path, **overrides)
    with pytest.raises(ConfigError, match=message):
        S3ObjectStore.from_settings(settings)


# Retries against a server that always answers with one error


class _OneAnswer(http.server.BaseHTTPRequestHandler):
    status = 503
    code = "SlowDown"
    requests = 0

    def _answer(self) -> None:
        type(self).requests += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = (
            f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{self.code}</Code>"
            f"<Message>answered by the test</Message><Resource>{self.path}</Resource>"
            "<RequestId>1</RequestId></Error>"
        ).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:
        pass


class ManualClock:
    """A clock that only moves when the store sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@contextmanager
def answered_by(
    status: int, code: str, tmp_path: Path, clock: ManualClock
) -> Iterator[tuple[S3ObjectStore, type[_OneAnswer]]]:
    """A store on a loopback server that answers every request with `status` and `code`."""
    handler = type("Handler", (_OneAnswer,), {"status": status, "code": code, "requests": 0})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        settings = load_settings(
            environ={},
            data_dir=tmp_path,
            s3_endpoint=f"127.0.0.1:{server.server_address[1]}",
            s3_access_key="a",
            s3_secret_key="b",
        )
        client = make_client(settings)
        # A known region spares the SDK its bucket-location request: one call, one request.
        client._region_map["streamer"] = "us-east-1"
        store = S3ObjectStore(
            client, "streamer", settings.s3_endpoint, sleep=clock.sleep, clock=lambda: clock.now
        )
        yield store, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_slow_down_is_retried_with_growing_backoff_until_the_deadline(tmp_path: Path) -> None:
    clock = ManualClock()
    with answered_by(503, "SlowDown", tmp_path, clock) as (store, handler):
        with pytest.raises(StorageError, match=r"SlowDown \(503\).*gave up after \d+ attempts"):
            store.put("k", b"v", "text/plain")
        assert handler.requests == len(clock.sleeps) + 1
    assert sum(clock.sleeps) == pytest.approx(RETRY_DEADLINE_S)
    assert max(clock.sleeps) <= MAX_BACKOFF_S
    assert clock.sleeps[3] > clock.sleeps[0]


def test_access_denied_is_not_retried(tmp_path: Path) -> None:
    clock = ManualClock()
    with answered_by(403, "AccessDenied", tmp_path, clock) as (store, handler):
        with pytest.raises(StorageError, match=r"cannot get object 'k'.*AccessDenied \(403\)"):
            store.get("k")
        assert handler.requests == 1
    assert clock.sleeps == []


def make_client_for(store: S3ObjectStore) -> Minio:
    """The SDK client under `store`, to look at what S3 itself reports."""
    return store._client
