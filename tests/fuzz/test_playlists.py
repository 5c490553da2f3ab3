"""Playlists read back (manifests.parse_media / parse_multivariant), strict and lenient: text
of playlist lines and tags in any order, and valid playlists with lines dropped, repeated,
swapped and edited. Each parses or raises a ManifestError with the line it stopped at."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from manifests import render_multivariant
from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.targets import ManifestError, parse_media, parse_multivariant, render_media
from tests.manifests.strategies import media_playlists, multivariant_playlists

TAGS = [
    "#EXTM3U", "#EXT-X-VERSION:", "#EXT-X-TARGETDURATION:", "#EXT-X-MEDIA-SEQUENCE:",
    "#EXT-X-PLAYLIST-TYPE:", "#EXT-X-ENDLIST", "#EXTINF:", "#EXT-X-BYTERANGE:",
    "#EXT-X-DISCONTINUITY", "#EXT-X-KEY:", "#EXT-X-MAP:", "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-STREAM-INF:", "#EXT-X-SESSION-DATA:", "#EXT-X-SESSION-KEY:",
    "#EXT-X-CONTENT-STEERING:", "#EXT-X-MEDIA:", "#", "",
]  # fmt: skip
VALUES = st.text(
    st.sampled_from(list('0123456789.,-=@"xABCDEFGHIKLMNOPRSTUVWYZ:/ \t\ufeff\x00')), max_size=60
) | st.sampled_from(
    [
        'METHOD=AES-128,URI="k",IV=0x' + "0" * 32,
        'URI="init.mp4",BYTERANGE="10@0"',
        'BANDWIDTH=1,CODECS="mp4a.40.2"',
        "6.0,",
        "-1",
        "1e309",
        "NaN",
        "18446744073709551616",
        "VOD",
        'DATA-ID="a",VALUE="b"',
        'SERVER-URI="/s",PATHWAY-ID="p"',
        "A=B,A=B",
        'A="',
    ]
)
LINES = st.builds(lambda tag, value: tag + value, st.sampled_from(TAGS), VALUES) | st.text(
    max_size=40
)


@st.composite
def edited(draw: st.DrawFn, text: str) -> str:
    """`text` with a few lines dropped, repeated, swapped, replaced or cut short."""
    lines = text.split("\n")
    for _ in range(draw(st.integers(1, 4))):
        if not lines:
            break
        at = draw(st.integers(0, len(lines) - 1))
        action = draw(st.integers(0, 4))
        if action == 0:
            del lines[at]
        elif action == 1:
            lines.insert(at, lines[at])
        elif action == 2:
            other = draw(st.integers(0, len(lines) - 1))
            lines[at], lines[other] = lines[other], lines[at]
        elif action == 3:
            lines[at] = draw(LINES)
        else:
            lines[at] = lines[at][: draw(st.integers(0, len(lines[at])))]
    return "\n".join(lines)


PLAYLIST_TEXT = (
    st.builds(lambda lines: "\n".join(["#EXTM3U", *lines]), st.lists(LINES, max_size=20))
    | media_playlists().map(render_media).flatmap(edited)
    | multivariant_playlists().map(render_multivariant).flatmap(edited)
    | st.text(max_size=200)
)


@pytest.mark.parametrize("scale", SCALES)
def test_playlists_read_back(scale: int) -> None:
    @budget(200, scale)  # valid playlists are slow to generate
    @given(PLAYLIST_TEXT, st.booleans())
    def check(text: str, strict: bool) -> None:
        tried("playlists read back (parse_media, parse_multivariant)")
        for parse in (parse_media, parse_multivariant):
            try:
                parse(text, strict=strict)
            except ManifestError as exc:
                assert str(exc)

    check()
