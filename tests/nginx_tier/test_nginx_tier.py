"""The nginx tier, for real: the shared vectors, bytes, ranges, validators, headers, the log."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from typing import Any

import pytest

from cdn_edge.nginx_tier import FIELD_NAMES, NginxTier, start_nginx_tier
from cdn_edge.policy.negotiation import FREE_TIER_MAX_KBPS
from cdn_edge.web.cors import ALLOW_HEADERS, ALLOW_METHODS, ALLOW_ORIGIN, EXPOSE_HEADERS
from streamer.objects.port import IMMUTABLE
from tests.nginx_tier.conftest import access_lines, free_port, request
from tests.nginx_tier.vectors import cases, object_bytes, vector_secrets, vectors
from tests.telemetry.cmsd_headers import parse_cmsd_dynamic, parse_cmsd_static

FREE = vectors()["tokens"]["free"]
PREMIUM = vectors()["tokens"]["premium"]
TRACK = "tracks/USRC17607839/0123456789abcdef"
SEG = f"/v1/s/{FREE}/aac_160/seg_00001.m4s"
SEG_BYTES = object_bytes(f"{TRACK}/aac_160/seg_00001.m4s", 118_321)


def _object_for(path: str) -> bytes:
    rendition, file = path.split("?")[0].rsplit("/", 2)[1:]
    key = f"{TRACK}/{rendition}/{file}"
    return object_bytes(key, vectors()["objects"][key])


def test_nginx_answers_every_vector(tier: NginxTier) -> None:
    wrong = []
    for case in cases():
        reply = request(tier, case["path"])
        if reply.status != case["status"]:
            wrong.append(f"{case['name']}: {reply.status}, expected {case['status']}")
        elif case["status"] == 200:
            if reply.body != _object_for(case["path"]):
                wrong.append(f"{case['name']}: body differs from the object")
        elif reply.json()["error"] != case["error"]:
            wrong.append(f"{case['name']}: error {reply.json()['error']}, not {case['error']}")
    assert wrong == []


def test_ranges_validators_and_head(tier: NginxTier) -> None:
    whole = request(tier, SEG)
    assert whole.status == 200 and whole.body == SEG_BYTES
    assert whole.headers["Accept-Ranges"] == "bytes"
    etag = whole.headers["ETag"]

    part = request(tier, SEG, headers={"Range": "bytes=100-1099"})
    assert part.status == 206
    assert part.body == SEG_BYTES[100:1100]
    assert part.headers["Content-Range"] == f"bytes 100-1099/{len(SEG_BYTES)}"
    tail = request(tier, SEG, headers={"Range": "bytes=-10"})
    assert tail.status == 206 and tail.body == SEG_BYTES[-10:]
    beyond = request(tier, SEG, headers={"Range": f"bytes={len(SEG_BYTES)}-"})
    assert beyond.status == 416

    cached = request(tier, SEG, headers={"If-None-Match": etag})
    assert cached.status == 304 and cached.body == b""
    assert cached.headers["ETag"] == etag
    stale = request(tier, SEG, headers={"If-None-Match": '"something-else"'})
    assert stale.status == 200 and stale.body == SEG_BYTES

    head = request(tier, SEG, method="HEAD")
    assert head.status == 200 and head.body == b""
    assert int(head.headers["Content-Length"]) == len(SEG_BYTES)
    assert request(tier, SEG, method="POST").status == 405


def _assert_cors(reply: Any) -> None:
    assert reply.headers["Access-Control-Allow-Origin"] == ALLOW_ORIGIN
    assert reply.headers["Access-Control-Expose-Headers"] == EXPOSE_HEADERS
    assert reply.headers["X-Request-Id"]


def test_segment_headers_match_the_edge(tier: NginxTier) -> None:
    reply = request(tier, SEG, headers={"X-Request-Id": "player-req-0001"})
    assert reply.headers["Content-Type"] == "audio/mp4"
    assert reply.headers["Cache-Control"] == IMMUTABLE
    _assert_cors(reply)
    assert reply.headers["X-Request-Id"] == "player-req-0001"
    static = parse_cmsd_static(reply.headers["CMSD-Static"])
    assert (static.ot, static.sf, static.st) == ("a", "h", "v")
    (dynamic,) = parse_cmsd_dynamic(reply.headers["CMSD-Dynamic"])
    assert dynamic.server == "nginx-test"
    assert dynamic.mb == FREE_TIER_MAX_KBPS  # the free tier's ceiling

    init = request(tier, f"/v1/s/{FREE}/aac_160/init.mp4")
    assert parse_cmsd_static(init.headers["CMSD-Static"]).ot == "i"

    premium = request(tier, f"/v1/s/{PREMIUM}/aac_256/seg_00000.m4s")
    assert premium.status == 200
    (dynamic,) = parse_cmsd_dynamic(premium.headers["CMSD-Dynamic"])
    assert dynamic.mb is None  # no ceiling for premium


def test_refusals_are_json_with_cors_and_no_store(tier: NginxTier) -> None:
    expired = next(c for c in cases() if c["name"] == "expired")
    for path, status in (
        (expired["path"], 401),
        (f"/v1/s/{FREE}/aac_256/seg_00000.m4s", 403),
        (f"/v1/s/{FREE}/aac_160/seg_00099.m4s", 404),
        (f"/v1/s/{FREE}/..%2f../seg_00001.m4s", 400),
    ):
        reply = request(tier, path)
        assert reply.status == status
        assert reply.headers["Content-Type"] == "application/json"
        assert reply.headers["Cache-Control"] == "no-store"
        assert "CMSD-Static" not in reply.headers
        _assert_cors(reply)
        assert set(reply.json()) == {"error", "message"}
        assert FREE not in reply.body.decode()
    assert request(tier, expired["path"]).headers["WWW-Authenticate"].startswith("Bearer")


def test_preflight(tier: NginxTier) -> None:
    reply = request(tier, SEG, method="OPTIONS")
    assert reply.status == 204
    assert reply.headers["Access-Control-Allow-Methods"] == ALLOW_METHODS
    assert reply.headers["Access-Control-Allow-Headers"] == ALLOW_HEADERS
    _assert_cors(reply)


def test_everything_else_goes_to_the_edge(tier: NginxTier) -> None:
    path = f"/v1/s/{FREE}/main.m3u8?CMCD=sid%3D%22x%22"
    reply = request(tier, path, headers={"Host": "edge.example", "X-Forwarded-For": "10.0.0.9"})
    assert reply.status == 200
    seen = reply.json()
    assert seen["path"] == path  # as sent: the edge checks its own token
    assert seen["headers"]["Host"] == "edge.example"
    assert seen["headers"]["X-Forwarded-For"] == "10.0.0.9, 127.0.0.1"
    assert seen["headers"]["X-Request-Id"]
    assert request(tier, "/v1/keys/abc?t=x").json()["path"] == "/v1/keys/abc?t=x"
    # Traversal never reaches the edge either.
    bad = request(tier, "/v1/s/x/..%2F..%2Fmain.m3u8")
    assert bad.status == 400 and bad.json()["error"] == "malformed_name"


def test_edge_down_is_a_503_to_retry(tier: NginxTier) -> None:
    config = replace(tier.config, edge_upstream=f"127.0.0.1:{free_port()}", listen_port=free_port())
    with start_nginx_tier(config, vector_secrets()) as down:
        reply = request(down, "/v1/tracks")
    assert reply.status == 503
    assert reply.headers["Retry-After"] == "2"
    assert reply.json()["error"] == "unavailable"


def test_access_log_is_json_without_the_token(tier: NginxTier) -> None:
    cmcd = {
        "CMCD-Object": "br=160,d=6000,ot=a",
        "CMCD-Request": "bl=12000",
        "CMCD-Session": 'sid="6e2fb550"',
        "CMCD-Status": "bs",
        "Range": "bytes=0-99",
        "User-Agent": "test-player/1.0",
    }
    request(tier, SEG + "?CMCD=br%3D160", headers=cmcd)
    request(tier, f"/v1/s/{FREE}/aac_256/seg_00000.m4s")
    request(tier, f"/v1/s/{FREE}/main.m3u8")
    lines = access_lines(tier, 3)
    assert len(lines) == 3
    for line in lines:
        assert tuple(line) == FIELD_NAMES
    # Each worker buffers its own lines: the file is in order per worker, not overall.
    by_uri = {line["uri"]: line for line in lines}
    served = by_uri["/v1/s/-/aac_160/seg_00001.m4s"]
    refused = by_uri["/v1/s/-/aac_256/seg_00000.m4s"]
    proxied = by_uri["/v1/s/-/main.m3u8"]
    assert served["status"] == 206 and served["bytes"] == 100
    assert served["uri"] == "/v1/s/-/aac_160/seg_00001.m4s"
    assert served["route"] == "segment"
    assert (served["session_id"], served["track_id"], served["version"], served["tier"]) == (
        "sess-free-1",
        "USRC17607839",
        "0123456789abcdef",
        "free",
    )
    assert (served["rendition"], served["object"]) == ("aac_160", "seg_00001.m4s")
    assert served["cmcd_query"] == "br%3D160"
    assert served["cmcd_object"] == cmcd["CMCD-Object"]
    assert served["cmcd_request"] == cmcd["CMCD-Request"]
    assert served["cmcd_session"] == cmcd["CMCD-Session"]
    assert served["cmcd_status"] == cmcd["CMCD-Status"]
    assert served["range"] == "bytes=0-99"
    assert served["user_agent"] == "test-player/1.0"
    assert served["method"] == "GET" and served["connection_requests"] == 1
    assert isinstance(served["ts"], float) and isinstance(served["request_time"], float)
    assert refused["status"] == 403 and refused["rendition"] == "aac_256"
    assert proxied["route"] == "edge" and proxied["uri"] == "/v1/s/-/main.m3u8"
    assert proxied["session_id"] == ""
    logs = tier.config.access_log.read_text() + tier.config.error_log.read_text()
    assert FREE.split(".")[1] not in logs  # no token signature anywhere in the logs


def test_reopen_logs_after_rotation(tier: NginxTier) -> None:
    request(tier, SEG)
    assert len(access_lines(tier, 1)) == 1
    rotated = tier.config.access_log.with_suffix(".log.1")
    os.rename(tier.config.access_log, rotated)
    tier.reopen_logs()
    # Workers reopen asynchronously: until they do, lines still go to the renamed file.
    sent = 1
    for _ in range(100):
        request(tier, SEG)
        sent += 1
        if tier.config.access_log.exists() and access_lines(tier, 0):
            break
    assert access_lines(tier, 1), "nginx never wrote to the reopened access.log"
    # Each worker flushes its buffer when it gets the signal: wait for every line, lose none.
    total = 0
    for _ in range(100):
        total = len(rotated.read_text().splitlines()) + len(access_lines(tier, 0))
        if total >= sent:
            break
        time.sleep(0.05)
    assert total == sent


def test_secrets_stay_out_of_the_config(tier: NginxTier) -> None:
    config = tier.config.conf_file.read_text()
    for key in vectors()["secrets_hex_test_only"]:
        assert key not in config
    assert tier.config.gate_settings_file.stat().st_mode & 0o777 == 0o600


def test_stop_drains_and_frees_the_port(tier: NginxTier) -> None:
    assert tier.stop() == 0
    assert not tier.running()
    with pytest.raises(OSError):
        request(tier, SEG)


def test_media_playlists_pass_the_gate_then_come_from_the_cache(tier: NginxTier) -> None:
    path = f"/v1/s/{FREE}/aac_160/playlist.m3u8"
    first = request(tier, f"{path}?CMCD=ot%3Dm", headers={"X-Request-Id": "first-request"})
    again = request(tier, f"{path}?CMCD=ot%3Dm%2Cbl%3D900", headers={"X-Request-Id": "again-1"})
    assert first.status == again.status == 200
    asked = first.json()
    # The edge was asked once, without the query; the second answer is the cached first.
    assert asked["path"] == path
    assert asked["headers"]["X-Request-Id"] == "first-request"
    assert again.body == first.body
    # Another encoding is another body; a refused gzip (q=0) is the plain one.
    zipped = request(tier, path, headers={"Accept-Encoding": "gzip, br"})
    assert zipped.json()["headers"]["Accept-Encoding"] == "gzip"
    refused = request(tier, path, headers={"Accept-Encoding": "gzip;q=0"})
    assert refused.body == first.body
    # The same gate as segments: nothing reaches the edge or the cache without a good token.
    forged = FREE[:-4] + ("AAAA" if not FREE.endswith("AAAA") else "BBBB")
    assert request(tier, f"/v1/s/{forged}/aac_160/playlist.m3u8").status == 401
    assert request(tier, f"/v1/s/{FREE}/flac/playlist.m3u8").status == 403  # not offered
