"""Properties: parse(render(m)) == m for every valid playlist, in every line ending."""

from __future__ import annotations

import m3u8
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import (
    MediaPlaylist,
    MultivariantPlaylist,
    parse_media,
    parse_multivariant,
    render_media,
    render_multivariant,
)
from manifests.duration import format_duration
from tests.manifests.strategies import PLAIN_TEXT, media_playlists, multivariant_playlists

# Shared cores: no per-example deadline, and a modest example count.
PROPERTY = settings(max_examples=150, deadline=None)


@PROPERTY
@given(media_playlists())
def test_media_round_trip(playlist: MediaPlaylist) -> None:
    assert parse_media(render_media(playlist)) == playlist


@PROPERTY
@given(media_playlists())
def test_media_round_trip_lenient_and_crlf(playlist: MediaPlaylist) -> None:
    text = render_media(playlist).replace("\n", "\r\n")
    assert parse_media(text, strict=False) == playlist


@PROPERTY
@given(multivariant_playlists())
def test_multivariant_round_trip(playlist: MultivariantPlaylist) -> None:
    assert parse_multivariant(render_multivariant(playlist)) == playlist


@PROPERTY
@given(multivariant_playlists())
def test_multivariant_round_trip_lenient_and_crlf(playlist: MultivariantPlaylist) -> None:
    text = render_multivariant(playlist).replace("\n", "\r\n")
    assert parse_multivariant(text, strict=False) == playlist


@PROPERTY
@given(st.integers(1, 10**12))
def test_durations_survive_text_at_microsecond_precision(microseconds: int) -> None:
    seconds = microseconds / 1_000_000
    text = format_duration(seconds)
    assert float(text) == seconds
    assert not text.endswith(("0", ".")) or "." not in text
    assert len(text.partition(".")[2]) <= 6


@PROPERTY
@given(media_playlists(PLAIN_TEXT))
def test_m3u8_package_reads_what_we_write(playlist: MediaPlaylist) -> None:
    theirs = m3u8.loads(render_media(playlist))
    assert theirs.target_duration == playlist.target_duration
    assert theirs.media_sequence == playlist.media_sequence
    assert theirs.is_endlist == playlist.endlist
    assert [s.uri for s in theirs.segments] == [s.uri for s in playlist.segments]
    assert [s.duration for s in theirs.segments] == [s.duration for s in playlist.segments]
    assert [s.discontinuity for s in theirs.segments] == [
        s.discontinuity for s in playlist.segments
    ]


# The m3u8 package reads integers through float, so keep bandwidths below 2**53.
@PROPERTY
@given(multivariant_playlists(PLAIN_TEXT, max_bandwidth=2**53))
def test_m3u8_package_reads_our_variants(playlist: MultivariantPlaylist) -> None:
    theirs = m3u8.loads(render_multivariant(playlist))
    assert [(v.uri, v.stream_info.bandwidth) for v in theirs.playlists] == [
        (v.uri, v.bandwidth) for v in playlist.variants
    ]
    assert [v.stream_info.codecs for v in theirs.playlists] == [v.codecs for v in playlist.variants]
