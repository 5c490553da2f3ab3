"""Golden files: exact text for representative playlists, read back by us and by `m3u8`."""

from __future__ import annotations

from pathlib import Path

import m3u8
import pytest

from manifests import (
    Key,
    MediaPlaylist,
    lint_media,
    lint_multivariant,
    parse_media,
    parse_multivariant,
    render_media,
    render_multivariant,
)
from tests.manifests.builders import (
    ENCRYPTED_DURATIONS,
    KEY_ROTATION,
    encrypted_media,
    iv_for,
    steered_multivariant,
)

GOLDEN = Path(__file__).parent / "golden"
MEDIA = (GOLDEN / "encrypted_media.m3u8").read_text()
MULTIVARIANT = (GOLDEN / "steered_multivariant.m3u8").read_text()
FFMPEG = (GOLDEN / "ffmpeg_fmp4.m3u8").read_text()


def _keys_in_effect(playlist: MediaPlaylist) -> list[Key | None]:
    """The key each segment is encrypted with: a tag applies until the next one (4.3.2.4)."""
    current: Key | None = None
    keys = []
    for segment in playlist.segments:
        current = segment.key or current
        keys.append(current)
    return keys


def test_encrypted_media_renders_exactly() -> None:
    assert render_media(encrypted_media()) == MEDIA


def test_steered_multivariant_renders_exactly() -> None:
    assert render_multivariant(steered_multivariant()) == MULTIVARIANT


def test_golden_files_parse_back_to_their_models() -> None:
    assert parse_media(MEDIA) == encrypted_media()
    assert parse_multivariant(MULTIVARIANT) == steered_multivariant()


def test_golden_playlists_lint_clean() -> None:
    assert lint_media(encrypted_media()) == []
    assert lint_multivariant(steered_multivariant()) == []
    assert lint_media(parse_media(FFMPEG)) == []


def test_golden_text_has_the_shape_players_expect() -> None:
    lines = MEDIA.splitlines()
    assert lines[:6] == [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        "#EXT-X-TARGETDURATION:6",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    assert lines[-1] == "#EXT-X-ENDLIST"
    assert MEDIA.endswith("\n") and "\r" not in MEDIA
    key_lines = [line for line in lines if line.startswith("#EXT-X-KEY:")]
    assert len(key_lines) == len(ENCRYPTED_DURATIONS) // KEY_ROTATION
    assert all(",IV=0x" in line and len(line.rpartition("=0x")[2]) == 32 for line in key_lines)


@pytest.mark.parametrize("text", [MEDIA, FFMPEG], ids=["encrypted", "ffmpeg"])
def test_m3u8_package_agrees_on_media(text: str) -> None:
    ours, theirs = parse_media(text), m3u8.loads(text)
    # types-m3u8 declares `version` a str; the parser stores the int it read.
    assert theirs.version == ours.version  # type: ignore[comparison-overlap]
    assert theirs.target_duration == ours.target_duration
    assert theirs.media_sequence == ours.media_sequence
    assert theirs.playlist_type == (ours.playlist_type or "").lower()
    assert theirs.is_endlist == ours.endlist
    assert theirs.is_independent_segments == ours.independent_segments
    assert len(theirs.segments) == len(ours.segments)
    assert [s.uri for s in theirs.segments] == [s.uri for s in ours.segments]
    assert [s.duration for s in theirs.segments] == [s.duration for s in ours.segments]
    init_uris = [s.init_section.uri if s.init_section else None for s in theirs.segments]
    assert init_uris == ["init.mp4"] * len(ours.segments)
    expected_keys = [
        (k.method, k.uri, "0x" + k.iv.hex().upper() if k.iv else None) if k else None
        for k in _keys_in_effect(ours)
    ]
    assert [(s.key.method, s.key.uri, s.key.iv) if s.key else None for s in theirs.segments] == (
        expected_keys
    )


def test_m3u8_package_sees_the_key_rotation() -> None:
    theirs = m3u8.loads(MEDIA)
    assert [s.duration for s in theirs.segments] == list(ENCRYPTED_DURATIONS)
    assert [s.key.uri if s.key else None for s in theirs.segments] == [
        f"https://edge.example.com/keys/42/{i // KEY_ROTATION}"
        for i in range(len(ENCRYPTED_DURATIONS))
    ]
    third_key = theirs.segments[2].key
    assert third_key is not None and third_key.iv == "0x" + iv_for(1).hex().upper()


def test_m3u8_package_agrees_on_multivariant() -> None:
    ours, theirs = parse_multivariant(MULTIVARIANT), m3u8.loads(MULTIVARIANT)
    assert theirs.is_variant
    # types-m3u8 declares `version` a str; the parser stores the int it read.
    assert theirs.version == ours.version  # type: ignore[comparison-overlap]
    assert [
        (
            v.uri,
            v.stream_info.bandwidth,
            v.stream_info.average_bandwidth,
            v.stream_info.codecs,
            v.stream_info.pathway_id,
            v.stream_info.stable_variant_id,
        )
        for v in theirs.playlists
    ] == [
        (v.uri, v.bandwidth, v.average_bandwidth, v.codecs, v.pathway_id, v.stable_variant_id)
        for v in ours.variants
    ]
    assert ours.content_steering is not None
    assert theirs.content_steering.uri == ours.content_steering.server_uri
    assert theirs.content_steering.pathway_id == ours.content_steering.pathway_id
    assert [(k.method, k.uri, k.iv) if k else None for k in theirs.session_keys] == [
        (k.method, k.uri, "0x" + k.iv.hex().upper() if k.iv else None) for k in ours.session_keys
    ]
    assert [(d.data_id, d.value, d.uri, d.language) for d in theirs.session_data] == [
        (d.data_id, d.value, d.uri, d.language) for d in ours.session_data
    ]
