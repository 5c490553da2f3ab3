"""Fixtures for the edge: a manual clock, a published ladder, and the app over them."""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from cdn_edge.state import ACCESS_LOG
from cdn_edge.web.access_log import AccessLog
from drm import KeyRing, new_kek
from streamer.audit.chain import derive_chain_key
from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.recorder import AuditRecorder
from streamer.catalog import Tier
from streamer.objects.memory import InMemoryObjectStore
from streamer.offline.sqlite import SQLiteOfflineStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets, derive_secrets
from tests.edge.builders import BuiltTrack, CountingReader, build_track, publish

AccessLines = Callable[[], list[dict[str, Any]]]

START = 1_700_000_000.0  # 2023-11-14, a whole number of hours


class ManualClock:
    """Time that moves only when a test says so."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ring() -> KeyRing:
    kek = new_kek("kek-test")
    return KeyRing(kek.kek_id, (kek,))


@pytest.fixture
def edge_secrets() -> TokenSecrets:
    return derive_secrets(b"test-secret-" + b"x" * 32)


@pytest.fixture
def track(ring: KeyRing) -> BuiltTrack:
    return build_track(ring, "trk1", "v1")


@pytest.fixture
def store(track: BuiltTrack) -> InMemoryObjectStore:
    store = InMemoryObjectStore()
    publish(store, track)
    return store


@pytest.fixture
def reader(store: InMemoryObjectStore) -> CountingReader:
    return CountingReader(store)


@pytest.fixture
def session_store(tmp_path: Path) -> SQLiteSessionStore:
    return SQLiteSessionStore(tmp_path / "sessions.sqlite3")


@pytest.fixture
def hls_dir(tmp_path: Path) -> Path:
    return tmp_path / "hls"  # empty until a test installs a fake hls.min.js


@pytest.fixture
def access_log_stream() -> io.StringIO:
    return io.StringIO()


@pytest.fixture
def edge_app(
    settings: Settings,
    reader: CountingReader,
    session_store: SQLiteSessionStore,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    hls_dir: Path,
    access_log_stream: io.StringIO,
) -> web.Application:
    return create_app(
        settings,
        reader,
        session_store,
        ring,
        clock=clock,
        secrets=edge_secrets,
        hls_dir=hls_dir,
        access_log=AccessLog(access_log_stream, clock),
    )


@pytest.fixture
def access_lines(edge_app: web.Application, access_log_stream: io.StringIO) -> AccessLines:
    """The access log so far: every line written (after a flush), parsed."""

    def lines() -> list[dict[str, Any]]:
        edge_app[ACCESS_LOG].flush()
        return [json.loads(line) for line in access_log_stream.getvalue().splitlines()]

    return lines


Client = TestClient


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], edge_app: web.Application
) -> Client:
    return await aiohttp_client(edge_app)


@pytest.fixture
def listener_token(edge_secrets: TokenSecrets, clock: ManualClock) -> Callable[..., str]:
    def issue(tier: Tier = "free", user: str = "u1", region: str = "SE", ttl_s: int = 3600) -> str:
        return issue_listener_token(
            edge_secrets.platform_key,
            user,
            tier,
            region,
            ttl_s,
            clock(),
        )

    return issue


ALL_CODECS = ["mp4a.40.2", "opus", "fLaC"]


@pytest.fixture
def open_session(
    client: Client, listener_token: Callable[..., str]
) -> Callable[..., Awaitable[dict[str, Any]]]:
    async def open_(
        tier: str = "free", track_id: str = "trk1", codecs: list[str] | None = None, **device: Any
    ) -> dict[str, Any]:
        response = await client.post(
            "/v1/sessions",
            json={"track_id": track_id, "device": {"codecs": codecs or ALL_CODECS, **device}},
            headers={"Authorization": f"Bearer {listener_token(tier)}"},
        )
        assert response.status == 201, await response.text()
        doc: dict[str, Any] = await response.json()
        return doc

    return open_


def path_of(settings: Settings, url: str, relative_to: str | None = None) -> str:
    """The path (and query) of an edge URL, for the test client.

    A relative `url` (segments in media playlists) is resolved against `relative_to`, the URL
    of the playlist that names it, as a player does.
    """
    if relative_to is not None:
        url = urljoin(relative_to, url)
    assert url.startswith(settings.base_url), url
    return url[len(settings.base_url) :]


# Offline downloads (tests/edge/test_downloads_*.py): the edge with its offline store.


@pytest.fixture
def offline_store(tmp_path: Path) -> SQLiteOfflineStore:
    return SQLiteOfflineStore(tmp_path / "offline.sqlite3")


@pytest.fixture
def dl_audit_log() -> InMemoryAuditLog:
    return InMemoryAuditLog()


@pytest.fixture
def dl_app(
    settings: Settings,
    reader: CountingReader,
    session_store: SQLiteSessionStore,
    ring: KeyRing,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    hls_dir: Path,
    offline_store: SQLiteOfflineStore,
    dl_audit_log: InMemoryAuditLog,
) -> web.Application:
    audit = AuditRecorder(
        lambda: dl_audit_log, derive_chain_key(edge_secrets.platform_key), "edge.test.w0", None
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
        offline_store=offline_store,
        audit=audit,
    )


@pytest.fixture
async def dl(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]], dl_app: web.Application
) -> Client:
    return await aiohttp_client(dl_app)
