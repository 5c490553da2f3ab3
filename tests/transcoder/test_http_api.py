"""The HTTP ingest API: authorised streaming uploads become jobs; bad uploads leave nothing."""

from __future__ import annotations

import asyncio
import dataclasses
import io
from pathlib import Path

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from drm import KeyRing
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.local import LocalObjectStore
from streamer.settings import Settings
from tests.masters import make_master
from transcoder.http_api import (
    INGEST_AUDIENCE,
    ingest_token_verifier,
    install_ingest_api,
    issue_ingest_token,
)
from transcoder.worker import IngestWorker

KEY = b"k" * 32


@pytest.fixture
def jobs(settings: Settings) -> SQLiteJobStore:
    return SQLiteJobStore(settings.data_dir / "jobs.sqlite3")


@pytest.fixture
async def client(aiohttp_client, settings, store, jobs) -> TestClient:
    app = web.Application()
    small = dataclasses.replace(settings, max_upload_bytes=8 * 1024 * 1024)
    install_ingest_api(app, small, store, jobs, ingest_token_verifier(KEY))
    return await aiohttp_client(app)


def _auth(token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or issue_ingest_token(KEY, 'label-a', 600)}"}


@pytest.mark.slow
async def test_upload_is_queued_and_published_by_a_worker(
    client: TestClient, tmp_path: Path, settings: Settings, store: LocalObjectStore,
    jobs: SQLiteJobStore, ring: KeyRing,
) -> None:  # fmt: skip
    master = make_master(tmp_path / "song.flac", seconds=3.0)
    response = await client.post(
        "/v1/ingest?filename=song.flac&track_id=ISRC0001&metadata=%7B%22title%22%3A%22Song%22%7D",
        data=master.read_bytes(),
        headers=_auth(),
    )
    assert response.status == 202, await response.text()
    body = await response.json()
    assert body["state"] == "queued" and body["track_id"] == "ISRC0001"
    assert response.headers["Location"] == f"/v1/ingest/{body['job_id']}"

    worker = IngestWorker(settings, store, jobs, ring)
    done = await asyncio.to_thread(worker.run_one)
    assert done is not None and done.state == "published"

    status = await (await client.get(body["status_url"], headers=_auth())).json()
    assert status["state"] == "published" and status["progress_percent"] == 100.0
    assert status["version"] and status["error"] is None


async def test_rejected_master_reports_its_reason(
    client: TestClient, settings: Settings, store: LocalObjectStore, jobs: SQLiteJobStore,
    ring: KeyRing,
) -> None:  # fmt: skip
    response = await client.post(
        "/v1/ingest?filename=notes.wav", data=b"not audio at all\n" * 50, headers=_auth()
    )
    job_id = (await response.json())["job_id"]
    await asyncio.to_thread(IngestWorker(settings, store, jobs, ring).run_one)
    status = await (await client.get(f"/v1/ingest/{job_id}", headers=_auth())).json()
    assert status["state"] == "failed"
    assert status["error"]["code"] == "not_audio"
    assert "notes.wav" in status["error"]["message"]
    assert not [k for k in store.list("tracks/")]


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "missing_token"),
        ({"Authorization": "Basic abc"}, 401, "missing_token"),
        (_auth("not.a.jwt"), 401, "invalid_token"),
        (_auth(issue_ingest_token(b"x" * 32, "someone", 600)), 401, "invalid_token"),
        (_auth(issue_ingest_token(KEY, "late", -3600)), 401, "token_expired"),
        (
            _auth(jwt.encode({"sub": "l", "aud": "streamer-edge", "exp": 2**40}, KEY, "HS256")),
            401,
            "invalid_token",
        ),
        (
            _auth(jwt.encode({"sub": "l", "aud": INGEST_AUDIENCE, "exp": 2**40}, KEY, "HS256")),
            403,
            "insufficient_scope",
        ),
    ],
    ids=["none", "basic", "garbage", "wrong-key", "expired", "wrong-audience", "no-scope"],
)
async def test_bad_tokens_are_refused(
    client: TestClient, store: LocalObjectStore, headers: dict, status: int, code: str
) -> None:
    response = await client.post("/v1/ingest?filename=a.wav", data=b"RIFF....", headers=headers)
    assert response.status == status
    assert (await response.json())["error"] == code
    assert list(store.list("")) == []


async def test_oversized_upload_is_refused_and_leaves_nothing(
    client: TestClient, store: LocalObjectStore, settings: Settings, jobs: SQLiteJobStore
) -> None:
    big = io.BytesIO(b"\0" * (9 * 1024 * 1024))
    response = await client.post("/v1/ingest?filename=big.wav", data=big, headers=_auth())
    assert response.status == 413
    assert list(store.list("")) == [] and jobs.list_jobs() == []
    assert not list((settings.data_dir / "uploads").glob("*"))


async def test_oversized_chunked_upload_is_refused_and_leaves_nothing(
    client: TestClient, store: LocalObjectStore, settings: Settings, jobs: SQLiteJobStore
) -> None:
    async def chunks():
        for _ in range(10):
            yield b"\0" * (1024 * 1024)

    response = await client.post("/v1/ingest?filename=big.wav", data=chunks(), headers=_auth())
    assert response.status == 413
    assert list(store.list("")) == [] and jobs.list_jobs() == []
    assert not list((settings.data_dir / "uploads").glob("*"))


async def test_upload_that_stops_halfway_leaves_nothing(
    client: TestClient, store: LocalObjectStore, settings: Settings, jobs: SQLiteJobStore
) -> None:
    _reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    token = issue_ingest_token(KEY, "label-a", 600)
    writer.write(
        (
            "POST /v1/ingest?filename=half.flac HTTP/1.1\r\n"
            f"Host: {client.server.host}\r\nAuthorization: Bearer {token}\r\n"
            "Content-Length: 1000000\r\n\r\n"
        ).encode()
        + b"\0" * 300_000
    )
    await writer.drain()
    writer.close()  # the client goes away two thirds short
    await writer.wait_closed()
    for _ in range(100):  # the server notices the lost connection on its next read
        if not list((settings.data_dir / "uploads").glob("*")):
            break
        await asyncio.sleep(0.05)  # polling the filesystem: there is no event to wait on
    assert not list((settings.data_dir / "uploads").glob("*"))
    assert list(store.list("")) == [] and jobs.list_jobs() == []


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("", "bad_filename"),
        ("?filename=a/b.wav", "bad_filename"),
        ("?filename=a.wav&track_id=../../etc", "bad_request"),
        ("?filename=a.wav&metadata=%5B1%5D", "bad_request"),
        ("?filename=a.wav&metadata=%7Bnope", "bad_request"),
        ("?filename=a.wav&kind=podcast", "bad_kind"),
    ],
)
async def test_bad_parameters_are_named(client: TestClient, query: str, code: str) -> None:
    response = await client.post(f"/v1/ingest{query}", data=b"x", headers=_auth())
    assert response.status == 400
    assert (await response.json())["error"] == code


async def test_unknown_job_is_404(client: TestClient) -> None:
    response = await client.get("/v1/ingest/nope", headers=_auth())
    assert response.status == 404
    assert (await response.json())["error"] == "unknown_job"


@pytest.mark.slow
async def test_an_ad_upload_is_published_as_an_ad_not_a_track(
    client: TestClient, tmp_path: Path, settings: Settings, store: LocalObjectStore,
    jobs: SQLiteJobStore, ring: KeyRing,
) -> None:  # fmt: skip
    master = make_master(tmp_path / "spot.flac", seconds=3.0)
    response = await client.post(
        "/v1/ingest?filename=spot.flac&track_id=spot-9&kind=ad",
        data=master.read_bytes(),
        headers=_auth(),
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["kind"] == "ad"
    done = await asyncio.to_thread(IngestWorker(settings, store, jobs, ring).run_one)
    assert done is not None and done.state == "published", done
    assert list(store.list("tracks/")) == []
    assert "ads/spot-9/current.json" in list(store.list("ads/spot-9/"))
