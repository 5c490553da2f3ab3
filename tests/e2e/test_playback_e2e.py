"""Ingest to edge to a player, in process: what a listener hears is the master, and only what
the listener's tier is entitled to can be had, however the URLs are edited.

A generated master is ingested into a local object store; the edge app runs over that store,
a SQLite session store and the same key ring. A scripted player opens sessions and follows
every URI as an HLS client would (multivariant to media playlists, EXT-X-MAP, EXT-X-KEY with
its IV), decrypts with the keys the edge delivered, and ffmpeg decodes the result.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import m3u8
import numpy as np
import pytest
from aiohttp import web

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from drm import KeyRing, decrypt_segment, new_kek
from streamer.bearer_tokens import CLOCK_LEEWAY_S
from streamer.catalog import Tier, TrackRecord
from streamer.objects.local import LocalObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings, load_settings
from streamer.token_secrets import TokenSecrets, derive_secrets
from tests.audio_compare import COMPARE_RATE, MIN_CORRELATION, aligned_correlation
from tests.edge.builders import build_track, publish
from tests.edge.conftest import Client, ManualClock
from tests.masters import decode_pcm, make_master
from tests.transcoder.conftest import clear_segments
from transcoder.pipeline import ingest_master

pytestmark = pytest.mark.slow

MASTER_S = 12.0
TRACK_ID = "E2E-TRACK-1"
OTHER_TRACK_ID = "E2E-TRACK-2"  # a second published track, for tokens that must not cross
ALL_CODECS = ["mp4a.40.2", "opus", "fLaC"]
FREE_VARIANTS = {"aac_96", "aac_160", "opus_32", "opus_96", "opus_160"}
PREMIUM_ONLY = {"aac_256", "flac"}


@dataclass(frozen=True)
class Ingested:
    master: Path
    record: TrackRecord
    other: TrackRecord
    store: LocalObjectStore
    ring: KeyRing
    settings: Settings


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory) -> Ingested:
    root = tmp_path_factory.mktemp("e2e")
    # 4 s segments and a new key every segment: 12 s of audio play through three keys per tier.
    settings = load_settings(
        environ={}, data_dir=root / "data", segment_target_s=4, key_rotation_segments=1
    )
    kek = new_kek()
    ring = KeyRing(kek.kek_id, (kek,))
    store = LocalObjectStore(root / "objects")
    master = make_master(root / "master.flac", seconds=MASTER_S)
    result = ingest_master(
        master,
        track_id=TRACK_ID,
        metadata={"title": "End to end"},
        settings=settings,
        store=store,
        ring=ring,
        work_dir=root / "work",
    )
    other = build_track(ring, OTHER_TRACK_ID, "v1")
    publish(store, other)
    return Ingested(master, result.record, other.record, store, ring, settings)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def edge_secrets() -> TokenSecrets:
    return derive_secrets(b"e2e-secret-" + b"x" * 32)


@pytest.fixture
async def client(
    aiohttp_client: Callable[[web.Application], Awaitable[Client]],
    ingested: Ingested,
    edge_secrets: TokenSecrets,
    clock: ManualClock,
    tmp_path: Path,
) -> Client:
    app = create_app(
        ingested.settings,
        ingested.store,  # the edge is handed the store as its read-only ObjectReader
        SQLiteSessionStore(tmp_path / "sessions.sqlite3"),
        ingested.ring,
        clock=clock,
        secrets=edge_secrets,
        hls_dir=tmp_path / "hls",
    )
    return await aiohttp_client(app)


@dataclass
class Player:
    """A scripted HLS client over the test client: follows URIs, caches keys by URI."""

    client: Client
    settings: Settings
    keys: dict[str, bytes] = field(default_factory=dict)

    def path(self, url: str) -> str:
        base = self.settings.base_url
        assert url.startswith(base + "/"), f"{url} is not on the edge {base}"
        return url[len(base) :]

    async def get(self, url: str, status: int = 200) -> bytes:
        response = await self.client.get(self.path(url))
        body = await response.read()
        assert response.status == status, f"GET {url}: {response.status} {body[:300]!r}"
        return body

    async def open_session(self, token: str, track_id: str, codecs: list[str]) -> dict[str, Any]:
        response = await self.client.post(
            "/v1/sessions",
            json={"track_id": track_id, "device": {"codecs": codecs}},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert response.status == 201, await response.text()
        doc: dict[str, Any] = await response.json()
        return doc

    async def multivariant(self, url: str) -> m3u8.M3U8:
        return m3u8.loads((await self.get(url)).decode(), uri=url)

    async def media(self, main_url: str, rendition: str) -> tuple[str, m3u8.M3U8]:
        url = urljoin(main_url, f"{rendition}/playlist.m3u8")
        return url, m3u8.loads((await self.get(url)).decode(), uri=url)

    async def key(self, url: str) -> bytes:
        if url not in self.keys:
            key = await self.get(url)
            assert len(key) == 16, f"{url}: a {len(key)}-byte key"
            self.keys[url] = key
        return self.keys[url]

    async def play(self, media_url: str, media: m3u8.M3U8) -> bytes:
        """The rendition as a clear fMP4 file: init section, then every segment decrypted."""
        assert len(media.segment_map) == 1
        out = [await self.get(urljoin(media_url, media.segment_map[0].uri))]
        for index, segment in enumerate(media.segments):
            key = segment.key  # the EXT-X-KEY in effect for this segment (RFC 8216 4.3.2.4)
            assert key is not None and key.method == "AES-128", segment.uri
            content_key = await self.key(urljoin(media_url, key.uri))
            if key.iv:
                iv = bytes.fromhex(key.iv.removeprefix("0x").removeprefix("0X"))
            else:  # the segment's Media Sequence Number, 128-bit big-endian (RFC 8216 5.2)
                iv = ((media.media_sequence or 0) + index).to_bytes(16, "big")
            body = await self.get(urljoin(media_url, segment.uri))
            out.append(decrypt_segment(body, content_key, iv))
        return b"".join(out)


def key_uri(segment: m3u8.Segment) -> str | None:
    """The URI of the EXT-X-KEY in effect for `segment`, which must have one."""
    assert segment.key is not None, f"{segment.uri} has no EXT-X-KEY"
    return segment.key.uri


def listener(secrets: TokenSecrets, clock: ManualClock, tier: Tier, ttl_s: int = 3600) -> str:
    user = f"listener-{tier}"
    return issue_listener_token(secrets.platform_key, user, tier, "SE", ttl_s, clock())


def with_query(url: str, name: str, value: str) -> str:
    """`url` with its one query parameter `name` replaced by `value`."""
    head, _, _ = url.partition("?")
    return f"{head}?{name}={value}"


def query(url: str, name: str) -> str:
    return parse_qs(urlsplit(url).query)[name][0]


def corrupt(token: str) -> str:
    """`token` with one character of its signature changed."""
    i = len(token) - 10
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


def forge_claim(token: str, claim: str, value: object) -> str:
    """A token with one payload claim edited and the original signature kept."""
    payload, _, signature = token.rpartition(".")
    header = ""
    if payload.count("."):  # a JWT: header.payload.signature
        header, _, payload = payload.partition(".")
        header += "."
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims[claim] = value
    edited = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode())
    return f"{header}{edited.decode().rstrip('=')}.{signature}"


@pytest.mark.parametrize(
    ("tier", "offered"),
    [("free", FREE_VARIANTS), ("premium", FREE_VARIANTS | PREMIUM_ONLY)],
)
async def test_listener_hears_the_master_in_every_offered_rendition(
    client: Client,
    ingested: Ingested,
    edge_secrets: TokenSecrets,
    clock: ManualClock,
    tmp_path: Path,
    tier: Tier,
    offered: set[str],
) -> None:
    player = Player(client, ingested.settings)
    record = ingested.record
    doc = await player.open_session(listener(edge_secrets, clock, tier), TRACK_ID, ALL_CODECS)
    assert set(doc["variants"]) == offered
    assert doc["loudness"]["gain_db"] == record.loudness.playback_gain_db
    main_url = doc["playlist_url"]
    main = await player.multivariant(main_url)
    assert {p.stream_info.stable_variant_id for p in main.playlists} == offered
    assert main.playlists[0].uri == f"{doc['start_variant']['rendition']}/playlist.m3u8"
    gains = [d.value for d in main.session_data if d.data_id.endswith(".gain-db")]
    assert gains == [f"{record.loudness.playback_gain_db:.2f}"]

    reference = np.frombuffer(decode_pcm(ingested.master, COMPARE_RATE), dtype=np.float32)
    for variant in main.playlists:
        name = variant.stream_info.stable_variant_id
        assert name is not None, variant.uri
        media_url = urljoin(main_url, variant.uri)
        media = m3u8.loads((await player.get(media_url)).decode(), uri=media_url)
        clear = await player.play(media_url, media)
        # Byte for byte what ingest encrypted, through the edge's playlists and keys...
        assert clear == clear_segments(ingested.store, ingested.ring, record, name), name
        # ...and it sounds like the master.
        path = tmp_path / f"{tier}-{name}.mp4"
        path.write_bytes(clear)
        decoded = np.frombuffer(decode_pcm(path, COMPARE_RATE), dtype=np.float32)
        correlation, _ = aligned_correlation(reference, decoded)
        assert correlation >= MIN_CORRELATION[name], f"{tier} {name}: {correlation:.4f}"

    # One key per tier and rotation period, fetched once each: renditions of a tier share keys.
    periods = len(record.renditions[0].segments)
    assert periods == 3
    assert len(player.keys) == periods * (2 if tier == "premium" else 1)
    # EXT-X-SESSION-KEY names the first key of each tier, for prefetch (RFC 8216 4.3.4.5).
    assert None not in main.session_keys
    session_keys = {urljoin(main_url, k.uri) for k in main.session_keys if k is not None}
    assert session_keys <= set(player.keys)


async def test_free_listener_cannot_edit_urls_into_premium(
    client: Client, ingested: Ingested, edge_secrets: TokenSecrets, clock: ManualClock
) -> None:
    player = Player(client, ingested.settings)
    free = await player.open_session(listener(edge_secrets, clock, "free"), TRACK_ID, ALL_CODECS)
    premium = await player.open_session(
        listener(edge_secrets, clock, "premium"), TRACK_ID, ALL_CODECS
    )
    free_main, premium_main = free["playlist_url"], premium["playlist_url"]
    free_media_url, free_media = await player.media(free_main, "aac_160")

    # Swap the rendition name in the playlist URL.
    for name in sorted(PREMIUM_ONLY):
        await player.get(urljoin(free_main, f"{name}/playlist.m3u8"), status=403)

    # Swap the key id in a key URL: the session's tier is in its token; and the premium key
    # ids are not in any free playlist, but follow a visible pattern (version-tier-period).
    free_key_url = urljoin(free_media_url, key_uri(free_media.segments[0]))
    await player.get(free_key_url)
    premium_key_ids = sorted(k.key_id for k in ingested.record.keys if k.tier == "premium")
    for key_id in premium_key_ids:
        edited = f"{free_key_url.rsplit('/', 1)[0]}/{key_id}"
        await player.get(edited, status=403)

    # Reuse a premium session's segment URLs under the free session's token.
    free_token = urlsplit(free_main).path.split("/")[3]
    premium_token = urlsplit(premium_main).path.split("/")[3]
    for name in sorted(PREMIUM_ONLY):
        url, media = await player.media(premium_main, name)
        premium_urls = [urljoin(url, media.segment_map[0].uri)]
        premium_urls += [urljoin(url, s.uri) for s in media.segments]
        for premium_url in premium_urls:
            await player.get(premium_url)  # the premium session may
            await player.get(premium_url.replace(premium_token, free_token), status=403)

    # Upgrade the session token's tier by hand: the signature no longer matches.
    forged = forge_claim(free_token, "tier", "premium")
    await player.get(free_main.replace(free_token, forged), status=401)
    await player.get(urljoin(free_main.replace(free_token, forged), "flac/playlist.m3u8"), 401)


async def test_expired_and_tampered_tokens_are_refused(
    client: Client, ingested: Ingested, edge_secrets: TokenSecrets, clock: ManualClock
) -> None:
    player = Player(client, ingested.settings)

    async def session_status(token: str) -> int:
        response = await client.post(
            "/v1/sessions",
            json={"track_id": TRACK_ID, "device": {"codecs": ALL_CODECS}},
            headers={"Authorization": f"Bearer {token}"},
        )
        return response.status

    # Listener tokens: a free listener promoting itself, another issuer's secret, expiry.
    free = listener(edge_secrets, clock, "free")
    assert await session_status(forge_claim(free, "tier", "premium")) == 401
    other_issuer = derive_secrets(b"someone-else-" + b"y" * 32)
    assert await session_status(listener(other_issuer, clock, "premium")) == 401
    short = listener(edge_secrets, clock, "free", ttl_s=60)
    assert await session_status(short) == 201
    clock.advance(60 + CLOCK_LEEWAY_S)
    assert await session_status(short) == 401

    # Playback tokens: tampered and expired, for playlists, keys and segments.
    doc = await player.open_session(listener(edge_secrets, clock, "free"), TRACK_ID, ALL_CODECS)
    main_url = doc["playlist_url"]
    media_url, media = await player.media(main_url, "aac_96")
    key_url = urljoin(media_url, key_uri(media.segments[0]))
    segment_url = urljoin(media_url, media.segments[0].uri)
    token = urlsplit(main_url).path.split("/")[3]
    assert f"/{token}/" in key_url and f"/{token}/" in segment_url  # one token for all
    await player.get(key_url)
    await player.get(segment_url)
    for url in (key_url, segment_url):
        await player.get(url.replace(token, forge_claim(token, "tier", "premium")), 401)
        await player.get(url.replace(token, forge_claim(token, "exp", 2**40)), 401)
        await player.get(url.replace(token, corrupt(token)), 401)
        await player.get(url.replace(f"/{token}/", "/"), 404)  # no token at all

    # Hours into a pause the key URI is still the session's, and the playlists name it still.
    clock.advance(3 * 3600)
    await player.get(key_url)
    media_url, media = await player.media(main_url, "aac_96")
    assert urljoin(media_url, key_uri(media.segments[0])) == key_url

    clock.advance(doc["expires_in_s"])  # the session, and every token it issued, is over
    await player.get(main_url, 401)
    await player.get(media_url, 401)
    await player.get(key_url, 401)
    await player.get(segment_url, 401)


async def test_tokens_do_not_open_another_track_or_kind(
    client: Client, ingested: Ingested, edge_secrets: TokenSecrets, clock: ManualClock
) -> None:
    player = Player(client, ingested.settings)
    token = listener(edge_secrets, clock, "premium")
    one = await player.open_session(token, TRACK_ID, ALL_CODECS)
    other = await player.open_session(token, OTHER_TRACK_ID, ALL_CODECS)
    one_url, one_media = await player.media(one["playlist_url"], "aac_160")
    other_url, other_media = await player.media(other["playlist_url"], "aac_160")
    one_segment = urljoin(one_url, one_media.segments[0].uri)
    other_segment = urljoin(other_url, other_media.segments[0].uri)
    one_key = urljoin(one_url, key_uri(one_media.segments[0]))
    other_key = urljoin(other_url, key_uri(other_media.segments[0]))
    for url in (one_segment, other_segment, one_key, other_key):
        await player.get(url)

    # The track and version are the token's, never the URL's: track one's token on track two's
    # paths opens track one's objects, and track two's key ids are not in track one.
    one_token = urlsplit(one["playlist_url"]).path.split("/")[3]
    other_token = urlsplit(other["playlist_url"]).path.split("/")[3]
    swapped = await player.get(other_segment.replace(other_token, one_token))
    assert swapped == await player.get(one_segment) != await player.get(other_segment)
    assert ingested.record.version != ingested.other.version
    await player.get(other_key.replace(other_token, one_token), 404)
    # A bearer token of another kind (the listener JWT) in the session token's place.
    await player.get(one_key.replace(one_token, token), 401)
    await player.get(one_segment.replace(one_token, token), 401)
    # A session token edited to another version of the same track: no longer authentic.
    forged = forge_claim(one_token, "ver", ingested.other.version)
    await player.get(one_segment.replace(one_token, forged), 401)
