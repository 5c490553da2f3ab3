"""The player page at / and the track list it shows, GET /v1/tracks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from cdn_edge.blocking import BlockingRunner
from cdn_edge.handlers.player_page import player_url
from cdn_edge.handlers.tracks import LIST_TTL_S, TrackList
from drm import KeyRing
from streamer.catalog import current_record_key
from streamer.objects.memory import InMemoryObjectStore
from streamer.settings import Settings
from tests.edge.builders import CountingReader, build_track, publish
from tests.edge.conftest import Client, ManualClock


async def test_player_page_is_served_at_the_root_and_at_player(client: Client) -> None:
    for path in ("/", "/?track=trk1&token=abc&codecs=opus", "/player?track=trk1&token=abc"):
        response = await client.get(path)
        assert response.status == 200, path
        assert response.content_type == "text/html"
        text = await response.text()
        assert '<script src="/static/hls.min.js">' in text
        assert "/v1/tracks" in text and "window.playerState" in text
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_player_url_points_at_the_root_with_the_token(settings: Settings) -> None:
    url = player_url(settings, "trk1", "T0KEN", codecs="opus")
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == settings.base_url and parts.path == "/"
    assert parse_qs(parts.query) == {"track": ["trk1"], "token": ["T0KEN"], "codecs": ["opus"]}
    assert "track" not in parse_qs(urlsplit(player_url(settings, None, "T0KEN")).query)


async def test_track_list_needs_a_listener_token(client: Client) -> None:
    response = await client.get("/v1/tracks")
    assert response.status == 401
    response = await client.get("/v1/tracks", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status == 401


async def test_track_list_names_published_tracks(
    client: Client,
    listener_token: Callable[..., str],
    store: InMemoryObjectStore,
    reader: CountingReader,
    ring: KeyRing,
    clock: ManualClock,
) -> None:
    headers = {"Authorization": f"Bearer {listener_token('free')}"}
    response = await client.get("/v1/tracks", headers=headers)
    assert response.status == 200
    assert response.headers["Cache-Control"].startswith("private")
    doc = await response.json()
    assert doc == {
        "tracks": [
            {
                "track_id": "trk1",
                "version": "v1",
                "title": "trk1",  # no title in the metadata: the id stands in
                "duration_s": 24.0,
                "loudness": {"gain_db": -4.5, "integrated_lufs": -9.5, "target_lufs": -14.0},
            }
        ],
        "truncated": False,
    }

    # A track published now shows up once the cached list expires, not before.
    await asyncio.to_thread(publish, store, build_track(ring, "trk2", "v1"))
    lists = reader.calls.count(("list", "tracks/"))
    response = await client.get("/v1/tracks", headers=headers)
    assert [t["track_id"] for t in (await response.json())["tracks"]] == ["trk1"]
    assert reader.calls.count(("list", "tracks/")) == lists
    clock.advance(LIST_TTL_S)
    response = await client.get("/v1/tracks", headers=headers)
    assert [t["track_id"] for t in (await response.json())["tracks"]] == ["trk1", "trk2"]
    assert reader.calls.count(("list", "tracks/")) == lists + 1


async def test_track_list_skips_broken_records_and_says_when_cut(ring: KeyRing) -> None:
    store = InMemoryObjectStore()
    for track_id in ("a1", "a2", "a3"):
        publish(store, build_track(ring, track_id, "v1", segments=1))
    store.put(current_record_key("a2"), b"{not json", "application/json")
    run = BlockingRunner(threads=1)
    try:
        full = TrackList(store, run, ManualClock())
        assert b'"a1"' in await full.body() and b'"a2"' not in await full.body()
        cut = TrackList(store, run, ManualClock(), limit=1)
        body = await cut.body()
        assert b'"a1"' in body and b'"a3"' not in body and b'"truncated": true' in body
    finally:
        run.close()
