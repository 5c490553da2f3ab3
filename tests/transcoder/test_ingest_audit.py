"""Ingest submissions are audited before the API acknowledges them, and by `streamer ingest`."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient

from streamer.audit.chain import ChainKey
from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.model import AuditAction
from streamer.audit.recorder import AuditRecorder
from streamer.audit.spool import AuditSpool
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.settings import Settings
from tests.masters import make_master
from transcoder.http_api import ingest_token_verifier, install_ingest_api, issue_ingest_token

KEY = b"k" * 32
CHAIN = ChainKey(b"c" * 32)
STREAM = "ingest-api.test"


@pytest.fixture
def audit_log() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
async def client(
    aiohttp_client, settings, store, tmp_path: Path, audit_log: InMemoryAuditLog
) -> AsyncIterator[TestClient]:
    app = web.Application()
    small = dataclasses.replace(settings, max_upload_bytes=8 * 1024 * 1024)
    jobs = SQLiteJobStore(settings.data_dir / "jobs.sqlite3")
    recorder = AuditRecorder(
        lambda: audit_log, CHAIN, STREAM, AuditSpool(tmp_path / "spool", STREAM)
    )
    install_ingest_api(app, small, store, jobs, ingest_token_verifier(KEY), recorder)
    client = await aiohttp_client(app)
    yield client
    recorder.close()


async def _submit(client: TestClient, master: Path) -> ClientResponse:
    token = issue_ingest_token(KEY, "label-a", 600)
    body = await asyncio.to_thread(master.read_bytes)
    return await client.post(
        "/v1/ingest?filename=song.flac&track_id=ISRC0001",
        data=body,
        headers={"Authorization": f"Bearer {token}"},
    )


async def test_a_submission_is_audited_before_it_is_acknowledged(
    client: TestClient, tmp_path: Path, audit_log: InMemoryAuditLog
) -> None:
    master = make_master(tmp_path / "song.flac", seconds=1.0)
    response = await _submit(client, master)
    assert response.status == 202, await response.text()
    job = await response.json()
    [entry] = audit_log.entries(STREAM)
    event = entry.event
    assert event.action == AuditAction.INGEST_SUBMITTED
    assert (event.actor, event.subject) == ("ingest:label-a", f"job:{job['job_id']}")
    assert event.details["track_id"] == "ISRC0001" and event.details["via"] == "http"
    assert event.details["filename"] == "song.flac" and len(event.details["master_sha256"]) == 64


async def test_with_the_store_down_the_entry_is_spooled_then_replayed(
    client: TestClient, tmp_path: Path, audit_log: InMemoryAuditLog
) -> None:
    master = make_master(tmp_path / "song.flac", seconds=1.0)
    audit_log.fail = "down"
    assert (await _submit(client, master)).status == 202  # kept on disk: acknowledged
    assert list((tmp_path / "spool").iterdir())
    audit_log.fail = None
    assert (await _submit(client, master)).status == 202  # the store is back: both go in
    assert len(list(audit_log.entries(STREAM))) == 2


async def test_with_store_and_disk_down_the_client_is_told_to_retry(
    client: TestClient, tmp_path: Path, audit_log: InMemoryAuditLog
) -> None:
    master = make_master(tmp_path / "song.flac", seconds=1.0)
    audit_log.fail = "down"
    (tmp_path / "spool").write_text("")  # no directory can be made there
    response = await _submit(client, master)
    assert response.status == 503
    assert (await response.json())["error"] == "audit_unavailable"


def test_streamer_ingest_audits_each_submission(settings: Settings, tmp_path: Path) -> None:
    from streamer.audit.recorders import chain_key
    from streamer.audit.verify import find_entries, verify_log
    from streamer.backends import open_audit_log
    from streamer_app.cli import main

    master = make_master(tmp_path / "song.flac", seconds=1.0)
    code = main(["--data-dir", str(settings.data_dir), "ingest", str(master), "--track-id", "T1"])
    assert code == 0
    log = open_audit_log(settings)
    [entry] = find_entries(log, action=AuditAction.INGEST_SUBMITTED)
    assert entry.event.details["track_id"] == "T1" and entry.event.details["via"] == "cli"
    assert entry.event.actor.startswith("cli:") and entry.stream.startswith("cli.")
    assert verify_log(log, chain_key(settings)).problems == ()
    log.close()
