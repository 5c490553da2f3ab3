"""CMCD as hls.js sends it (read back by the edge's own parser), URLs and playlists."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from benchmarks.player import (
    OT_AUDIO,
    OT_KEY,
    PlayerState,
    encode_cmcd,
    event,
    parse_media_playlist,
    relative_to,
    resolve,
    session_token_of,
    variant_uris,
    with_cmcd,
)
from cdn_edge.telemetry.cmcd import read_cmcd_keys

BASE = "http://127.0.0.1:8080"
SESSION = f"{BASE}/v1/s/TOKEN.SIG"
MEDIA_URL = f"{SESSION}/aac_160/playlist.m3u8"
MEDIA = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="../keys/v1-free-0",IV=0x00000000000000000000000000000001
#EXTINF:6.013968,
seg_00000.m4s
#EXTINF:5.990748,
seg_00001.m4s
#EXT-X-KEY:METHOD=AES-128,URI="../keys/v1-free-1",IV=0x00000000000000000000000000000002
#EXTINF:3.5,
seg_00002.m4s
#EXT-X-ENDLIST
"""
MULTIVARIANT = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-SESSION-KEY:METHOD=AES-128,URI="keys/v1-free-0"
#EXT-X-STREAM-INF:BANDWIDTH=161842,CODECS="mp4a.40.2",STABLE-VARIANT-ID="aac_160"
aac_160/playlist.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=123110,CODECS="opus"
opus_160/playlist.m3u8
"""


def test_cmcd_is_sorted_with_bare_flags_quoted_strings_and_bare_tokens():
    text = encode_cmcd({"sid": "abc", "su": True, "bs": False, "br": 160, "ot": "a", "mtp": None})
    assert text == 'br=160,ot=a,sid="abc",su'


def test_cmcd_escapes_quotes_and_backslashes():
    assert encode_cmcd({"cid": 'a"b\\c'}) == r'cid="a\"b\\c"'


def test_the_edge_reads_what_the_player_sends_without_complaint():
    state = PlayerState("sess", "track-1", "aac_160", 160, 256, throughput_kbps=12_300)
    keys = state.cmcd(OT_AUDIO, d=6014, nor="seg_00001.m4s?s=SEG")
    assert read_cmcd_keys(encode_cmcd(keys), {}) == (
        {
            "ot": "a",
            "br": 160,
            "tb": 256,
            "d": 6014,
            "bl": 0,
            "sf": "h",
            "st": "v",
            "cid": "track-1",
            "sid": state.cmcd_sid,
            "mtp": 12_300,
            "nor": "seg_00001.m4s?s=SEG",
            "su": True,
        },
        (),
    )


def test_startup_flag_is_dropped_once_playing():
    state = PlayerState("sess", "t", "aac_160", 160, 160)
    state.started = True
    reading = read_cmcd_keys(encode_cmcd(state.cmcd(OT_KEY)), {})
    assert reading is not None and "su" not in reading[0]


def test_with_cmcd_url_encodes_one_query_argument():
    url = with_cmcd(f"{BASE}/v1/keys/k1?t=TOKEN", {"ot": "k", "sid": "a b,c"})
    query = parse_qs(urlsplit(url).query)
    assert query["t"] == ["TOKEN"]
    assert query["CMCD"] == ['ot=k,sid="a b,c"']
    assert " " not in url and "," not in urlsplit(url).query
    assert with_cmcd(f"{BASE}/x.m3u8", {}) == f"{BASE}/x.m3u8"
    assert with_cmcd(f"{BASE}/x.m3u8", {"ot": "m"}) == f"{BASE}/x.m3u8?CMCD=ot%3Dm"


def test_relative_urls_resolve_against_the_playlist():
    assert resolve(MEDIA_URL, "../../other/a/seg_00000.m4s?s=1") == (
        f"{BASE}/v1/s/other/a/seg_00000.m4s?s=1"
    )
    assert resolve(MEDIA_URL, "https://cdn.example/x.m4s") == "https://cdn.example/x.m4s"


def test_next_object_is_relative_to_the_current_request_with_its_query():
    current = f"{BASE}/v1/seg/t/v/aac_160/seg_00000.m4s?s=SEG&CMCD=x"
    assert relative_to(f"{BASE}/v1/seg/t/v/aac_160/seg_00001.m4s?s=SEG", current) == (
        "seg_00001.m4s?s=SEG"
    )
    assert relative_to("https://other/x.m4s", current) == "https://other/x.m4s"
    # Another directory (a level switch), and a query holding a slash: the general path.
    assert relative_to(f"{BASE}/v1/seg/t/v/aac_96/seg_00001.m4s?s=A", current) == (
        "../aac_96/seg_00001.m4s?s=A"
    )
    assert relative_to(f"{BASE}/v1/seg/t/v/aac_160/sub/x.m4s", current) == "sub/x.m4s"
    assert relative_to(f"{BASE}/v1/seg/t/v/aac_160/x.m4s?a=b/c", current) == "x.m4s?a=b/c"


def test_media_playlist_gives_init_segments_durations_and_current_key():
    view = parse_media_playlist(MEDIA, MEDIA_URL)
    assert view.init_url == f"{SESSION}/aac_160/init.mp4"
    assert [s.url for s in view.segments] == [
        f"{SESSION}/aac_160/seg_00000.m4s",
        f"{SESSION}/aac_160/seg_00001.m4s",
        f"{SESSION}/aac_160/seg_00002.m4s",
    ]
    assert [s.key_url for s in view.segments] == [
        f"{SESSION}/keys/v1-free-0",
        f"{SESSION}/keys/v1-free-0",
        f"{SESSION}/keys/v1-free-1",
    ]
    assert view.duration_s == pytest.approx(15.504716)
    assert view.target_duration_s == 6


def test_media_playlist_refuses_what_is_not_one():
    with pytest.raises(ValueError, match="does not start with #EXTM3U"):
        parse_media_playlist("<html>", MEDIA_URL)
    with pytest.raises(ValueError, match="no #EXTINF"):
        parse_media_playlist("#EXTM3U\nseg.m4s\n", MEDIA_URL)
    with pytest.raises(ValueError, match="lists no segments"):
        parse_media_playlist("#EXTM3U\n#EXT-X-ENDLIST\n", MEDIA_URL)


def test_variants_by_stable_id_or_uri_stem():
    main_url = f"{SESSION}/main.m3u8"
    assert variant_uris(MULTIVARIANT, main_url) == {
        "aac_160": f"{SESSION}/aac_160/playlist.m3u8",
        "opus_160": f"{SESSION}/opus_160/playlist.m3u8",  # no id: the playlist's directory
    }


def test_session_token_is_the_path_segment_after_play():
    assert session_token_of(f"{BASE}/v1/s/abc.def/main.m3u8") == "abc.def"
    with pytest.raises(ValueError, match="not a /v1/s"):
        session_token_of(f"{BASE}/v1/other/main.m3u8")


def test_player_throughput_is_rounded_like_hlsjs():
    state = PlayerState("s", "t", "r", 160, 160)
    state.observe_throughput(125_000, 0.1)  # 10 Mbit/s
    assert state.throughput_kbps == 10_000
    state.observe_throughput(0, 0.1)
    assert state.throughput_kbps == 10_000


def test_events_carry_unique_ids_and_the_fields_given():
    first = event("play", 1_700_000_000_000, 0.0, 1, bitrate_kbps=160, rendition="aac_160")
    second = event("heartbeat", 1_700_000_030_000, 30.0, 2)
    assert first["event_id"] != second["event_id"]
    assert first["type"] == "play" and first["bitrate_kbps"] == 160
    assert second == {**second, "type": "heartbeat", "position_s": 30.0, "seq": 2}


def test_the_edge_accepts_the_events_the_player_posts():
    from cdn_edge.handlers.events import parse_events
    from cdn_edge.playback.tokens import SessionClaims

    claims = SessionClaims("sess", "track-1", "v1", "user", "premium", ("aac_160",), 2**31)
    now_ms = 1_700_000_000_000
    docs = [
        event("play", now_ms, 0.0, 1, bitrate_kbps=160, rendition="aac_160", startup_ms=120),
        event("heartbeat", now_ms + 30_000, 30.0, 2),
        event("end", now_ms + 60_000, 60.0, 3),
    ]
    parsed = parse_events({"events": docs}, claims, now_ms)
    assert [e.type for e in parsed] == ["play", "heartbeat", "end"]
