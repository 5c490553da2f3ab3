"""Multivariant playlists with content steering: every variant once per pathway, valid."""

from __future__ import annotations

import dataclasses
from urllib.parse import urljoin

import m3u8
import pytest

from cdn_edge.playback.catalog_cache import PublishedTrack
from cdn_edge.playback.playlist_builder import PlaylistBuilder
from cdn_edge.playback.tokens import PlaybackTokens, SessionClaims
from cdn_edge.steering.pathways import Pathway
from drm import KeyRing
from manifests import lint_media, lint_multivariant, parse_media, parse_multivariant
from tests.edge.builders import build_track

NOW = 1_700_000_000
BASE = "https://edge.example.com"
TOKENS = PlaybackTokens(b"p" * 32)
PATHWAYS = (
    Pathway("edge", BASE),
    Pathway("cdn-a", "https://a.example.net", frozenset({"SE"})),
    Pathway("cdn-b", "https://b.example.net/streamer", weight=3),
)
SESSION = SessionClaims(
    "sid", "trk1", "v1", "u1", "free", ("opus_160", "aac_160", "aac_96"), NOW + 7200, "SE"
)
TOKEN = TOKENS.sign_session(SESSION)


@pytest.fixture
def published(ring: KeyRing) -> PublishedTrack:
    return PublishedTrack(build_track(ring, "trk1", "v1", segments=5, rotation=2).record)


def steered(published: PublishedTrack, first: str = "cdn-a", token: str = TOKEN) -> str:
    builder = PlaylistBuilder(BASE, PATHWAYS)
    return builder.steered_multivariant(published, SESSION, token, first)


def test_every_variant_once_per_pathway(published: PublishedTrack) -> None:
    text = steered(published)
    parsed = parse_multivariant(text)
    assert lint_multivariant(parsed) == []
    assert parsed.content_steering is not None
    assert parsed.content_steering.server_uri == f"{BASE}/v1/steer/{TOKEN}"
    assert parsed.content_steering.pathway_id == "cdn-a"
    by_pathway: dict[str | None, list[str]] = {}
    for variant in parsed.variants:
        by_pathway.setdefault(variant.pathway_id, []).append(variant.stable_variant_id or "")
    assert by_pathway == {p.id: list(SESSION.variants) for p in PATHWAYS}
    # The session's first pathway first: players without steering start there (RFC 8216 6.3.1).
    assert [v.pathway_id for v in parsed.variants[:3]] == ["cdn-a"] * 3
    urls = {(v.pathway_id, v.stable_variant_id): v.uri for v in parsed.variants}
    for pathway in PATHWAYS:
        for name in SESSION.variants:
            assert urls[pathway.id, name] == (
                f"{pathway.base_url}/v1/s/{TOKEN}/{name}/playlist.m3u8"
            )
    # One BANDWIDTH and CODECS per rendition, whatever the pathway.
    rendition = published.renditions["aac_160"]
    for variant in parsed.variants:
        if variant.stable_variant_id == "aac_160":
            assert (variant.bandwidth, variant.codecs) == (rendition.bandwidth, rendition.codecs)
    # Session keys resolve against the multivariant playlist, which the edge serves.
    assert [k.uri for k in parsed.session_keys] == ["keys/v1-free-0"]


def test_m3u8_reads_the_steering_tags(published: PublishedTrack) -> None:
    loaded = m3u8.loads(steered(published, first="edge"))
    assert loaded.is_variant
    assert loaded.content_steering.uri == f"{BASE}/v1/steer/{TOKEN}"
    assert loaded.content_steering.pathway_id == "edge"
    assert len(loaded.playlists) == len(PATHWAYS) * len(SESSION.variants)
    pairs = {(p.stream_info.pathway_id, p.stream_info.stable_variant_id) for p in loaded.playlists}
    assert pairs == {(p.id, n) for p in PATHWAYS for n in SESSION.variants}
    assert (loaded.playlists[0].uri or "").startswith(f"{BASE}/v1/s/{TOKEN}/")


def test_templates_per_first_pathway_shared_by_sessions(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE, PATHWAYS)
    other = dataclasses.replace(SESSION, session_id="sid2")
    other_token = TOKENS.sign_session(other)
    a = builder.steered_multivariant(published, SESSION, TOKEN, "cdn-a")
    b = builder.steered_multivariant(published, other, other_token, "cdn-a")
    assert TOKEN in a and other_token not in a and other_token in b
    assert a.replace(TOKEN, "T") == b.replace(other_token, "T")
    builder.steered_multivariant(published, SESSION, TOKEN, "cdn-b")
    assert len(builder._templates) == 2


def test_steered_playlists_need_a_known_pathway(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE, PATHWAYS)
    with pytest.raises(ValueError, match="cdn-z"):
        builder.steered_multivariant(published, SESSION, TOKEN, "cdn-z")
    with pytest.raises(ValueError, match="pathways"):
        builder.multivariant(published, SESSION)


def test_one_pathway_means_no_steering(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE, PATHWAYS[:1])
    assert not builder.steered
    parsed = parse_multivariant(builder.multivariant(published, SESSION).plain.decode())
    assert parsed.content_steering is None
    assert [v.uri for v in parsed.variants] == [f"{n}/playlist.m3u8" for n in SESSION.variants]


def test_media_playlist_files_and_keys_follow_the_pathway(published: PublishedTrack) -> None:
    # One body for every pathway: its segments come from the CDN that served it, which caches
    # them without the token, and its keys pass through that CDN uncached (no-store).
    builder = PlaylistBuilder(BASE, PATHWAYS)
    media = parse_media(builder.media(published, SESSION, "aac_160").plain.decode())
    assert lint_media(media) == []
    for pathway in PATHWAYS:
        session_dir = f"{pathway.base_url}/v1/s/{TOKEN}/"
        playlist_url = f"{session_dir}aac_160/playlist.m3u8"
        for segment in media.segments:
            url = urljoin(playlist_url, segment.uri)
            assert url.startswith(f"{session_dir}aac_160/seg_"), url
            if segment.key is not None:
                assert segment.key.uri is not None
                assert urljoin(playlist_url, segment.key.uri).startswith(f"{session_dir}keys/")
        assert media.segments[0].map is not None
        init = urljoin(playlist_url, media.segments[0].map.uri)
        assert init == f"{session_dir}aac_160/init.mp4"
