"""Rendering details the golden files do not pin down on their own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import manifests
from manifests import (
    ByteRange,
    ContentSteering,
    Key,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    SessionData,
    VariantStream,
    render_media,
    render_multivariant,
)
from manifests.duration import format_duration


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (6.016, "6.016"),
        (16 / 3, "5.333333"),
        (6.0, "6"),
        (6, "6"),
        (10.5, "10.5"),
        (0.000001, "0.000001"),
        (5.9999996, "6"),
        (2.3466666666, "2.346667"),
        (3600.25, "3600.25"),
    ],
)
def test_extinf_durations_have_up_to_six_decimals_without_trailing_zeros(
    seconds: float, text: str
) -> None:
    assert format_duration(seconds) == text


def test_segment_tags_come_in_order_before_extinf_and_uri() -> None:
    segment = Segment(
        "a.m4s",
        5.333333,
        title="Intro",
        key=Key(
            "SAMPLE-AES",
            "skd://k/1",
            iv=bytes.fromhex("000102030405060708090a0b0c0d0eff"),
            keyformat="com.apple.streamingkeydelivery",
            keyformatversions="1",
        ),
        map=Map("init.mp4", ByteRange(720, 0)),
        byterange=ByteRange(4096, 720),
        discontinuity=True,
    )
    playlist = MediaPlaylist(
        6,
        (segment,),
        version=7,
        media_sequence=41,
        playlist_type="EVENT",
        endlist=False,
        independent_segments=False,
    )
    assert render_media(playlist) == (
        "#EXTM3U\n"
        "#EXT-X-VERSION:7\n"
        "#EXT-X-TARGETDURATION:6\n"
        "#EXT-X-MEDIA-SEQUENCE:41\n"
        "#EXT-X-PLAYLIST-TYPE:EVENT\n"
        "#EXT-X-DISCONTINUITY\n"
        '#EXT-X-MAP:URI="init.mp4",BYTERANGE="720@0"\n'
        '#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://k/1",IV=0x000102030405060708090A0B0C0D0EFF,'
        'KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"\n'
        "#EXT-X-BYTERANGE:4096@720\n"
        "#EXTINF:5.333333,Intro\n"
        "a.m4s\n"
    )


def test_live_playlist_has_no_type_and_no_endlist() -> None:
    text = render_media(MediaPlaylist(6, (), playlist_type=None, endlist=False))
    assert "#EXT-X-PLAYLIST-TYPE" not in text and "#EXT-X-ENDLIST" not in text


def test_method_none_and_offsetless_byterange() -> None:
    playlist = MediaPlaylist(
        6,
        (
            Segment("a.aac", 6, byterange=ByteRange(100, 0)),
            Segment("a.aac", 6, key=Key("NONE"), byterange=ByteRange(50)),
        ),
    )
    text = render_media(playlist)
    assert "#EXT-X-KEY:METHOD=NONE\n#EXT-X-BYTERANGE:50\n#EXTINF:6,\na.aac\n" in text


def test_minimal_multivariant() -> None:
    playlist = MultivariantPlaylist(
        (VariantStream("a.m3u8", 64000),), independent_segments=False, version=3
    )
    assert render_multivariant(playlist) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=64000\na.m3u8\n"
    )


def test_multivariant_attribute_order() -> None:
    playlist = MultivariantPlaylist(
        (
            VariantStream(
                "b.m3u8", 2, 1, "mp4a.40.2", pathway_id="p", stable_variant_id="s", audio="aac"
            ),
        ),
        session_data=(SessionData("d", uri="d.json", language="fr"),),
        content_steering=ContentSteering("https://s/"),
    )
    assert render_multivariant(playlist).splitlines()[3:] == [
        '#EXT-X-CONTENT-STEERING:SERVER-URI="https://s/"',
        '#EXT-X-SESSION-DATA:DATA-ID="d",URI="d.json",LANGUAGE="fr"',
        '#EXT-X-STREAM-INF:BANDWIDTH=2,AVERAGE-BANDWIDTH=1,CODECS="mp4a.40.2",PATHWAY-ID="p",'
        'STABLE-VARIANT-ID="s",AUDIO="aac"',
        "b.m3u8",
    ]


# The pure-library contract (STYLE.md): the standard library's pure parts and nothing else.
ALLOWED_IMPORTS = {"__future__", "collections", "dataclasses", "math", "re", "typing", "manifests"}


@pytest.mark.parametrize(
    "module", sorted(Path(manifests.__file__).parent.glob("*.py")), ids=lambda p: p.name
)
def test_manifests_imports_nothing_impure(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = {
        name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for name in (
            [alias.name for alias in node.names]
            if isinstance(node, ast.Import)
            else [node.module or ""]
        )
    }
    assert imported <= ALLOWED_IMPORTS, imported - ALLOWED_IMPORTS
