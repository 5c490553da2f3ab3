"""Session playlists: valid (m3u8 and manifests parse and lint), entitled, token-filled."""

from __future__ import annotations

import dataclasses
from urllib.parse import urljoin

import m3u8
import pytest

from cdn_edge.catalog_cache import PublishedTrack
from cdn_edge.errors import NotEntitled, NotFound
from cdn_edge.playback_tokens import PlaybackTokens, SessionClaims
from cdn_edge.playlists import LOUDNESS_DATA_ID, PlaylistBuilder, Template
from drm import KeyRing
from manifests import lint_media, lint_multivariant, parse_media, parse_multivariant
from tests.edge.builders import build_track

NOW = 1_700_000_000
BASE = "https://edge.example.com"
TOKENS = PlaybackTokens(b"p" * 32)
TOKEN = "session-token"  # the playlist URL's; playlists copy it into key URIs


@pytest.fixture
def published(ring: KeyRing) -> PublishedTrack:
    return PublishedTrack(build_track(ring, "trk1", "v1", segments=5, rotation=2).record)


def session(tier: str, variants: tuple[str, ...]) -> SessionClaims:
    return SessionClaims("sid", "trk1", "v1", "u1", tier, variants, NOW + 7200)  # type: ignore[arg-type]


FREE = session("free", ("opus_160", "opus_96", "opus_32", "aac_160", "aac_96"))
PREMIUM = session("premium", ("opus_160", "aac_256", "aac_160", "aac_96", "flac"))


def test_multivariant_lists_only_the_session_variants(published: PublishedTrack) -> None:
    text = PlaylistBuilder(BASE, TOKENS).multivariant(published, FREE, TOKEN)
    parsed = parse_multivariant(text)
    assert lint_multivariant(parsed) == []
    assert [v.uri for v in parsed.variants] == [f"{n}.m3u8" for n in FREE.variants]
    first = published.renditions["opus_160"]
    assert parsed.variants[0].codecs == "opus"
    assert parsed.variants[0].bandwidth == first.bandwidth
    assert parsed.variants[0].average_bandwidth == first.average_bandwidth
    assert parsed.independent_segments
    assert "aac_256" not in text and "flac" not in text and "premium" not in text
    # Session keys: the first free key, once, under the session's token.
    assert [k.uri for k in parsed.session_keys] == [f"{BASE}/v1/keys/{TOKEN}/v1-free-0"]
    data = {d.data_id: d.value for d in parsed.session_data}
    assert data[f"{LOUDNESS_DATA_ID}.gain-db"] == "-4.50"
    assert data[f"{LOUDNESS_DATA_ID}.target-lufs"] == "-14.0"
    loaded = m3u8.loads(text)
    assert loaded.is_variant
    assert [p.stream_info.codecs for p in loaded.playlists][:2] == ["opus", "opus"]
    assert len(loaded.session_keys) == 1


def test_premium_multivariant_preloads_both_key_tiers(published: PublishedTrack) -> None:
    parsed = parse_multivariant(
        PlaylistBuilder(BASE, TOKENS).multivariant(published, PREMIUM, TOKEN)
    )
    assert {k.uri.rsplit("/", 1)[1] for k in parsed.session_keys} == {
        "v1-free-0",
        "v1-premium-0",
    }
    assert "flac.m3u8" in [v.uri for v in parsed.variants]


def test_media_playlist(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE, TOKENS)
    text = builder.media(published, FREE, TOKEN, "aac_160", NOW)
    parsed = parse_media(text)
    assert lint_media(parsed) == []
    rendition = published.renditions["aac_160"]
    assert len(parsed.segments) == len(rendition.segments) == 5
    segment_token = TOKENS.sign_segment(FREE, published.record.duration_s, NOW)
    first = parsed.segments[0]
    assert first.map is not None
    # Relative: from {base}/v1/play/{token}/aac_160.m3u8 to {base}/v1/seg/, on any pathway.
    assert first.map.uri == f"../../seg/trk1/v1/aac_160/init.mp4?s={segment_token}"
    playlist_url = f"{BASE}/v1/play/session-token/aac_160.m3u8"
    assert urljoin(playlist_url, first.map.uri).startswith(f"{BASE}/v1/seg/trk1/v1/aac_160/")
    for segment, record in zip(parsed.segments, rendition.segments, strict=True):
        assert segment.uri == f"../../seg/trk1/v1/{record.key}?s={segment_token}"
        assert urljoin(playlist_url, segment.uri) == (
            f"{BASE}/v1/seg/trk1/v1/{record.key}?s={segment_token}"
        )
    # One EXT-X-KEY per key period (2 segments), without IV: each segment's IV is its
    # Media Sequence Number (RFC 8216 5.2), numbered from the rendition's own range.
    assert parsed.media_sequence == rendition.media_sequence > 0
    assert [s.key is not None for s in parsed.segments] == [True, False, True, False, True]
    for (key, iv), record in zip(parsed.segment_keys(), rendition.segments, strict=True):
        assert key is not None and key.method == "AES-128" and key.iv is None
        assert iv == bytes.fromhex(record.iv_hex)
        kid = record.key_id
        assert key.uri == f"{BASE}/v1/keys/{TOKEN}/{kid}"
    assert [s.key.uri[-1] for s in parsed.segments if s.key] == list("012")
    loaded = m3u8.loads(text)
    assert loaded.is_endlist and loaded.playlist_type == "vod"
    assert len(loaded.segments) == 5 and loaded.target_duration == 6
    assert loaded.segments[0].init_section.uri.endswith(segment_token)


def test_tracks_published_with_random_ivs_name_every_iv(ring: KeyRing) -> None:
    legacy = PublishedTrack(build_track(ring, segments=5, rotation=2, random_ivs=True).record)
    parsed = parse_media(PlaylistBuilder(BASE, TOKENS).media(legacy, FREE, TOKEN, "aac_160", NOW))
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
    builder = PlaylistBuilder(BASE, TOKENS)
    session_keys = parse_multivariant(builder.multivariant(published, FREE, TOKEN)).session_keys
    uris: dict[str, set[str]] = {}
    for offset, rendition in enumerate(FREE.variants):
        media = parse_media(builder.media(published, FREE, TOKEN, rendition, NOW + 3000 * offset))
        for key, _ in media.segment_keys():
            assert key is not None and key.uri is not None
            uris.setdefault(key.uri.rsplit("/", 1)[1], set()).add(key.uri)
    assert sorted(uris) == ["v1-free-0", "v1-free-1", "v1-free-2"]
    assert all(len(spellings) == 1 for spellings in uris.values())
    assert session_keys[0].uri in uris["v1-free-0"]


def test_templates_are_reused_and_tokens_refreshed(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE, TOKENS)
    first = builder.media(published, FREE, TOKEN, "aac_96", NOW)
    assert builder.media(published, FREE, TOKEN, "aac_96", NOW) == first
    other = dataclasses.replace(FREE, session_id="sid2")
    assert builder.media(published, other, "other-token", "aac_96", NOW) != first
    assert builder.media(published, FREE, TOKEN, "aac_96", NOW + 2 * 3600) != first
    assert len(builder._templates) == 1  # one template serves every session and window


@pytest.mark.parametrize("rendition", ["aac_256", "flac"])
def test_free_session_cannot_get_premium_media_playlists(
    published: PublishedTrack, rendition: str
) -> None:
    with pytest.raises(NotEntitled):
        PlaylistBuilder(BASE, TOKENS).media(published, FREE, TOKEN, rendition, NOW)


def test_unknown_or_unoffered_rendition(published: PublishedTrack) -> None:
    builder = PlaylistBuilder(BASE, TOKENS)
    with pytest.raises(NotFound):
        builder.media(published, FREE, TOKEN, "mp3_320", NOW)
    aac_only = session("free", ("aac_160", "aac_96"))
    with pytest.raises(NotFound, match="not offered"):
        builder.media(published, aac_only, TOKEN, "opus_96", NOW)


def test_template_fill() -> None:
    template = Template.split("a~s~b~t~c~t~d~s~")
    assert template.fill("T", "S") == "aSbTcTdS"
