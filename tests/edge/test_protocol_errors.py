"""Requests aiohttp's parser refuses are answered in the API's JSON shape, by a real server."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cdn_edge.app import create_app
from cdn_edge.server import listening_socket, serve
from cdn_edge.web.protocol_errors import protocol_error_reason
from drm import KeyRing
from streamer.objects.memory import InMemoryObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.security.raw_http import Reply, build_request, send

# (what, the raw request, the code expected); each is refused by aiohttp before any handler.
MALFORMED: list[tuple[str, bytes, str]] = [
    ("a method that is not a token", b"G(T /healthz HTTP/1.1\r\nHost: a\r\n\r\n", "bad_method"),
    ("a request line with a bad version", b"GET /healthz HTTP/9\r\nHost: a\r\n\r\n", ""),
    ("a request line over 8,190 bytes", build_request("GET", "/" + "a" * 9000), "line_too_long"),
    (
        "a header over 8,190 bytes",
        build_request("GET", "/healthz", [("X-Big", "b" * 9000)]),
        "line_too_long",
    ),
    (
        "a NUL in a header value",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n",
        "bad_header",
    ),
    (
        "a header without a colon",
        b"GET /healthz HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n",
        "bad_header",
    ),
    (
        "a bad chunk size",
        b"POST /v1/sessions HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "bad_body_framing",
    ),
]


@pytest.fixture
async def edge_port(
    settings: Settings, ring: KeyRing, edge_secrets: TokenSecrets, tmp_path: Path
) -> AsyncIterator[int]:
    app = create_app(
        settings,
        InMemoryObjectStore(),
        SQLiteSessionStore(tmp_path / "s.sqlite3"),
        ring,
        secrets=edge_secrets,
    )
    sock = listening_socket("127.0.0.1", 0, reuse_port=False)
    port = sock.getsockname()[1]
    stop, started = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(app, sock, stop, None, started.set))
    await asyncio.wait_for(started.wait(), 10)
    try:
        yield port
    finally:
        stop.set()
        await asyncio.wait_for(server, 15)


async def exchange(port: int, raw: bytes) -> Reply:
    return await asyncio.to_thread(send, "127.0.0.1", port, raw)


@pytest.mark.parametrize(
    "raw, code", [(r, c) for _, r, c in MALFORMED], ids=[w for w, _, _ in MALFORMED]
)
async def test_malformed_requests_get_json(edge_port: int, raw: bytes, code: str, caplog) -> None:
    with caplog.at_level(logging.INFO):
        reply = await exchange(edge_port, raw)

    assert reply.status == 400
    assert reply.headers["content-type"].startswith("application/json")
    doc = json.loads(reply.body)
    assert set(doc) == {"error", "message"}
    if code:
        assert doc["error"] == code
    else:
        assert doc["error"].startswith("bad_")
    # A client's mistake is not the server's error: no ERROR line, no traceback.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not [r for r in caplog.records if r.exc_info]


async def test_the_refusal_does_not_echo_the_request(edge_port: int) -> None:
    secret = "tok_" + "s" * 40
    reply = await exchange(
        edge_port,
        f"GET /v1/s/{secret}/main.m3u8 HTTP/1.1\r\nHost: a\r\nX: a\x00{secret}\r\n\r\n".encode(),
    )
    assert reply.status == 400
    assert secret.encode() not in reply.body


async def test_well_formed_requests_are_untouched(edge_port: int) -> None:
    reply = await exchange(edge_port, build_request("GET", "/healthz"))
    assert reply.status == 200
    reply = await exchange(edge_port, build_request("GET", "/no/such/route"))
    assert reply.status == 404
    assert json.loads(reply.body)["error"] == "not_found"


def test_reasons_by_error_class() -> None:
    from aiohttp import http_exceptions

    assert protocol_error_reason(400, http_exceptions.BadHttpMethod("FOO"))[0] == "bad_method"
    assert protocol_error_reason(400, http_exceptions.BadStatusLine("x"))[0] == "bad_request_line"
    assert (
        protocol_error_reason(400, http_exceptions.LineTooLong("x", "8190", "9000"))[0]
        == "line_too_long"
    )
    assert protocol_error_reason(400, ValueError("x"))[0] == "bad_request"
    assert protocol_error_reason(500, None)[0] == "internal_error"
