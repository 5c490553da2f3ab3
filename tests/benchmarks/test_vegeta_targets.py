"""The vegeta paced run's targets: step order, per-listener URLs, CMCD, heartbeat bodies."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from benchmarks.vegeta_targets import (
    INIT,
    KEY,
    PLAYLIST,
    SEGMENT,
    Listener,
    bitrate_of,
    heartbeat_targets,
    http_targets,
    paced_requests,
    paced_templates,
    steps_within,
    vegeta_rate,
)

BASE = "http://127.0.0.1:8080"
PLAYLIST_TEXT = """#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:1000000
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-MAP:URI="init.mp4"
#EXT-X-KEY:METHOD=AES-128,URI="../keys/v1-free-0"
#EXTINF:6.013968,
seg_00000.m4s
#EXTINF:5.990748,
seg_00001.m4s
#EXT-X-KEY:METHOD=AES-128,URI="../keys/v1-free-1"
#EXTINF:6.013968,
seg_00002.m4s
#EXT-X-ENDLIST
"""
LISTENERS = [
    Listener("sess-a", "tok.A-a_1", "11111111-1111-4111-8111-111111111111"),
    Listener("sess-b", "tok.B-b_2", "22222222-2222-4222-8222-222222222222"),
]


def _cmcd(url: str) -> str:
    return parse_qs(urlsplit(url).query)["CMCD"][0]


@pytest.fixture
def templates():
    return paced_templates(BASE, "aac_160", PLAYLIST_TEXT, "bench-track")


def test_each_step_asks_for_what_a_player_needs_at_that_segment(templates) -> None:
    kinds = [[kind for kind, _ in step] for step in templates.steps]
    assert kinds == [[PLAYLIST, INIT, KEY, SEGMENT], [SEGMENT], [KEY, SEGMENT]]
    assert templates.phase_s(2) == pytest.approx(12.004716)


def test_requests_go_step_by_step_then_listener_by_listener(templates) -> None:
    requests = list(paced_requests(templates, LISTENERS, 3))
    order = [(r.kind, urlsplit(r.url).path.split("/")[3]) for r in requests]
    a, b = "tok.A-a_1", "tok.B-b_2"
    assert order == [
        (PLAYLIST, a), (INIT, a), (KEY, a), (SEGMENT, a),
        (PLAYLIST, b), (INIT, b), (KEY, b), (SEGMENT, b),
        (SEGMENT, a), (SEGMENT, b),
        (KEY, a), (SEGMENT, a), (KEY, b), (SEGMENT, b),
    ]  # fmt: skip
    assert len(list(paced_requests(templates, LISTENERS, 1))) == 8


def test_urls_carry_the_listeners_token_and_cmcd_session_id(templates) -> None:
    requests = list(paced_requests(templates, LISTENERS, 3))
    paths = [urlsplit(r.url).path for r in requests[:4]]
    assert paths == [
        "/v1/s/tok.A-a_1/aac_160/playlist.m3u8",
        "/v1/s/tok.A-a_1/aac_160/init.mp4",
        "/v1/s/tok.A-a_1/keys/v1-free-0",
        "/v1/s/tok.A-a_1/aac_160/seg_00000.m4s",
    ]
    for request in requests:
        assert "@" not in request.url and "SIDxSLOT" not in request.url
        sid = LISTENERS[0 if "tok.A" in request.url else 1].cmcd_sid
        assert f'sid="{sid}"' in _cmcd(request.url)


def test_segment_cmcd_is_what_hlsjs_sends(templates) -> None:
    first, second = (r.url for r in paced_requests(templates, LISTENERS[:1], 2) if "seg_" in r.url)
    assert _cmcd(first) == (
        'bl=0,br=160,cid="bench-track",d=6014,nor="seg_00001.m4s",ot=a,sf=h,'
        f'sid="{LISTENERS[0].cmcd_sid}",st=v,su,tb=160'
    )
    assert "bl=30000" in _cmcd(second) and ",su" not in _cmcd(second)
    assert "nor=" not in _cmcd(list(paced_requests(templates, LISTENERS[:1], 3))[-1].url)


def test_without_cmcd_the_urls_have_no_query() -> None:
    plain = paced_templates(BASE, "aac_160", PLAYLIST_TEXT, "bench-track", cmcd=False)
    assert all("?" not in r.url for r in paced_requests(plain, LISTENERS, 3))


def test_http_targets_are_request_lines_and_blank_lines(templates) -> None:
    (first, *_) = http_targets(paced_requests(templates, LISTENERS[:1], 1))
    assert first.startswith(f"GET {BASE}/v1/s/tok.A-a_1/aac_160/playlist.m3u8?CMCD=")
    assert first.endswith("\n\n") and first.count("\n") == 2


@pytest.mark.parametrize(
    ("duration_s", "steps"), [(180.0, 30), (15.0, 2), (1.0, 1), (10_000.0, 35)]
)
def test_steps_within_counts_whole_segments_up_to_the_tracks_end(duration_s, steps) -> None:
    durations = "".join(
        f"#EXTINF:{6.013968 if i % 3 == 0 else 5.990748},\nseg_{i:05d}.m4s\n" for i in range(35)
    )
    text = '#EXTM3U\n#EXT-X-MAP:URI="init.mp4"\n' + durations
    assert steps_within(paced_templates(BASE, "aac_160", text, "t"), duration_s) == steps


def test_heartbeats_go_round_by_round_with_distinct_ids_and_rising_seq() -> None:
    lines = list(heartbeat_targets(BASE, LISTENERS, 75.0, start_ms=1_000_000))
    assert len(lines) == 5  # 2 listeners * 75 s / 30 s
    targets = [json.loads(line) for line in lines]
    assert [t["url"].rsplit("/", 2)[1] for t in targets] == ["sess-a", "sess-b"] * 2 + ["sess-a"]
    bodies = [json.loads(base64.b64decode(t["body"]))["events"] for t in targets]
    assert all(len(events) == 1 for events in bodies)
    events = [e[0] for e in bodies]
    assert [e["seq"] for e in events] == [1, 1, 2, 2, 3]
    assert [e["position_s"] for e in events] == [30.0, 30.0, 60.0, 60.0, 90.0]
    assert {e["type"] for e in events} == {"heartbeat"}
    assert len({e["event_id"] for e in events}) == 5
    assert [e["ts_ms"] for e in events] == [1_000_000, 1_015_000, 1_030_000, 1_045_000, 1_060_000]
    assert targets[1]["method"] == "POST"
    assert targets[1]["header"]["Authorization"] == ["Bearer tok.B-b_2"]
    assert targets[1]["header"]["Content-Type"] == ["application/json"]
    assert all(line.endswith("\n") and line.count("\n") == 1 for line in lines)


def test_vegeta_rate_is_a_whole_count_per_span() -> None:
    assert vegeta_rate(116_667, 180.04) == "116667/180040ms"
    with pytest.raises(ValueError, match="requests >= 1"):
        vegeta_rate(0, 10.0)


def test_bitrate_of_a_rendition_name() -> None:
    assert bitrate_of("aac_160") == 160 and bitrate_of("opus_32") == 32
    assert bitrate_of("flac") is None
