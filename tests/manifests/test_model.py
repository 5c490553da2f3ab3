"""Construction refuses what RFC 8216 forbids, with a message saying what, where and why."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from manifests import (
    ByteRange,
    ContentSteering,
    Key,
    ManifestError,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    PlaylistError,
    Segment,
    SessionData,
    SessionKey,
    VariantStream,
)

QUOTED = "a quoted-string cannot hold '\"', CR, LF or other control characters (RFC 8216 4.2)"
CONTROL = "playlists hold no CR, LF or other control characters (RFC 8216 4.1)"
VARIANT = VariantStream("a.m3u8", 128_000)


def _segments(*durations: float) -> tuple[Segment, ...]:
    return tuple(Segment(f"seg_{i:05d}.m4s", d) for i, d in enumerate(durations))


CASES: list[tuple[Callable[[], object], str]] = [
    # EXT-X-BYTERANGE
    (lambda: ByteRange(0), "byte range length must be at least 1, got 0"),
    (lambda: ByteRange(10, -1), "byte range offset must be at least 0, got -1"),
    (
        lambda: ByteRange(2**64),
        "byte range length must fit a decimal-integer (below 2**64), got 18446744073709551616",
    ),
    (lambda: ByteRange(True), "byte range length must be an int, got bool"),
    # EXT-X-KEY
    (
        lambda: Key("AES-256", "k"),
        "EXT-X-KEY METHOD must be one of AES-128, NONE, SAMPLE-AES, got 'AES-256'",
    ),
    (lambda: Key("AES-128"), "EXT-X-KEY METHOD=AES-128 needs a URI (RFC 8216 4.3.2.4)"),
    (lambda: Key("SAMPLE-AES"), "EXT-X-KEY METHOD=SAMPLE-AES needs a URI (RFC 8216 4.3.2.4)"),
    (
        lambda: Key("NONE", uri="k"),
        "EXT-X-KEY METHOD=NONE must carry no other attribute, got URI (RFC 8216 4.3.2.4)",
    ),
    (
        lambda: Key("NONE", iv=bytes(16), keyformat="identity"),
        "EXT-X-KEY METHOD=NONE must carry no other attribute, got IV, KEYFORMAT (RFC 8216 4.3.2.4)",
    ),
    (
        lambda: Key("AES-128", "k", iv=bytes(15)),
        "EXT-X-KEY IV has 15 bytes, expected 16 (a 128-bit integer, RFC 8216 4.3.2.4)",
    ),
    (lambda: Key("AES-128", "k", iv="00" * 16), "EXT-X-KEY IV must be bytes, got str"),  # type: ignore[arg-type]
    (lambda: Key("AES-128", ""), "EXT-X-KEY URI must not be empty"),
    (lambda: Key("AES-128", 'k"x'), f"EXT-X-KEY URI contains '\"' at index 1; {QUOTED}"),
    (lambda: Key("AES-128", "k\nx"), f"EXT-X-KEY URI contains '\\n' at index 1; {QUOTED}"),
    (lambda: Key("AES-128", "k\rx"), f"EXT-X-KEY URI contains '\\r' at index 1; {QUOTED}"),
    (
        lambda: Key("AES-128", "k", keyformat='com"apple'),
        f"EXT-X-KEY KEYFORMAT contains '\"' at index 3; {QUOTED}",
    ),
    (
        lambda: Key("AES-128", "k", keyformatversions="1/x"),
        "EXT-X-KEY KEYFORMATVERSIONS must be positive integers separated by '/', got '1/x'",
    ),
    (
        lambda: Key("AES-128", "k", keyformatversions="0"),
        "EXT-X-KEY KEYFORMATVERSIONS must be positive integers separated by '/', got '0'",
    ),
    # EXT-X-MAP
    (lambda: Map(""), "EXT-X-MAP URI must not be empty"),
    (lambda: Map("init.mp4", ByteRange(720)), "EXT-X-MAP BYTERANGE needs an offset (n@o)"),
    # EXTINF and the URI line
    (
        lambda: Segment("a.m4s", 0),
        "segment a.m4s duration must be positive (at least 0.000001 s), got 0",
    ),
    (
        lambda: Segment("a.m4s", -6.0),
        "segment a.m4s duration must be positive (at least 0.000001 s), got -6.0",
    ),
    (
        lambda: Segment("a.m4s", 4e-7),
        "segment a.m4s duration must be positive (at least 0.000001 s), got 4e-07",
    ),
    (
        lambda: Segment("a.m4s", float("inf")),
        "segment a.m4s duration must be positive (at least 0.000001 s), got inf",
    ),
    (lambda: Segment("a.m4s", "6"), "segment a.m4s duration must be a number, got str"),  # type: ignore[arg-type]
    (lambda: Segment("", 6), "segment URI must not be empty"),
    (
        lambda: Segment("#a.m4s", 6),
        "segment URI '#a.m4s' starts with '#', so it would read as a tag (4.1)",
    ),
    (lambda: Segment(" a.m4s", 6), "segment URI ' a.m4s' has leading or trailing whitespace"),
    (lambda: Segment("a.m4s\r", 6), f"segment URI contains '\\r' at index 5; {CONTROL}"),
    (lambda: Segment("a\x00.m4s", 6), f"segment URI contains '\\x00' at index 1; {CONTROL}"),
    (
        lambda: Segment("a.m4s", 6, title="x\ny"),
        f"segment a.m4s title contains '\\n' at index 1; {CONTROL}",
    ),
    # Media Playlist
    (
        lambda: MediaPlaylist(6, _segments(*[6.0] * 17, 6.6)),
        "segment 17 (seg_00017.m4s) lasts 6.6 s, longer than the target duration 6",
    ),
    # 4.3.3.1 rounds to the nearest integer, half up: 6.5 is 7 (Python's round() says 6).
    (
        lambda: MediaPlaylist(6, _segments(6.5)),
        "segment 0 (seg_00000.m4s) lasts 6.5 s, longer than the target duration 6",
    ),
    # The check sees the duration as written, with six decimals.
    (
        lambda: MediaPlaylist(6, _segments(6.4999996)),
        "segment 0 (seg_00000.m4s) lasts 6.5 s, longer than the target duration 6",
    ),
    (lambda: MediaPlaylist(0, ()), "target duration must be at least 1, got 0"),
    (lambda: MediaPlaylist(6, (), version=0), "EXT-X-VERSION must be at least 1, got 0"),
    (
        lambda: MediaPlaylist(6, (), media_sequence=-1),
        "EXT-X-MEDIA-SEQUENCE must be at least 0, got -1",
    ),
    (
        lambda: MediaPlaylist(6, (), playlist_type="LIVE"),
        "EXT-X-PLAYLIST-TYPE must be VOD, EVENT or None, got 'LIVE'",
    ),
    (
        lambda: MediaPlaylist(6, (), endlist=False),
        "a VOD playlist must end with EXT-X-ENDLIST (RFC 8216 4.3.3.5); set endlist=True",
    ),
    (lambda: MediaPlaylist(6, list(_segments(6))), "segments must be a tuple, got list"),  # type: ignore[arg-type]
    (
        lambda: MediaPlaylist(6, (Segment("a.ts", 6, byterange=ByteRange(100)),)),
        "segment 0 (a.ts) has a byte range without an offset, so the segment before it must "
        "be a sub-range of the same URI (RFC 8216 4.3.2.2)",
    ),
    (
        lambda: MediaPlaylist(
            6,
            (
                Segment("a.ts", 6, byterange=ByteRange(100, 0)),
                Segment("b.ts", 6, byterange=ByteRange(100)),
            ),
        ),
        "segment 1 (b.ts) has a byte range without an offset, so the segment before it must "
        "be a sub-range of the same URI (RFC 8216 4.3.2.2)",
    ),
    (
        lambda: MediaPlaylist(6, (Segment("a.ts", 6), Segment("a.ts", 6, byterange=ByteRange(9)))),
        "segment 1 (a.ts) has a byte range without an offset, so the segment before it must "
        "be a sub-range of the same URI (RFC 8216 4.3.2.2)",
    ),
    # EXT-X-SESSION-KEY
    (
        lambda: SessionKey("NONE", "k"),
        "EXT-X-SESSION-KEY METHOD must not be NONE (RFC 8216 4.3.4.5)",
    ),
    (
        lambda: SessionKey("AES-128", "k", iv=b"x"),
        "EXT-X-SESSION-KEY IV has 1 bytes, expected 16 (a 128-bit integer, RFC 8216 4.3.2.4)",
    ),
    (lambda: SessionKey("AES-128", ""), "EXT-X-SESSION-KEY URI must not be empty"),
    # EXT-X-SESSION-DATA
    (
        lambda: SessionData("com.example.title"),
        "EXT-X-SESSION-DATA com.example.title needs exactly one of VALUE and URI, got neither "
        "(RFC 8216 4.3.4.4)",
    ),
    (
        lambda: SessionData("com.example.title", value="v", uri="u"),
        "EXT-X-SESSION-DATA com.example.title needs exactly one of VALUE and URI, got both "
        "(RFC 8216 4.3.4.4)",
    ),
    (
        lambda: SessionData('com"x', value="v"),
        f"EXT-X-SESSION-DATA DATA-ID contains '\"' at index 3; {QUOTED}",
    ),
    (
        lambda: SessionData("id", value="a\nb"),
        f"EXT-X-SESSION-DATA VALUE contains '\\n' at index 1; {QUOTED}",
    ),
    # EXT-X-CONTENT-STEERING
    (lambda: ContentSteering(""), "EXT-X-CONTENT-STEERING SERVER-URI must not be empty"),
    (
        lambda: ContentSteering("https://s/", "cdn a"),
        "EXT-X-CONTENT-STEERING PATHWAY-ID must be a non-empty string of [a-zA-Z0-9.-_] "
        "(rfc8216bis 4.4.6.6), got 'cdn a'",
    ),
    # EXT-X-STREAM-INF
    (lambda: VariantStream("a.m3u8", 0), "variant a.m3u8 BANDWIDTH must be at least 1, got 0"),
    (
        lambda: VariantStream("a.m3u8", 1, average_bandwidth=0),
        "variant a.m3u8 AVERAGE-BANDWIDTH must be at least 1, got 0",
    ),
    (
        lambda: VariantStream("a.m3u8", 1, codecs='mp4a.40.2"'),
        f"variant a.m3u8 CODECS contains '\"' at index 9; {QUOTED}",
    ),
    (
        lambda: VariantStream("a.m3u8", 1, pathway_id=""),
        "variant a.m3u8 PATHWAY-ID must be a non-empty string of [a-zA-Z0-9.-_] "
        "(rfc8216bis 4.4.6.2), got ''",
    ),
    (
        lambda: VariantStream("a.m3u8", 1, stable_variant_id="aac 160"),
        "variant a.m3u8 STABLE-VARIANT-ID must be a non-empty string of [a-zA-Z0-9+/=.-_] "
        "(rfc8216bis 4.4.6.2), got 'aac 160'",
    ),
    (
        lambda: VariantStream("#a.m3u8", 1),
        "variant URI '#a.m3u8' starts with '#', so it would read as a tag (4.1)",
    ),
    # Multivariant Playlist
    (lambda: MultivariantPlaylist(()), "a multivariant playlist needs at least one variant stream"),
    (
        lambda: MultivariantPlaylist((VARIANT,), version=0),
        "EXT-X-VERSION must be at least 1, got 0",
    ),
    (
        lambda: MultivariantPlaylist(
            (VARIANT,), session_keys=(SessionKey("AES-128", "k"), SessionKey("AES-128", "k"))
        ),
        "session key 1 repeats session key 0; identical EXT-X-SESSION-KEY tags are forbidden "
        "(RFC 8216 4.3.4.5)",
    ),
    (
        lambda: MultivariantPlaylist(
            (VARIANT,),
            session_data=(
                SessionData("id", value="a", language="en"),
                SessionData("id", uri="b", language="en"),
            ),
        ),
        "session data 1 repeats DATA-ID 'id' with LANGUAGE 'en' of session data 0 "
        "(RFC 8216 4.3.4.4)",
    ),
]


@pytest.mark.parametrize(("build", "message"), CASES, ids=[m[:60] for _, m in CASES])
def test_construction_refuses_with_a_precise_message(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(PlaylistError, match=f"^{re.escape(message)}$"):
        build()


def test_playlist_errors_are_value_errors_mapping_to_500() -> None:
    with pytest.raises(ValueError) as caught:
        ByteRange(0)
    assert isinstance(caught.value, ManifestError)
    assert caught.value.http_status == 500


@pytest.mark.parametrize(
    "build",
    [
        lambda: MediaPlaylist(6, _segments(6.499999, 5.5, 1)),  # rounds to 6, 6, 1
        lambda: MediaPlaylist(1, _segments(0.000001)),
        lambda: MediaPlaylist(6, (), playlist_type=None, endlist=False),
        lambda: MediaPlaylist(6, (), playlist_type="EVENT", endlist=False),
        lambda: Key("NONE"),
        lambda: Key("AES-128", "k"),  # no IV: derived from the media sequence number
        lambda: Key(
            "SAMPLE-AES",
            "skd://k",
            keyformat="com.apple.streamingkeydelivery",
            keyformatversions="1/2",
        ),
        lambda: Segment("a.m4s", 6, title='Artist, "Title" ♪'),
        lambda: MediaPlaylist(
            6,
            (
                Segment("a.ts", 6, byterange=ByteRange(100, 0)),
                Segment("a.ts", 6, byterange=ByteRange(100)),
            ),
        ),
        lambda: VariantStream("a.m3u8", 100, average_bandwidth=200),  # not ours to refuse
        lambda: SessionData("id", value="a", language="en"),
        lambda: MultivariantPlaylist(
            (VARIANT,),
            session_data=(
                SessionData("id", value="a", language="en"),
                SessionData("id", value="b", language="fr"),
            ),
        ),
        lambda: ContentSteering("https://s/", "cdn-a.eu_1"),
    ],
)
def test_construction_accepts_what_the_spec_allows(build: Callable[[], object]) -> None:
    build()


def test_models_are_frozen() -> None:
    segment = Segment("a.m4s", 6)
    with pytest.raises(AttributeError):
        segment.duration = 7  # type: ignore[misc]


def test_segment_keys_give_the_key_in_effect_and_its_iv() -> None:
    iv = bytes(15) + b"\x07"
    playlist = MediaPlaylist(
        target_duration=6,
        media_sequence=40,
        segments=(
            Segment("a.m4s", 6, key=Key("AES-128", "k1")),
            Segment("b.m4s", 6),
            Segment("c.m4s", 6, key=Key("AES-128", "k2", iv=iv)),
            Segment("d.m4s", 6),
            Segment("e.m4s", 6, key=Key("NONE")),
            Segment("f.m4s", 6, key=Key("SAMPLE-AES", "k3")),
        ),
    )
    keys = playlist.segment_keys()
    assert [k.uri if k else None for k, _ in keys] == ["k1", "k1", "k2", "k2", None, "k3"]
    # Without an IV attribute, the segment's Media Sequence Number (RFC 8216 5.2).
    assert [v for _, v in keys] == [(40).to_bytes(16, "big"), (41).to_bytes(16, "big"), iv, iv,
                                    None, None]  # fmt: skip
