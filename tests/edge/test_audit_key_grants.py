"""Key grants reach the audit log: one entry per session, behind the response, through outages."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from cdn_edge.app import create_app
from cdn_edge.state import AUDIT
from cdn_edge.web.access_log import AccessLog
from drm import KeyRing
from streamer.audit.chain import derive_chain_key
from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.model import AuditAction
from streamer.audit.recorder import AuditRecorder
from streamer.audit.spool import AuditSpool
from streamer.audit.verify import verify_log
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.edge.builders import BuiltTrack, CountingReader
from tests.edge.conftest import ManualClock

OpenSession = Callable[..., Awaitable[dict[str, Any]]]
STREAM = "edge.test.w0"


@pytest.fixture
def audit_log() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def edge_app(
    settings: Settings,
    reader: CountingReader,
    session_store: SQLiteSessionStore,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    hls_dir: Path,
    audit_log: InMemoryAuditLog,
    tmp_path: Path,
) -> web.Application:
    recorder = AuditRecorder(
        lambda: audit_log,
        derive_chain_key(edge_secrets.platform_key),
        STREAM,
        AuditSpool(tmp_path / "audit-spool", STREAM),
    )
    return create_app(
        settings,
        reader,
        session_store,
        ring,
        clock=clock,
        secrets=edge_secrets,
        hls_dir=hls_dir,
        access_log=AccessLog(io.StringIO(), clock),
        audit=recorder,
    )


async def test_a_session_records_one_key_grant(
    client: Any,
    open_session: OpenSession,
    audit_log: InMemoryAuditLog,
    track: BuiltTrack,
    edge_secrets: TokenSecrets,
    clock: ManualClock,
) -> None:
    doc = await open_session("premium", codecs=["mp4a.40.2"])
    writer = client.app[AUDIT]
    assert writer.queued == 1  # queued by the handler, not written before the response
    assert await writer.flush() == 1
    [entry] = audit_log.entries(STREAM)
    event = entry.event
    assert event.action == AuditAction.KEY_GRANTED
    assert (event.actor, event.subject) == ("listener:u1", f"session:{doc['session_id']}")
    expected_keys = sorted(
        {
            segment.key_id
            for rendition in track.record.renditions
            if rendition.name in doc["variants"]
            for segment in rendition.segments
        }
    )
    assert expected_keys
    assert event.details == {
        "track_id": "trk1",
        "version": "v1",
        "tier": "premium",
        "variants": doc["variants"],
        "key_ids": expected_keys,
        "expires_at": int(clock()) + doc["expires_in_s"],
    }
    assert event.at_us == int(clock() * 1_000_000)
    assert verify_log(audit_log, derive_chain_key(edge_secrets.platform_key)).problems == ()


async def test_fetching_keys_adds_no_entries(
    client: Any, open_session: OpenSession, audit_log: InMemoryAuditLog
) -> None:
    await open_session("free")
    await open_session("free")
    await client.app[AUDIT].flush()
    assert len(list(audit_log.entries(STREAM))) == 2  # one per session


async def test_a_store_outage_neither_stops_playback_nor_loses_grants(
    client: Any,
    open_session: OpenSession,
    audit_log: InMemoryAuditLog,
    edge_secrets: TokenSecrets,
    tmp_path: Path,
) -> None:
    audit_log.fail = "the session store is unreachable"
    opened = [await open_session("free") for _ in range(3)]  # 201 each: playback goes on
    writer = client.app[AUDIT]
    assert await writer.flush() == 3  # kept: in the spool
    assert list((tmp_path / "audit-spool").iterdir())
    assert await writer.replay() == 0  # still down
    audit_log.fail = None
    writer._next_replay = 0.0  # the replay interval has passed
    assert await writer.replay() == 3
    subjects = [entry.event.subject for entry in audit_log.entries(STREAM)]
    assert subjects == [f"session:{doc['session_id']}" for doc in opened]
    assert verify_log(audit_log, derive_chain_key(edge_secrets.platform_key)).problems == ()


async def test_shutdown_keeps_what_is_queued(
    aiohttp_client: Any, edge_app: web.Application, audit_log: InMemoryAuditLog, open_session: Any
) -> None:
    await open_session("free")
    writer = edge_app[AUDIT]
    assert writer.queued == 1
    await writer.close()
    assert len(list(audit_log.entries(STREAM))) == 1
