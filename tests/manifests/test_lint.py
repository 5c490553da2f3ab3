"""Lint: problems a player would trip on that construction allows."""

from __future__ import annotations

from manifests import (
    ContentSteering,
    Key,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    VariantStream,
    lint_media,
    lint_multivariant,
)

IV = bytes(16)
AAC = "mp4a.40.2"


def _media(*segments: Segment, version: int = 7) -> MediaPlaylist:
    return MediaPlaylist(6, segments, version=version)


def test_empty_playlist() -> None:
    assert lint_media(_media()) == [
        "the playlist has no segments, so a player has nothing to start"
    ]


def test_fmp4_without_map() -> None:
    playlist = _media(Segment("seg_0.m4s", 6), Segment("seg_1.m4s", 6, map=Map("init.mp4")))
    assert lint_media(playlist) == [
        "segment 0 (seg_0.m4s) is fMP4 but no EXT-X-MAP precedes it; players cannot decode it "
        "without the initialization section (RFC 8216 4.3.2.5)"
    ]


def test_fmp4_detection_ignores_query_and_case() -> None:
    assert lint_media(_media(Segment("https://c/x/SEG.MP4?token=a.ts", 6)))
    assert not lint_media(_media(Segment("https://c/x/seg.ts?f=a.m4s", 6)))


def test_ts_after_fmp4_needs_a_discontinuity() -> None:
    switching = _media(Segment("a.m4s", 6, map=Map("init.mp4")), Segment("b.ts", 6))
    assert lint_media(switching) == [
        "segment 1 (b.ts) switches from fMP4 to another format without EXT-X-DISCONTINUITY "
        "(RFC 8216 4.3.2.3)"
    ]
    marked = _media(
        Segment("a.m4s", 6, map=Map("init.mp4")), Segment("b.ts", 6, discontinuity=True)
    )
    assert lint_media(marked) == []


def test_version_too_low_for_each_feature_reported_once() -> None:
    playlist = _media(
        Segment("a.m4s", 5.5, key=Key("AES-128", "k", iv=IV), map=Map("init.mp4")),
        Segment("b.m4s", 4.5, key=Key("AES-128", "k2", iv=IV)),
        version=1,
    )
    assert lint_media(playlist) == [
        "EXT-X-VERSION 1 is too low: the IV attribute of EXT-X-KEY, first used at segment 0 "
        "(a.m4s), needs version 2 or higher (RFC 8216 section 7)",
        "EXT-X-VERSION 1 is too low: a fractional EXTINF duration, first used at segment 0 "
        "(a.m4s), EXTINF 5.5, needs version 3 or higher (RFC 8216 section 7)",
        "EXT-X-VERSION 1 is too low: EXT-X-MAP in a playlist without EXT-X-I-FRAMES-ONLY, first "
        "used at segment 0 (a.m4s), needs version 6 or higher (RFC 8216 section 7)",
    ]


def test_version_thresholds_are_exact() -> None:
    iv_only = _media(Segment("a.ts", 6, key=Key("AES-128", "k", iv=IV)), version=2)
    assert lint_media(iv_only) == []
    fractional = _media(Segment("a.ts", 5.5), version=3)
    assert lint_media(fractional) == []
    sample_aes = _media(Segment("a.ts", 6, key=Key("SAMPLE-AES", "k")), version=4)
    assert [p.split(",")[0] for p in lint_media(sample_aes)] == [
        "EXT-X-VERSION 4 is too low: EXT-X-KEY METHOD=SAMPLE-AES"
    ]
    keyformat = _media(Segment("a.ts", 6, key=Key("AES-128", "k", keyformat="identity")), version=5)
    assert lint_media(keyformat) == []
    fmp4 = _media(Segment("a.m4s", 6, map=Map("init.mp4")), version=5)
    assert len(lint_media(fmp4)) == 1
    assert lint_media(_media(Segment("a.m4s", 6, map=Map("init.mp4")), version=6)) == []


def test_key_before_first_map_is_fine_and_no_iv_is_allowed() -> None:
    with_iv = _media(
        Segment("a.m4s", 6, key=Key("AES-128", "k", iv=IV)),
        Segment("b.m4s", 6, map=Map("init.mp4")),
    )
    # Only the first segment lacks an init section; the key is not the problem.
    assert [p for p in lint_media(with_iv) if "EXT-X-KEY" in p] == []
    no_iv = _media(Segment("a.m4s", 6, key=Key("AES-128", "k"), map=Map("init.mp4")))
    assert lint_media(no_iv) == []


def test_map_encrypted_by_a_key_without_iv() -> None:
    playlist = _media(
        Segment("a.m4s", 6, key=Key("AES-128", "k"), map=Map("init.mp4")),
        Segment("b.m4s", 6, map=Map("init2.mp4"), discontinuity=True),
    )
    assert lint_media(playlist) == [
        "the EXT-X-MAP before segment 1 (b.m4s) is encrypted by an AES-128 EXT-X-KEY without an "
        "IV; an encrypted initialization section needs one (RFC 8216 4.3.2.5)"
    ]


def test_clean_multivariant() -> None:
    assert lint_multivariant(MultivariantPlaylist((VariantStream("a.m3u8", 2, 1, AAC),))) == []


def test_multivariant_problems() -> None:
    playlist = MultivariantPlaylist(
        (
            VariantStream("a.m3u8", 100, average_bandwidth=200, codecs=AAC),
            VariantStream("b.m3u8", 100),
            VariantStream("a.m3u8", 300, codecs=AAC, audio="aac"),
            VariantStream("a.m3u8", 300, codecs=AAC, pathway_id="cdn-b"),
        ),
        content_steering=ContentSteering("https://s/", pathway_id="cdn-a"),
    )
    assert lint_multivariant(playlist) == [
        "variant 1 (b.m3u8) has no CODECS; players must then download media to learn whether "
        "they can play it (RFC 8216 4.3.4.2 SHOULD)",
        "variant 0 (a.m3u8) has AVERAGE-BANDWIDTH 200 above its peak BANDWIDTH 100",
        "variant 2 repeats the URI a.m3u8 of variant 0",
        "variant 2 (a.m3u8) names AUDIO group 'aac', but the playlist has no EXT-X-MEDIA tag to "
        "define it (RFC 8216 4.3.4.2)",
        "EXT-X-CONTENT-STEERING PATHWAY-ID 'cdn-a' is no variant's pathway (variants use ., cdn-b)",
    ]


def test_steering_default_pathway_matches_variants_without_one() -> None:
    playlist = MultivariantPlaylist(
        (VariantStream("a.m3u8", 1, codecs=AAC),),
        content_steering=ContentSteering("https://s/", pathway_id="."),
    )
    assert lint_multivariant(playlist) == []
