"""Session playlists: valid (m3u8 and manifests parse and lint), entitled, the same bytes for
every session, every URI relative to the session's directory."""

from __future__ import annotations

import dataclasses
import gzip
from urllib.parse import urljoin

import m3u8
import pytest

from cdn_edge.errors import NotEntitled, NotFound
from cdn_edge.playback.catalog_cache import PublishedTrack
from cdn_edge.playback.playlist_builder import (
    LOUDNESS_DATA_ID,
    PlaylistBody,
    PlaylistBuilder,
    Template,
)
from cdn_edge.playback.tokens import SessionClaims
from drm import KeyRing
from manifests import lint_media, lint_multivariant, parse_media, parse_multivariant
from tests.edge.builders import build_track

NOW = 1_700_000_000
BASE = "https://edge.example.com"
SESSION_DIR = f"{BASE}/v1/s/session-token/"


@pytest.fixture
def published(ring: KeyRing) -> PublishedTrack:
    return PublishedTrack(build_track(ring, "trk1", "v1", segments=5, rotation=2).record)


def session(tier: str, variants: tuple[str, ...]) -> SessionClaims:
    return SessionClaims("sid", "trk1", "v1", "u1", tier, variants, NOW + 7200)  # type: ignore[arg-type]


FREE = session("free", ("opus_160", "opus_96", "opus_32", "aac_160", "aac_96"))
PREMIUM = session("premium", ("opus_160", "aac_256", "aac_160", "aac_96", "flac"))


def text(body: PlaylistBody) -> str:
    assert body.gzipped is not None and gzip.decompress(body.gzipped) == body.plain
    return body.plain.decode()


def test_multivariant_lists_only_the_session_variants(published: PublishedTrack) -> None:
    playlist = text(PlaylistBuilder(BASE).multivariant(published, FREE))
    parsed = parse_multivariant(playlist)
    assert lint_multivariant(parsed) == []
    assert [v.uri for v in parsed.variants] == [f"{n}/playlist.m3u8" for n in FREE.variants]
    first = published.renditions["opus_160"]
    assert parsed.variants[0].codecs == "opus"
    assert parsed.variants[0].bandwidth == first.bandwidth
    assert parsed.variants[0].average_bandwidth == first.average_bandwidth
    assert parsed.independent_segments
    assert "aac_256" not in playlist and "flac" not in playlist and "premium" not in playlist
    # Session keys: the first free key, once, beside the session's media playlists.
    assert [k.uri for k in parsed.session_keys] == ["keys/v1-free-0"]
    data = {d.data_id: d.value for d in parsed.session_data}
    assert data[f"{LOUDNESS_DATA_ID}.gain-db"] == "-4.50"
    assert data[f"{LOUDNESS_DATA_ID}.target-lufs"] == "-14.0"
    loaded = m3u8.loads(playlist)
    assert loaded.is_variant
    assert [p.stream_info.codecs for p in loaded.playlists][:2] == ["opus", "opus"]
    assert len(loaded.session_keys) == 1


def test_premium_multivariant_preloads_both_key_tiers(published: PublishedTrack) -> None:
    parsed = parse_multivariant(text(PlaylistBuilder(BASE).multivariant(published, PREMIUM)))
    assert {k.uri for k in parsed.session_keys} == {"keys/v1-free-0", "keys/v1-premium-0"}
    assert "flac/playlist.m3u8" in [v.uri for v in parsed.variants]


def test_media_playlist(published: PublishedTrack) -> None:
    playlist = text(PlaylistBuilder(BASE).media(published, FREE, "aac_160"))
    parsed = parse_media(playlist)
    assert lint_media(parsed) == []
    rendition = published.renditions["aac_160"]
    assert len(parsed.segments) == len(rendition.segments) == 5
    first = parsed.segments[0]
    assert first.map is not None and first.map.uri == "init.mp4"
    # Relative: from {base}/v1/s/{token}/aac_160/playlist.m3u8 to its files, on any pathway.
    playlist_url = urljoin(SESSION_DIR, "aac_160/playlist.m3u8")
    assert urljoin(playlist_url, first.map.uri) == f"{SESSION_DIR}aac_160/init.mp4"
    for segment, record in zip(parsed.segments, rendition.segments, strict=True):
        assert urljoin(playlist_url, segment.uri) == f"{SESSION_DIR}{record.key}"
    # One EXT-X-KEY per key period (2 segments), without IV: each segment's IV is its
    # Media Sequence Number (RFC 8216 5.2), numbered from the rendition's own range.
    assert parsed.media_sequence == rendition.media_sequence > 0
    assert [s.key is not None for s in parsed.segments] == [True, False, True, False, True]
    for (key, iv), record in zip(parsed.segment_keys(), rendition.segments, strict=True):
        assert key is not None and key.method == "AES-128" and key.iv is None
        assert iv == bytes.fromhex(record.iv_hex)
        assert key.uri == f"../keys/{record.key_id}"
        assert urljoin(playlist_url, key.uri) == f"{SESSION_DIR}keys/{record.key_id}"
    loaded = m3u8.loads(playlist)
    assert loaded.is_endlist and loaded.playlist_type == "vod"
    assert len(loaded.segments) == 5 and loaded.target_duration == 6
    init_section = loaded.segments[0].init_section
    assert init_section is not None and init_section.uri == "init.mp4"


def test_tracks_published_with_random_ivs_name_every_iv(ring: KeyRing) -> None:
    legacy = PublishedTrack(build_track(ring, segments=5, rotation=2, random_ivs=True).record)
    parsed = parse_media(text(PlaylistBuilder(BASE).media(legacy, FREE, "aac_160")))
    assert lint_media(parsed) == []
    records = legacy.renditions["aac_160"].segments
    assert parsed.media_sequence == 0
    for segment, record in zip(parsed.segments, records, strict=True):
        assert segment.key is not None  # its own IV: an EXT-X-KEY before every segment
        assert segment.key.iv == bytes.fromhex(record.iv_hex)
        assert segment.key.uri is not None and record.key_id in segment.key.uri


def test_one_key_has_one_uri_in_all_of_a_sessions_playlists(published: PublishedTrack) -> None:
    # Players cache keys by URI: a switch between renditions of a tier, or a playlist
    # fetched hours later, must name the keys the player already holds.
    builder = PlaylistBuilder(BASE)
    main = parse_multivariant(text(builder.multivariant(published, FREE)))
    main_url = urljoin(SESSION_DIR, "main.m3u8")
    uris: dict[str, set[str]] = {}
    for rendition in FREE.variants:
        media = parse_media(text(builder.media(published, FREE, rendition)))
        playlist_url = urljoin(SESSION_DIR, f"{rendition}/playlist.m3u8")
        for key, _ in media.segment_keys():
            assert key is not None and key.uri is not None
            uris.setdefault(key.uri.rsplit("/", 1)[1], set()).add(urljoin(playlist_url, key.uri))
    assert sorted(uris) == ["v1-free-0", "v1-free-1", "v1-free-2"]
    assert all(len(spellings) == 1 for spellings in uris.values())
    assert urljoin(main_url, main.session_keys[0].uri) in uris["v1-free-0"]


def test_bodies_are_rendered_once_and_shared_by_every_session(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE)
    first = builder.media(published, FREE, "aac_96")
    other = dataclasses.replace(FREE, session_id="sid2", user_id="u2")
    assert builder.media(published, other, "aac_96") is first
    assert builder.multivariant(published, other) is builder.multivariant(published, FREE)
    assert len(builder._bodies) == 2  # one body per (version, rendition) and variant set


@pytest.mark.parametrize("rendition", ["aac_256", "flac"])
def test_free_session_cannot_get_premium_media_playlists(
    published: PublishedTrack, rendition: str
) -> None:
    with pytest.raises(NotEntitled):
        PlaylistBuilder(BASE).media(published, FREE, rendition)


def test_unknown_or_unoffered_rendition(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE)
    with pytest.raises(NotFound):
        builder.media(published, FREE, "mp3_320")
    aac_only = session("free", ("aac_160", "aac_96"))
    with pytest.raises(NotFound, match="not offered"):
        builder.media(published, aac_only, "opus_96")


def test_template_fill() -> None:
    assert Template.split("a~t~b~t~").fill("T") == "aTbT"
    assert Template.split("no slots").fill("T") == "no slots"
