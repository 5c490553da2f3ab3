"""Two real edges on loopback, each the other's CDN pathway; one dies, playback goes on.

Edge A (pathway "edge" of its own playlists) and edge B (pathway "cdn-b" there) share the
object store and secrets, as an origin and a CDN in front of it effectively do: a session
opened on A plays through B's URLs, B's media playlists name segments relatively (so they
come from B) and keys absolutely on A. When B stops, A's health probes fail, A's steering
moves "cdn-b" last, and everything keeps working through A; when B returns, so does it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from cdn_edge.server import listening_socket, serve
from drm import KeyRing, decrypt_segment
from manifests import MultivariantPlaylist, parse_media, parse_multivariant
from streamer.objects.memory import InMemoryObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings, load_settings
from streamer.token_secrets import TokenSecrets
from tests.edge.builders import BuiltTrack, build_track, publish

TTL_S = 2  # probes every 0.25 s: B is found dead within about half a second


@dataclass
class Edges:
    store: InMemoryObjectStore
    ring: KeyRing
    secrets: TokenSecrets
    tmp_path: Path


def edge_settings(tmp_path: Path, port: int, other_id: str, other_port: int) -> Settings:
    other: dict[str, Any] = {"id": other_id, "base_url": f"http://127.0.0.1:{other_port}"}
    if other_id == "cdn-b":
        other["regions"] = ["SE"]  # B is the CDN for Swedish listeners: it comes first
    return load_settings(
        environ={},
        data_dir=tmp_path / f"data-{port}",
        public_url=f"http://127.0.0.1:{port}",
        pathways=json.dumps([other]),
        steering_ttl_s=TTL_S,
    )


@asynccontextmanager
async def running_edge(edges: Edges, settings: Settings, port: int) -> AsyncIterator[None]:
    app = create_app(
        settings,
        edges.store,
        SQLiteSessionStore(edges.tmp_path / f"sessions-{port}.sqlite3"),
        edges.ring,
        secrets=edges.secrets,
    )
    sock = listening_socket("127.0.0.1", port, reuse_port=False)
    stop, started = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(serve(app, sock, stop, None, started.set))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)


def free_ports() -> tuple[int, int]:
    socks = [listening_socket("127.0.0.1", 0, reuse_port=False) for _ in range(2)]
    ports = tuple(s.getsockname()[1] for s in socks)
    for s in socks:
        s.close()
    return ports[0], ports[1]


async def until(condition: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.1)


async def play_through(
    http: aiohttp.ClientSession, main: MultivariantPlaylist, pathway: str, track: BuiltTrack
) -> None:
    """Media playlist, key and first segment of `pathway`'s first variant, decrypted."""
    variant = next(v for v in main.variants if v.pathway_id == pathway)
    async with http.get(variant.uri) as response:
        assert response.status == 200, await response.text()
        media = parse_media(await response.text())
    first = media.segments[0]
    iv = media.segment_keys()[0][1]
    assert first.key is not None and first.key.uri is not None and iv is not None
    # Relative, so through the pathway too (a CDN passes keys through uncached).
    async with http.get(urljoin(variant.uri, first.key.uri)) as response:
        assert response.status == 200, await response.text()
        key = await response.read()
    segment_url = urljoin(variant.uri, first.uri)
    assert segment_url.startswith(variant.uri.split("/v1/")[0])  # from the same pathway
    async with http.get(segment_url) as response:
        assert response.status == 200, await response.text()
        body = await response.read()
    rendition = variant.stable_variant_id
    assert decrypt_segment(body, key, iv) == track.clear[f"{rendition}/seg_00000.m4s"]


@pytest.fixture
def edges(ring: KeyRing, edge_secrets: TokenSecrets, tmp_path: Path) -> Edges:
    return Edges(InMemoryObjectStore(), ring, edge_secrets, tmp_path)


async def test_a_dead_pathway_moves_last_and_playback_continues(edges: Edges) -> None:
    track = build_track(edges.ring)
    publish(edges.store, track)
    port_a, port_b = free_ports()
    settings_a = edge_settings(edges.tmp_path, port_a, "cdn-b", port_b)
    settings_b = edge_settings(edges.tmp_path, port_b, "cdn-a", port_a)
    a = settings_a.base_url
    token = issue_listener_token(edges.secrets.platform_key, "u1", "free", "SE", 600, time.time())
    timeout = aiohttp.ClientTimeout(total=10)
    async with (
        running_edge(edges, settings_a, port_a),
        aiohttp.ClientSession(timeout=timeout) as http,
    ):
        async with running_edge(edges, settings_b, port_b):
            async with http.post(
                f"{a}/v1/sessions",
                json={"track_id": "trk1", "device": {"codecs": ["mp4a.40.2", "opus"]}},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 201, await response.text()
                doc = await response.json()
            async with http.get(doc["playlist_url"]) as response:
                main = parse_multivariant(await response.text())
            assert main.content_steering is not None
            assert main.content_steering.pathway_id == "cdn-b"
            steering_url = main.content_steering.server_uri
            assert steering_url.startswith(f"{a}/v1/steer/")

            async def priority() -> list[str]:
                # As hls.js asks: the steering URL plus the pathway in use and its estimate.
                params = {"_HLS_pathway": "cdn-b", "_HLS_throughput": "2400000"}
                async with http.get(steering_url, params=params) as response:
                    assert response.status == 200, await response.text()
                    manifest = await response.json()
                assert manifest["RELOAD-URI"] == steering_url
                return list(manifest["PATHWAY-PRIORITY"])

            assert await priority() == ["cdn-b", "edge"]
            await play_through(http, main, "cdn-b", track)  # B serves A's session
            await play_through(http, main, "edge", track)

        # B is gone: A's probes find out, and its steering sends everyone to A.
        async def b_is_last() -> bool:
            return await priority() == ["edge", "cdn-b"]

        await until(b_is_last)
        with pytest.raises(aiohttp.ClientConnectionError):
            await play_through(http, main, "cdn-b", track)
        await play_through(http, main, "edge", track)
        async with http.get(doc["playlist_url"]) as response:
            again = parse_multivariant(await response.text())
        assert again.content_steering is not None
        assert again.content_steering.pathway_id == "edge"  # new players start on A

        # B comes back on the same port: after a few good probes it is first again.
        async with running_edge(edges, settings_b, port_b):

            async def b_is_first() -> bool:
                return await priority() == ["cdn-b", "edge"]

            await until(b_is_first)
            await play_through(http, main, "cdn-b", track)
