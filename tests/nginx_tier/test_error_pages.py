"""nginx's own refusals (parser errors, limits, ranges) are JSON, from a real nginx tier."""

from __future__ import annotations

import json

import pytest

from cdn_edge.nginx_tier import NginxTier
from cdn_edge.nginx_tier.config import render_config
from cdn_edge.nginx_tier.error_pages import PROTOCOL_ERRORS, ProtocolError
from tests.nginx_tier.vectors import vectors
from tests.security.raw_http import Reply, build_request, send

FREE = vectors()["tokens"]["free"]
SEG = f"/v1/s/{FREE}/aac_160/seg_00001.m4s"
PLAYLIST = f"/v1/s/{FREE}/aac_160/playlist.m3u8"

# (what, raw request, status sent, error code)
REFUSED: list[tuple[str, bytes, int, str]] = [
    ("a method that is not a token", b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad_request"),
    ("a request line with junk", b"GET / HTTP/1.1 junk\r\nHost: a\r\n\r\n", 400, "bad_request"),
    ("a bad escape", build_request("GET", "/v1/tracks%yJ"), 400, "bad_request"),
    ("an escaped NUL", build_request("GET", "/v1/tracks%00x"), 400, "bad_request"),
    ("a NUL in a header", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n", 400, "bad_request"),
    ("no Host", b"GET / HTTP/1.1\r\n\r\n", 400, "bad_request"),
    (
        "a header over 8 KB",
        build_request("GET", "/", [("X-Big", "b" * 9000)]),
        431,
        "headers_too_large",
    ),
    ("a path of 100 KB", build_request("GET", "/" + "a" * 100_000), 414, "uri_too_long"),
    ("TRACE", build_request("TRACE", "/v1/tracks"), 405, "method_not_allowed"),
    (
        "an unknown Transfer-Encoding",
        build_request("POST", "/v1/sessions", [("Transfer-Encoding", "gzip")], b"x"),
        501,
        "not_implemented",
    ),
    (
        "HTTP/2.0 over HTTP/1",
        b"GET / HTTP/2.0\r\nHost: a\r\n\r\n",
        505,
        "http_version_not_supported",
    ),
    (
        "a range past a segment",
        build_request("GET", SEG, [("Range", "bytes=999999999-")]),
        416,
        "range_not_satisfiable",
    ),
]


def exchange(tier: NginxTier, raw: bytes) -> Reply:
    return send(tier.config.listen_host, tier.config.listen_port, raw)


@pytest.mark.parametrize(
    "raw, status, code", [(r, s, c) for _, r, s, c in REFUSED], ids=[w for w, *_ in REFUSED]
)
def test_nginx_refusals_are_json(tier: NginxTier, raw: bytes, status: int, code: str) -> None:
    reply = exchange(tier, raw)

    assert reply.status == status, reply.body[:200]
    assert reply.headers["content-type"] == "application/json"
    assert reply.headers["cache-control"] == "no-store"
    assert json.loads(reply.body) == {"error": code, "message": _message(code)}
    assert FREE.encode() not in reply.body


def test_the_gate_and_the_edge_keep_their_own_answers(tier: NginxTier) -> None:
    """The refusals the gate and the edge already answered as JSON are unchanged."""
    assert (
        json.loads(exchange(tier, build_request("POST", SEG)).body)["error"] == "method_not_allowed"
    )
    bad = exchange(tier, build_request("GET", "/v1/s/x/..%2F..%2Fmain.m3u8"))
    assert bad.status == 400 and json.loads(bad.body)["error"] == "malformed_name"
    assert exchange(tier, build_request("GET", SEG)).status == 200


def test_every_status_has_one_page_and_a_location(tier: NginxTier) -> None:
    text = render_config(tier.config)
    for error in PROTOCOL_ERRORS:
        assert text.count(f"location = {error.location} {{") == 1
        assert f"return {error.sent} '{error.body}';" in text
    statuses = [e.status for e in PROTOCOL_ERRORS]
    assert len(statuses) == len(set(statuses))


def test_a_quote_in_a_message_is_refused() -> None:
    with pytest.raises(ValueError, match="quote"):
        ProtocolError(400, 400, "bad", "it's broken")


def _message(code: str) -> str:
    return next(e.message for e in PROTOCOL_ERRORS if e.code == code and e.sent != 503)


def test_a_416_still_says_the_length(tier: NginxTier) -> None:
    reply = exchange(tier, build_request("GET", SEG, [("Range", "bytes=999999999-")]))
    assert reply.status == 416
    assert reply.headers.get("content-range", "").startswith("bytes */")
