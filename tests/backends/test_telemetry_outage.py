"""The edge rides out a session-store outage on the real CQL server.

Listeners keep playing while the store is unreachable, their events are accepted into the
durable spool, and when the store returns every event and the royalty play land exactly once.
A spool that a stopped edge left on disk (with a torn last record) is replayed by the next.

The CQL server is shared with other work and is never stopped: the edge's driver reaches it
through a TcpProxy that the test cuts (listener and connections closed) and restores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest
from aiohttp import web

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from cdn_edge.state import METRICS, TELEMETRY
from drm import KeyRing, new_kek
from manifests import parse_media
from streamer.cql.connection import Cql
from streamer.errors import StorageError
from streamer.objects.local import LocalObjectStore
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.settings import Settings
from streamer.telemetry.codec import encode_items
from streamer.telemetry.spool import SPOOL_DIR, TelemetrySpool, frame
from streamer.token_secrets import TokenSecrets, derive_secrets
from tests.backends.cql_fixtures import (
    SESSION_TABLES,
    TestKeyspace,
    drop_cql_test_keyspace,
    shared_test_keyspace,
)
from tests.backends.tcp_proxy import HOST, TcpProxy, tcp_proxy
from tests.edge.builders import build_track, publish
from tests.edge.conftest import Client
from tests.telemetry.builders import event

pytestmark = [pytest.mark.services, pytest.mark.slow, pytest.mark.timeout(60)]

__all__ = ["drop_cql_test_keyspace"]  # a session fixture: drops the test keyspace at the end

DEADLINE_S = 30.0  # spool drained: the driver reconnects within ~7 s, the replayer backs off
SEGMENTS = 8
SEGMENT_S = 6.0
MakeClient = Callable[[web.Application], Awaitable[Client]]


@pytest.fixture
def keyspace() -> TestKeyspace:
    shared = shared_test_keyspace()
    shared.truncate(SESSION_TABLES)
    return shared


@pytest.fixture
def proxy(keyspace: TestKeyspace) -> Iterator[TcpProxy]:
    host = keyspace.settings.cql_hosts.split(",")[0].strip()
    with tcp_proxy(host, keyspace.settings.cql_port) as proxy:
        yield proxy


@pytest.fixture
def settings(keyspace: TestKeyspace, proxy: TcpProxy, tmp_path: Path) -> Settings:
    return dataclasses.replace(
        keyspace.settings,
        cql_hosts=HOST,
        cql_port=proxy.port,
        data_dir=tmp_path / "data",
        session_store="scylla",
    )


@pytest.fixture
def ring() -> KeyRing:
    kek = new_kek("kek-outage")
    return KeyRing(kek.kek_id, (kek,))


@pytest.fixture
def secrets() -> TokenSecrets:
    return derive_secrets(b"outage-" + b"t" * 32)


@pytest.fixture
def objects(tmp_path: Path, ring: KeyRing) -> LocalObjectStore:
    store = LocalObjectStore(tmp_path / "objects")
    publish(store, build_track(ring, "trk1", "v1", segments=SEGMENTS, segment_s=SEGMENT_S))
    return store


@dataclass
class Edge:
    """One edge process: its app, a client to it, its store and its spool."""

    app: web.Application
    client: Client
    store: ScyllaSessionStore
    spool: TelemetrySpool


@dataclass
class Listener:
    session_id: str
    token: str
    playlist: str  # path of the media playlist
    segments: list[str]  # paths of its media segments


@pytest.fixture
def start_edge(
    settings: Settings,
    objects: LocalObjectStore,
    ring: KeyRing,
    secrets: TokenSecrets,
    tmp_path: Path,
    aiohttp_client: MakeClient,
) -> Callable[[], Awaitable[Edge]]:
    async def start() -> Edge:
        store = await asyncio.to_thread(ScyllaSessionStore.from_settings, settings)
        spool = TelemetrySpool(settings.data_dir / SPOOL_DIR)
        app = create_app(
            settings, objects, store, ring, secrets=secrets, hls_dir=tmp_path / "hls", spool=spool
        )
        return Edge(app, await aiohttp_client(app), store, spool)

    return start


def path_of(settings: Settings, url: str) -> str:
    assert url.startswith(settings.base_url), url
    return url[len(settings.base_url) :]


async def listen(edge: Edge, settings: Settings, secrets: TokenSecrets, user: str) -> Listener:
    token = issue_listener_token(secrets.platform_key, user, "free", "SE", 600, time.time())
    response = await edge.client.post(
        "/v1/sessions",
        json={"track_id": "trk1", "device": {"codecs": ["mp4a.40.2"]}},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert response.status == 201, await response.text()
    doc = await response.json()
    main_url = doc["playlist_url"]
    media_url = urljoin(main_url, "aac_96/playlist.m3u8")
    response = await edge.client.get(path_of(settings, media_url))
    assert response.status == 200
    media = parse_media(await response.text())
    return Listener(
        doc["session_id"],
        urlsplit(main_url).path.split("/")[3],
        path_of(settings, media_url),
        [path_of(settings, urljoin(media_url, s.uri)) for s in media.segments],
    )


def events_body(session_id: str, start_ms: int, seconds: range) -> dict[str, Any]:
    """A play at 0 s, heartbeats every 10 s: the player's report of `seconds`."""
    docs = []
    for t in seconds:
        kind = "play" if t == 0 else "heartbeat"
        docs.append(
            {
                "event_id": f"{session_id}-{t}",
                "type": kind,
                "ts_ms": start_ms + t * 1000,
                "position_s": t,
            }
        )
    return {"events": docs}


async def play(
    edge: Edge, listener: Listener, segments: range, seconds: range, start_ms: int
) -> None:
    """Fetch the playlist and `segments`, report `seconds` of listening: all must succeed."""
    response = await edge.client.get(listener.playlist)
    assert response.status == 200
    for index in segments:
        response = await edge.client.get(listener.segments[index])
        assert response.status == 200
        await response.read()
    response = await edge.client.post(
        f"/v1/sessions/{listener.session_id}/events",
        json=events_body(listener.session_id, start_ms, seconds),
        headers={"Authorization": f"Bearer {listener.token}"},
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["accepted"] == len(seconds)


async def until(what: str, check: Callable[[], Awaitable[bool]], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {deadline_s:g} s: {what}")
        await asyncio.sleep(0.1)


async def spooled(edge: Edge) -> bool:
    """Everything the writer took is in the spool (nothing waits in memory)."""
    return edge.app[TELEMETRY].held == 0 and edge.spool.pending > 0


async def drained(edge: Edge, session_id: str) -> bool:
    if edge.app[TELEMETRY].held or edge.spool.pending:
        return False
    telemetry = await asyncio.to_thread(edge.store.session_telemetry, session_id)
    return telemetry.play is not None


async def raw_rows(keyspace: TestKeyspace, table: str, session_id: str) -> int:
    """Rows as stored (a read would hide duplicates), through the direct session."""
    count = Cql(f"SELECT COUNT(*) AS n FROM {table} WHERE session_id = ?", idempotent=True)
    rows = await asyncio.to_thread(
        keyspace.session.execute, count, (session_id,), action=f"count {table}"
    )
    row = rows.one()
    assert row is not None
    return int(row["n"])


async def check_landed_once(
    edge: Edge, keyspace: TestKeyspace, session_id: str, seconds: range, segments: int
) -> None:
    telemetry = await asyncio.to_thread(edge.store.session_telemetry, session_id)
    assert [e.event_id for e in telemetry.events] == [f"{session_id}-{t}" for t in seconds]
    assert await raw_rows(keyspace, "player_events", session_id) == len(seconds)
    assert len({d.name for d in telemetry.deliveries}) == len(telemetry.deliveries) == segments
    assert await raw_rows(keyspace, "segment_deliveries", session_id) == segments
    assert telemetry.play is not None
    day: date = telemetry.play.day
    assert await asyncio.to_thread(edge.store.plays_by_day, "trk1", day, day) == {day: 1}
    recount = await asyncio.to_thread(edge.store.recount_plays, "trk1", day)
    assert (recount.counted, recount.claims) == (1, 1)  # the index agrees with the counter


async def test_listeners_play_through_a_store_outage_and_telemetry_lands_once(
    start_edge: Callable[[], Awaitable[Edge]],
    proxy: TcpProxy,
    keyspace: TestKeyspace,
    settings: Settings,
    secrets: TokenSecrets,
) -> None:
    edge = await start_edge()
    listener = await listen(edge, settings, secrets, "u1")
    start_ms = int(time.time() * 1000)
    await play(edge, listener, range(0, 2), range(0, 11, 10), start_ms)
    await until("the first events are stored", lambda: stored_events(edge, listener, 2), 10)

    proxy.cut()
    other = await listen(edge, settings, secrets, "u2")  # a new listener starts, unrecorded
    await play(edge, listener, range(2, 6), range(20, 41, 10), start_ms)
    await play(edge, other, range(0, 1), range(0, 1), start_ms)
    await until("the events are spooled", lambda: spooled(edge), 10)
    registry = edge.app[METRICS].registry
    assert registry.get_sample_value("edge_telemetry_spool_bytes")
    assert registry.get_sample_value("edge_telemetry_spooled_total", {"kind": "event"}) == 4
    with pytest.raises(StorageError):  # the driver really is cut off
        await asyncio.to_thread(edge.store.session_telemetry, listener.session_id)

    proxy.restore()
    await until("the spool drains", lambda: drained(edge, listener.session_id), DEADLINE_S)
    await check_landed_once(edge, keyspace, listener.session_id, range(0, 41, 10), segments=6)
    assert registry.get_sample_value("edge_telemetry_replayed_total", {"kind": "event"}) == 4
    assert registry.get_sample_value("edge_telemetry_spool_bytes") == 0


async def stored_events(edge: Edge, listener: Listener, count: int) -> bool:
    telemetry = await asyncio.to_thread(edge.store.session_telemetry, listener.session_id)
    return len(telemetry.events) == count


async def test_a_restarted_edge_replays_the_spool_it_left(
    start_edge: Callable[[], Awaitable[Edge]],
    proxy: TcpProxy,
    keyspace: TestKeyspace,
    settings: Settings,
    secrets: TokenSecrets,
) -> None:
    first = await start_edge()
    listener = await listen(first, settings, secrets, "u1")
    start_ms = int(time.time() * 1000)
    proxy.cut()
    await play(first, listener, range(0, 6), range(0, 41, 10), start_ms)
    await until("the events are spooled", lambda: spooled(first), 10)
    await first.client.close()  # the edge stops with the store still unreachable
    files = sorted((settings.data_dir / SPOOL_DIR).glob("*.spool"))
    assert files, "the stopped edge left no spool"
    torn = frame(encode_items([event("heartbeat", 99, 99.0, session_id=listener.session_id)]))
    with files[-1].open("ab") as handle:  # and it died while appending one more record
        handle.write(torn[: len(torn) // 2])

    proxy.restore()
    second = await start_edge()  # replays the spool on start
    await until("the spool drains", lambda: drained(second, listener.session_id), DEADLINE_S)
    await check_landed_once(second, keyspace, listener.session_id, range(0, 41, 10), segments=6)
    assert second.spool.lost_bytes == len(torn) // 2
