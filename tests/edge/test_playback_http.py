"""Playlists and keys over HTTP: entitlement, edited URLs, expiry, rate limits, gzip."""

from __future__ import annotations

import gzip
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urljoin

import m3u8

from cdn_edge.state import CATALOG, CLOCK, KEYS, METRICS, TOKENS
from drm import decrypt_segment
from manifests import lint_media, lint_multivariant, parse_media, parse_multivariant
from streamer.settings import Settings
from tests.edge.builders import BuiltTrack
from tests.edge.conftest import Client, ManualClock, path_of

OpenSession = Callable[..., Awaitable[dict[str, Any]]]


async def fetch_text(client: Client, settings: Settings, url: str, **headers: str) -> str:
    response = await client.get(path_of(settings, url), headers=headers)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/vnd.apple.mpegurl"
    return await response.text()


async def first_key_url(
    client: Client, settings: Settings, doc: dict[str, Any], rendition: str
) -> str:
    """The absolute URL of the first key a session's media playlist names."""
    url = media_url(doc["playlist_url"], rendition)
    key = parse_media(await fetch_text(client, settings, url)).segments[0].key
    assert key is not None and key.uri is not None
    return urljoin(url, key.uri)


def media_url(playlist_url: str, rendition: str) -> str:
    return playlist_url.rsplit("/", 1)[0] + f"/{rendition}/playlist.m3u8"


async def test_free_session_plays_end_to_end(
    client: Client, open_session: OpenSession, settings: Settings, track: BuiltTrack
) -> None:
    doc = await open_session("free")
    main = await fetch_text(client, settings, doc["playlist_url"])
    multivariant = parse_multivariant(main)
    assert lint_multivariant(multivariant) == []
    assert m3u8.loads(main).is_variant
    uris = [v.uri for v in multivariant.variants]
    assert uris == [f"{name}/playlist.m3u8" for name in doc["variants"]]
    assert not {"aac_256.m3u8", "flac.m3u8"} & set(uris)

    media_playlist_url = media_url(doc["playlist_url"], doc["variants"][0])
    text = await fetch_text(client, settings, media_playlist_url)
    media = parse_media(text)
    assert lint_media(media) == []
    assert len(m3u8.loads(text).segments) == len(media.segments)
    first = media.segments[0]
    assert first.key is not None and first.key.uri is not None and first.map is not None
    key = await client.get(path_of(settings, first.key.uri, relative_to=media_playlist_url))
    assert key.status == 200
    assert key.headers["Cache-Control"] == "no-store"
    assert key.content_type == "application/octet-stream"
    key_bytes = await key.read()
    assert len(key_bytes) == 16
    # Files and keys are named relative to the media playlist, so they come from its host,
    # under the session's path.
    assert (first.uri, first.map.uri, first.key.uri) == (
        "seg_00000.m4s",
        "init.mp4",
        "../keys/v1-free-0",
    )
    segment = await client.get(path_of(settings, first.uri, relative_to=media_playlist_url))
    assert segment.status == 200
    iv = media.segment_keys()[0][1]
    assert iv is not None
    clear = decrypt_segment(await segment.read(), key_bytes, iv)
    assert clear == track.clear["opus_160/seg_00000.m4s"]
    init = await client.get(path_of(settings, first.map.uri, relative_to=media_playlist_url))
    assert await init.read() == track.clear["opus_160/init.mp4"]


async def test_free_session_refused_premium_key_even_with_an_edited_url(
    client: Client, open_session: OpenSession, settings: Settings
) -> None:
    doc = await open_session("free")
    key_uri = await first_key_url(client, settings, doc, "aac_160")
    session_token = doc["playlist_url"].split("/")[-2]
    assert key_uri.endswith(f"/v1/s/{session_token}/keys/v1-free-0")
    edited = key_uri.replace("v1-free-0", "v1-premium-0")
    response = await client.get(path_of(settings, edited))
    assert response.status == 403
    assert (await response.json())["error"] == "not_entitled"
    # Keys of another version, or not keys at all, are not there; no token, no key.
    for other in ("v2-free-0", "v1-free-99", "..", "v1-free-0%2F..%2Fx"):
        response = await client.get(path_of(settings, key_uri.replace("v1-free-0", other)))
        assert response.status in (400, 404), other
    response = await client.get("/v1/s/keys/v1-free-0")
    assert response.status == 404
    # Nor the premium media playlist, asked for by name.
    response = await client.get(path_of(settings, media_url(doc["playlist_url"], "flac")))
    assert response.status == 403
    assert (await response.json())["error"] == "not_entitled"
    metrics = client.app[METRICS]
    assert metrics.refusals.labels("not_entitled")._value.get() == 2
    assert metrics.keys_issued.labels("premium")._value.get() == 0


async def test_premium_session_gets_premium_keys(
    client: Client, open_session: OpenSession, settings: Settings, track: BuiltTrack
) -> None:
    doc = await open_session("premium")
    key_uri = await first_key_url(client, settings, doc, "flac")
    response = await client.get(path_of(settings, key_uri))
    assert response.status == 200
    assert await response.read() == track.clear_keys["v1-premium-0"]
    metrics = client.app[METRICS]
    assert metrics.keys_issued.labels("premium")._value.get() == 1


async def test_expired_and_forged_tokens_get_401(
    client: Client, open_session: OpenSession, settings: Settings, clock: ManualClock
) -> None:
    doc = await open_session("free")
    key_uri = await first_key_url(client, settings, doc, "aac_96")
    session_token = doc["playlist_url"].split("/")[-2]
    forged_token = session_token[:-3] + ("AAA" if not session_token.endswith("AAA") else "BBB")
    response = await client.get(path_of(settings, key_uri.replace(session_token, forged_token)))
    assert response.status == 401
    assert (await response.json())["error"] == "token_invalid"
    playlist_forged = doc["playlist_url"].replace("/main.m3u8", "x/main.m3u8")
    assert (await client.get(path_of(settings, playlist_forged))).status == 401

    # A key URI lives as long as its session: hours into a long pause, the same URI works.
    clock.advance(3 * 3600)
    assert (await client.get(path_of(settings, key_uri))).status == 200
    assert await first_key_url(client, settings, doc, "aac_96") == key_uri

    clock.advance(doc["expires_in_s"])
    for url in (doc["playlist_url"], key_uri):
        response = await client.get(path_of(settings, url))
        assert response.status == 401
        assert (await response.json())["error"] == "token_expired"
        assert "#EXTM3U" not in await response.text()


async def test_keys_are_limited_per_session(
    client: Client, open_session: OpenSession, settings: Settings, track: BuiltTrack
) -> None:
    doc = await open_session("free")
    key_path = path_of(settings, await first_key_url(client, settings, doc, "aac_96"))
    session = client.app[TOKENS].verify_session(
        doc["playlist_url"].split("/")[-2],
        int(client.app[CLOCK]()),
    )
    published = await client.app[CATALOG].current("trk1")
    budget = client.app[KEYS].session_budget(published, session)
    for _ in range(budget.capacity):
        assert (await client.get(key_path)).status == 200
    response = await client.get(key_path)
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
    assert (await response.json())["error"] == "rate_limited"
    other = await open_session("free")
    other_key = await first_key_url(client, settings, other, "aac_96")
    assert (await client.get(path_of(settings, other_key))).status == 200


async def test_playlists_are_gzipped_when_accepted(
    client: Client, open_session: OpenSession, settings: Settings
) -> None:
    doc = await open_session("premium")
    url = path_of(settings, media_url(doc["playlist_url"], "aac_256"))
    plain = await client.get(url, headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain.headers
    body = await plain.read()
    zipped = await client.get(url, headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    raw = await zipped.read()
    assert len(raw) < len(body)
    assert gzip.decompress(raw) == body


async def test_playlist_session_token_garbage(client: Client) -> None:
    for token in ["x", "a.b", "e30.e30", "A" * 3000]:
        response = await client.get(f"/v1/s/{token}/main.m3u8")
        assert response.status == 401, token


async def test_unknown_rendition_is_404(
    client: Client, open_session: OpenSession, settings: Settings
) -> None:
    doc = await open_session("free", codecs=["mp4a.40.2"])
    response = await client.get(path_of(settings, media_url(doc["playlist_url"], "opus_96")))
    assert response.status == 404  # exists, free, but not offered to an AAC-only device
    response = await client.get(path_of(settings, media_url(doc["playlist_url"], "mp3_128")))
    assert response.status == 404


async def test_media_playlists_are_one_body_for_every_session(
    client: Client, open_session: OpenSession, settings: Settings
) -> None:
    one, other = await open_session("free"), await open_session("free")
    for gzip_ok in (False, True):
        headers = {"Accept-Encoding": "gzip" if gzip_ok else "identity"}
        bodies = []
        for doc in (one, other):
            url = path_of(settings, media_url(doc["playlist_url"], "aac_96"))
            response = await client.get(url, headers=headers, auto_decompress=False)
            assert response.status == 200
            assert ("Content-Encoding" in response.headers) is gzip_ok
            bodies.append(await response.read())
        assert bodies[0] == bodies[1]  # no token inside: the same bytes for everyone
    # And the token is still checked: another session's playlist path with a forged token.
    forged = one["playlist_url"].replace("/main.m3u8", "x/aac_96/playlist.m3u8")
    assert (await client.get(path_of(settings, forged))).status == 401
