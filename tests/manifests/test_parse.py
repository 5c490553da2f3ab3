"""Parsing: ffmpeg's output, strict and lenient modes, and errors that name the line."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from manifests import (
    ByteRange,
    Key,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    PlaylistParseError,
    Segment,
    VariantStream,
    parse_media,
    parse_multivariant,
    render_media,
)

GOLDEN = Path(__file__).parent / "golden"
FFMPEG = (GOLDEN / "ffmpeg_fmp4.m3u8").read_text()


def _media(*lines: str) -> str:
    return "\n".join(["#EXTM3U", "#EXT-X-TARGETDURATION:6", *lines]) + "\n"


def _fails(text: str, message: str, *, strict: bool = True, multivariant: bool = False) -> None:
    parse = parse_multivariant if multivariant else parse_media
    with pytest.raises(PlaylistParseError, match=f"^{re.escape(message)}$"):
        parse(text, strict=strict)


def test_ffmpeg_fmp4_playlist() -> None:
    assert parse_media(FFMPEG) == MediaPlaylist(
        target_duration=6,
        segments=(
            Segment("seg_00000.m4s", 6.013333, map=Map("init.mp4")),
            Segment("seg_00001.m4s", 5.994667),
        ),
        version=7,
        media_sequence=0,
        playlist_type="VOD",
        independent_segments=False,  # ffmpeg writes it only with -hls_flags independent_segments
        endlist=True,
    )


def test_ffmpeg_fmp4_playlist_renders_back_byte_for_byte() -> None:
    assert render_media(parse_media(FFMPEG)) == FFMPEG


def test_target_shorter_than_a_rounded_extinf_fails_strictly_naming_both_lines() -> None:
    text = FFMPEG.replace("#EXTINF:5.994667,", "#EXTINF:6.506667,")
    _fails(
        text,
        "line 9: segment 1 (seg_00001.m4s) lasts 6.506667 s, longer than the target duration 6 "
        "on line 3 (parse with strict=False to raise the target)",
    )


def test_target_shorter_than_a_rounded_extinf_is_raised_leniently() -> None:
    text = FFMPEG.replace("#EXTINF:5.994667,", "#EXTINF:6.506667,")
    playlist = parse_media(text, strict=False)
    assert playlist.target_duration == 7
    assert [s.duration for s in playlist.segments] == [6.013333, 6.506667]


def test_missing_target_fails_strictly_and_is_derived_leniently() -> None:
    text = FFMPEG.replace("#EXT-X-TARGETDURATION:6\n", "")
    _fails(
        text,
        "line 6: expected #EXT-X-TARGETDURATION before the first segment, found none "
        "(required, RFC 8216 4.3.3.1)",
    )
    assert parse_media(text, strict=False).target_duration == 6


def test_unknown_tag_fails_strictly_with_its_line_and_is_skipped_leniently() -> None:
    text = FFMPEG.replace("#EXTINF:5.994667,", "#EXT-X-GAP\n#EXTINF:5.994667,")
    _fails(text, "line 9: unknown tag #EXT-X-GAP (parse with strict=False to skip unknown tags)")
    assert parse_media(text, strict=False) == parse_media(FFMPEG)


def test_unknown_attribute_fails_strictly_and_is_skipped_leniently() -> None:
    text = (
        "#EXTM3U\n"
        '#EXT-X-STREAM-INF:BANDWIDTH=140800,CODECS="mp4a.40.2",RESOLUTION=1x1\n'
        "aac_128/playlist.m3u8\n"
    )
    _fails(
        text,
        "line 2: #EXT-X-STREAM-INF has unknown attribute RESOLUTION; expected only AUDIO, "
        "AVERAGE-BANDWIDTH, BANDWIDTH, CODECS, PATHWAY-ID, STABLE-VARIANT-ID "
        "(parse with strict=False to ignore it)",
        multivariant=True,
    )
    assert parse_multivariant(text, strict=False) == MultivariantPlaylist(
        (VariantStream("aac_128/playlist.m3u8", 140800, codecs="mp4a.40.2"),),
        independent_segments=False,
        version=1,
    )


def test_crlf_comments_blank_lines_and_trailing_spaces() -> None:
    text = (
        "#EXTM3U\r\n# written by hand\r\n\r\n#EXT-X-VERSION:3 \r\n#EXT-X-TARGETDURATION:10\r\n"
        "#EXTINF:9.5,Artist, Title \r\n  a.ts  \r\n#EXT-X-ENDLIST\r\n"
    )
    assert parse_media(text) == MediaPlaylist(
        10,
        (Segment("a.ts", 9.5, title="Artist, Title "),),
        version=3,
        playlist_type=None,
        independent_segments=False,
    )


def test_absent_tags_take_their_rfc_defaults() -> None:
    playlist = parse_media(_media("#EXTINF:6,", "a.ts"))
    assert (playlist.version, playlist.media_sequence, playlist.playlist_type) == (1, 0, None)
    assert (playlist.independent_segments, playlist.endlist) == (False, False)


def test_segment_tags_attach_to_the_next_uri_in_any_order() -> None:
    text = _media(
        "#EXT-X-VERSION:7",
        "#EXTINF:6,",
        "#EXT-X-BYTERANGE:1000@0",
        '#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0x1',
        "#EXT-X-DISCONTINUITY",
        "a.ts",
        "#EXTINF:6,",
        "#EXT-X-BYTERANGE:500",
        "a.ts",
    )
    first, second = parse_media(text).segments
    assert first == Segment(
        "a.ts",
        6,
        key=Key("AES-128", "k", iv=(1).to_bytes(16, "big")),
        byterange=ByteRange(1000, 0),
        discontinuity=True,
    )
    assert second == Segment("a.ts", 6, byterange=ByteRange(500))


def test_lenient_map_byterange_without_offset_starts_at_zero() -> None:
    text = _media('#EXT-X-MAP:URI="init.mp4",BYTERANGE="720"', "#EXTINF:6,", "a.m4s")
    _fails(text, "line 3: EXT-X-MAP BYTERANGE needs an offset (n@o)")
    assert parse_media(text, strict=False).segments[0].map == Map("init.mp4", ByteRange(720, 0))


def test_repeated_segment_tag_fails_strictly_and_the_last_wins_leniently() -> None:
    text = _media(
        '#EXT-X-KEY:METHOD=AES-128,URI="k1"',
        '#EXT-X-KEY:METHOD=AES-128,URI="k2"',
        "#EXTINF:6,",
        "a.ts",
    )
    _fails(
        text,
        "line 4: #EXT-X-KEY appears twice before one segment (first on line 3); "
        "expected one per segment",
    )
    assert parse_media(text, strict=False).segments[0].key == Key("AES-128", "k2")


def test_repeated_playlist_tag_fails_strictly_and_the_last_wins_leniently() -> None:
    text = _media("#EXT-X-TARGETDURATION:8", "#EXTINF:6,", "a.ts")
    _fails(
        text,
        "line 3: #EXT-X-TARGETDURATION appears again (first on line 2); "
        "a playlist holds at most one",
    )
    assert parse_media(text, strict=False).target_duration == 8


def test_lenient_extinf_without_comma() -> None:
    text = _media("#EXTINF:6", "a.ts")
    _fails(text, "line 3: expected #EXTINF:<duration>,[<title>], got '6'")
    assert parse_media(text, strict=False).segments == (Segment("a.ts", 6),)


def test_byte_order_mark_fails_strictly_and_is_dropped_leniently() -> None:
    _fails("\ufeff" + FFMPEG, "line 1: expected no byte order mark (RFC 8216 4.1)")
    assert parse_media("\ufeff" + FFMPEG, strict=False) == parse_media(FFMPEG)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: expected #EXTM3U, got ''"),
        ("#EXT-X-VERSION:7\n#EXTM3U\n", "line 1: expected #EXTM3U, got '#EXT-X-VERSION:7'"),
        (_media("#EXTINF:6,"), "line 3: expected a URI line after this #EXTINF, reached the end"),
        (_media("a.ts"), "line 3: expected #EXTINF before the URI line 'a.ts'"),
        (
            _media("#EXTINF:6,", "#EXTINF:6,", "a.ts"),
            "line 4: expected a URI line after the #EXTINF on line 3, got another #EXTINF",
        ),
        (
            _media("#EXTINF:six,", "a.ts"),
            "line 3: expected a decimal number for #EXTINF duration, got 'six'",
        ),
        (
            _media("#EXTINF:-6,", "a.ts"),
            "line 3: expected a decimal number for #EXTINF duration, got '-6'",
        ),
        (
            _media("#EXTINF:1e3,", "a.ts"),
            "line 3: expected a decimal number for #EXTINF duration, got '1e3'",
        ),
        (
            _media("#EXTINF:0,", "a.ts"),
            "line 3: expected a positive #EXTINF duration, got '0'",
        ),
        (
            _media("#EXTINF:0.0000004,", "a.ts"),
            "line 3: expected a positive #EXTINF duration, got '0.0000004'",
        ),
        (
            _media("#EXTINF:6,", "a\x00.ts"),
            "line 4: segment URI contains '\\x00' at index 1; playlists hold no CR, LF or other "
            "control characters (RFC 8216 4.1)",
        ),
        (
            _media("#EXTINF:6,", "a.ts", "#EXT-X-MEDIA-SEQUENCE:3"),
            "line 5: expected #EXT-X-MEDIA-SEQUENCE before the first segment",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:+6\n",
            "line 2: expected a decimal-integer for #EXT-X-TARGETDURATION, got '+6'",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:0\n",
            "line 2: expected #EXT-X-TARGETDURATION of at least 1, got 0",
        ),
        ("#EXTM3U\n#EXT-X-VERSION:0\n", "line 2: expected #EXT-X-VERSION of at least 1, got 0"),
        (
            "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:LIVE\n",
            "line 2: expected #EXT-X-PLAYLIST-TYPE VOD or EVENT, got 'LIVE'",
        ),
        (
            _media("#EXT-X-PLAYLIST-TYPE:VOD", "#EXTINF:6,", "a.ts"),
            "line 3: expected #EXT-X-ENDLIST in a VOD playlist, found none (RFC 8216 4.3.3.5)",
        ),
        (_media("#EXT-X-ENDLIST:YES"), "line 3: expected nothing after #EXT-X-ENDLIST, got 'YES'"),
        (
            _media("#EXT-X-KEY:METHOD=AES-128"),
            "line 3: EXT-X-KEY METHOD=AES-128 needs a URI (RFC 8216 4.3.2.4)",
        ),
        (_media('#EXT-X-KEY:URI="k"'), "line 3: #EXT-X-KEY lacks the required METHOD attribute"),
        (
            _media('#EXT-X-KEY:METHOD="AES-128",URI="k"'),
            "line 3: expected an unquoted value for #EXT-X-KEY METHOD",
        ),
        (
            _media("#EXT-X-KEY:METHOD=AES-128,URI=k"),
            "line 3: expected a quoted-string for #EXT-X-KEY URI",
        ),
        (
            _media('#EXT-X-KEY:METHOD=AES-128,URI="k'),
            "line 3: #EXT-X-KEY URI has an unterminated quoted-string",
        ),
        (
            _media('#EXT-X-KEY:METHOD=AES-128,URI="k",URI="j"'),
            "line 3: #EXT-X-KEY repeats the attribute URI",
        ),
        (
            _media('#EXT-X-KEY:METHOD=AES-128, URI="k"'),
            "line 3: expected NAME=VALUE in the #EXT-X-KEY attribute-list at column 16, got ' URI'",
        ),
        (
            _media('#EXT-X-KEY:METHOD=AES-128,URI="k",'),
            "line 3: expected ',' and another attribute after #EXT-X-KEY URI",
        ),
        (
            _media('#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0xZZ'),
            "line 3: expected a 0x-prefixed hexadecimal IV for #EXT-X-KEY IV",
        ),
        (
            _media('#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0x' + "0" * 33),
            "line 3: #EXT-X-KEY IV has 33 hex digits, more than 128 bits",
        ),
        (_media("#EXT-X-BYTERANGE:0@0"), "line 3: byte range length must be at least 1, got 0"),
        (
            _media("#EXT-X-BYTERANGE:100", "#EXTINF:6,", "a.ts"),
            "line 3: expected an offset in #EXT-X-BYTERANGE: the segment before is not a "
            "sub-range of a.ts (RFC 8216 4.3.2.2)",
        ),
        (
            _media("#EXT-X-DISCONTINUITY"),
            "line 3: expected a segment after #EXT-X-DISCONTINUITY, reached the end",
        ),
        (
            _media("#EXT-X-STREAM-INF:BANDWIDTH=1"),
            "line 3: #EXT-X-STREAM-INF belongs in a multivariant playlist; "
            "use parse_multivariant (RFC 8216 4.3.4)",
        ),
    ],
)
def test_media_parse_errors_name_the_line_and_what_was_expected(text: str, message: str) -> None:
    _fails(text, message)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("#EXTM3U\n", "line 1: expected at least one #EXT-X-STREAM-INF, found none"),
        ("#EXTM3U\na.m3u8\n", "line 2: expected #EXT-X-STREAM-INF before the URI line 'a.m3u8'"),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n",
            "line 2: expected a URI line after this #EXT-X-STREAM-INF, reached the end",
        ),
        (
            '#EXTM3U\n#EXT-X-STREAM-INF:CODECS="mp4a.40.2"\na.m3u8\n',
            "line 2: #EXT-X-STREAM-INF lacks the required BANDWIDTH attribute",
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=0\na.m3u8\n",
            "line 2: variant a.m3u8 BANDWIDTH must be at least 1, got 0",
        ),
        (
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n#EXT-X-STREAM-INF:BANDWIDTH=2\na.m3u8\n",
            "line 3: expected a URI line after the #EXT-X-STREAM-INF on line 2, "
            "got another #EXT-X-STREAM-INF",
        ),
        (
            "#EXTM3U\n#EXT-X-TARGETDURATION:6\n",
            "line 2: #EXT-X-TARGETDURATION belongs in a media playlist; use parse_media "
            "(RFC 8216 4.3.4)",
        ),
        (
            '#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=NONE,URI="k"\n',
            "line 2: EXT-X-SESSION-KEY METHOD must not be NONE (RFC 8216 4.3.4.5)",
        ),
        (
            '#EXTM3U\n#EXT-X-SESSION-KEY:METHOD=AES-128,URI="k"\n'
            '#EXT-X-SESSION-KEY:METHOD=AES-128,URI="k"\n',
            "line 3: #EXT-X-SESSION-KEY repeats an earlier one exactly (RFC 8216 4.3.4.5)",
        ),
        (
            '#EXTM3U\n#EXT-X-SESSION-DATA:DATA-ID="t",VALUE="a"\n'
            '#EXT-X-SESSION-DATA:DATA-ID="t",URI="b"\n',
            "line 3: #EXT-X-SESSION-DATA repeats DATA-ID 't' with LANGUAGE None (RFC 8216 4.3.4.4)",
        ),
        (
            '#EXTM3U\n#EXT-X-CONTENT-STEERING:PATHWAY-ID="a"\n',
            "line 2: #EXT-X-CONTENT-STEERING lacks the required SERVER-URI attribute",
        ),
        (
            '#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="a",NAME="en"\n',
            "line 2: unknown tag #EXT-X-MEDIA (parse with strict=False to skip unknown tags)",
        ),
    ],
)
def test_multivariant_parse_errors_name_the_line_and_what_was_expected(
    text: str, message: str
) -> None:
    _fails(text, message, multivariant=True)


def test_short_iv_is_a_128_bit_integer() -> None:
    text = _media('#EXT-X-KEY:METHOD=AES-128,URI="k",IV=0Xff', "#EXTINF:6,", "a.ts")
    key = parse_media(text).segments[0].key
    assert key is not None and key.iv == bytes(15) + b"\xff"


# EXT-X-PROGRAM-DATE-TIME and EXT-X-DATERANGE (4.3.2.6, 4.3.2.7), as ad breaks use them.

PDT = "#EXT-X-PROGRAM-DATE-TIME:2000-01-01T00:00:00.000Z"
BREAK = (
    '#EXT-X-DATERANGE:ID="ad-break-0",CLASS="com.apple.hls.interstitial",'
    'START-DATE="2000-01-01T00:00:00.000Z",CUE="PRE",X-ASSET-LIST="../ads/breaks/0.json",'
    'X-RESUME-OFFSET=0,X-RESTRICT="SKIP,JUMP"'
)


def test_an_interstitial_and_its_program_date_time_are_read_onto_their_segment() -> None:
    playlist = parse_media(_media(PDT, BREAK, "#EXTINF:6,", "a.m4s", "#EXTINF:6,", "b.m4s"))
    first, second = playlist.segments
    assert first.program_date_time == "2000-01-01T00:00:00.000Z"
    [interstitial] = first.date_ranges
    assert (interstitial.id, interstitial.class_name, interstitial.cue) == (
        "ad-break-0",
        "com.apple.hls.interstitial",
        "PRE",
    )
    assert interstitial.client_attributes == (
        ("X-ASSET-LIST", "../ads/breaks/0.json"),
        ("X-RESUME-OFFSET", 0.0),
        ("X-RESTRICT", "SKIP,JUMP"),
    )
    assert (second.program_date_time, second.date_ranges) == (None, ())


def test_attributes_we_do_not_model_fail_strictly_and_are_skipped_leniently() -> None:
    text = _media(
        PDT,
        BREAK.replace('CUE="PRE"', 'END-DATE="2000-01-01T00:00:30.000Z",X-COM-ID=0xAB'),
        "#EXTINF:6,",
        "a.m4s",
    )
    _fails(
        text,
        "line 4: #EXT-X-DATERANGE has unknown attribute END-DATE; expected only CLASS, CUE, "
        "DURATION, ID, START-DATE (parse with strict=False to ignore it)",
    )
    [lenient] = parse_media(text, strict=False).segments[0].date_ranges
    assert [name for name, _ in lenient.client_attributes] == [
        "X-ASSET-LIST",
        "X-RESUME-OFFSET",
        "X-RESTRICT",
    ]
    assert lenient.cue is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            _media("#EXT-X-PROGRAM-DATE-TIME:yesterday", "#EXTINF:6,", "a.m4s"),
            "line 3: expected an ISO 8601 date and time with a time zone for "
            "#EXT-X-PROGRAM-DATE-TIME, got 'yesterday'",
        ),
        (
            _media("#EXT-X-PROGRAM-DATE-TIME:2000-01-01T00:00:00", "#EXTINF:6,", "a.m4s"),
            "line 3: expected an ISO 8601 date and time with a time zone for "
            "#EXT-X-PROGRAM-DATE-TIME, got '2000-01-01T00:00:00'",
        ),
        (
            _media(PDT, PDT, "#EXTINF:6,", "a.m4s"),
            "line 4: #EXT-X-PROGRAM-DATE-TIME appears twice before one segment (first on line 3); "
            "expected one per segment",
        ),
        (
            _media(BREAK, "#EXTINF:6,", "a.m4s"),
            "line 5: a playlist with EXT-X-DATERANGE must give its first segment an "
            "EXT-X-PROGRAM-DATE-TIME (RFC 8216 4.3.2.7)",
        ),
        (
            _media(PDT, "#EXTINF:6,", "a.m4s", BREAK),
            "line 6: expected a segment after #EXT-X-DATERANGE, reached the end",
        ),
        (
            _media(PDT, BREAK.replace('ID="ad-break-0",', ""), "#EXTINF:6,", "a.m4s"),
            "line 4: #EXT-X-DATERANGE lacks the required ID attribute",
        ),
        (
            _media(PDT, BREAK.replace('CUE="PRE"', 'CUE="MID"'), "#EXTINF:6,", "a.m4s"),
            "line 4: EXT-X-DATERANGE ad-break-0 CUE must list PRE, POST or ONCE, got 'MID'",
        ),
        (
            _media(
                PDT,
                BREAK.replace("X-RESUME-OFFSET=0", "X-RESUME-OFFSET=0x10"),
                "#EXTINF:6,",
                "a.m4s",
            ),
            "line 4: #EXT-X-DATERANGE X-RESUME-OFFSET is a hexadecimal-sequence; expected a "
            "quoted-string or a decimal number (parse with strict=False to skip it)",
        ),
    ],
)
def test_date_range_errors_name_the_line_and_what_was_expected(text: str, message: str) -> None:
    _fails(text, message)
