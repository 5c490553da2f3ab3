"""The load generator's HTTP client against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from benchmarks.http_client import HttpClient, HttpFailure, split_url

PLAYLIST = b"#EXTM3U\n" + b"#EXTINF:6,\nseg.m4s\n" * 200


PORTS = web.AppKey("ports", set)


async def _plain(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.app[PORTS].add(request.transport.get_extra_info("peername")[1])
    return web.Response(body=b"x" * 120_000)


async def _gzipped(request: web.Request) -> web.Response:
    assert "gzip" in request.headers["Accept-Encoding"]
    return web.Response(body=gzip.compress(PLAYLIST), headers={"Content-Encoding": "gzip"})


async def _chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(status=203)
    response.enable_chunked_encoding()
    await response.prepare(request)
    for part in (b"first,", b"second,", b"third"):
        await response.write(part)
    await response.write_eof()
    return response


async def _echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(status=201, body=body + request.headers["X-Test"].encode())


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query["s"]))
    return web.Response(body=b"late")


async def _hang_up(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()  # no response at all
    await asyncio.sleep(1)
    return web.Response()


@pytest.fixture
async def server() -> AsyncIterator[TestServer]:
    app = web.Application()
    app[PORTS] = set()
    app.router.add_get("/plain", _plain)
    app.router.add_get("/gzip", _gzipped)
    app.router.add_get("/chunked", _chunked)
    app.router.add_post("/echo", _echo)
    app.router.add_get("/slow", _slow)
    app.router.add_get("/hang-up", _hang_up)
    test_server = TestServer(app, host="127.0.0.1")
    async with test_server:
        yield test_server


def _url(server: TestServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_bodies_by_length_chunks_and_gzip(server: TestServer) -> None:
    async with HttpClient(limit=4) as http:
        plain = await http.request("GET", _url(server, "/plain"), timeout_s=5)
        assert (plain.status, plain.body, plain.wire_bytes) == (200, b"x" * 120_000, 120_000)
        chunked = await http.request("GET", _url(server, "/chunked"), timeout_s=5)
        assert (chunked.status, chunked.body) == (203, b"first,second,third")
        zipped = await http.request("GET", _url(server, "/gzip"), timeout_s=5)
        assert zipped.body == PLAYLIST
        assert zipped.wire_bytes == len(gzip.compress(PLAYLIST)) < len(PLAYLIST)
        posted = await http.request(
            "POST", _url(server, "/echo"), body=b"payload:", headers={"X-Test": "t"}, timeout_s=5
        )
        assert (posted.status, posted.body) == (201, b"payload:t")


async def test_connections_are_kept_alive_and_bounded(server: TestServer) -> None:
    async with HttpClient(limit=2) as http:
        answers = await asyncio.gather(
            *(http.request("GET", _url(server, "/plain"), timeout_s=5) for _ in range(20))
        )
        assert all(a.status == 200 for a in answers)
        again = [await http.request("GET", _url(server, "/plain"), timeout_s=5) for _ in range(5)]
        assert all(a.status == 200 for a in again)
    # 25 requests over two connections at most: the server saw at most two client ports.
    assert 1 <= len(server.app[PORTS]) <= 2


async def test_failures_are_classified(server: TestServer) -> None:
    async with HttpClient(limit=1) as http:
        with pytest.raises(HttpFailure) as timeout:
            await http.request("GET", _url(server, "/slow?s=2"), timeout_s=0.2)
        assert timeout.value.kind == "timeout"
        # The timed-out connection was dropped, not handed to the next request half read.
        fine = await http.request("GET", _url(server, "/slow?s=0"), timeout_s=5)
        assert fine.body == b"late"
        with pytest.raises(HttpFailure) as hung_up:
            await http.request("GET", _url(server, "/hang-up"), timeout_s=5)
        assert hung_up.value.kind == "disconnected"
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            port = unused.getsockname()[1]
        with pytest.raises(HttpFailure) as refused:
            await http.request("GET", f"http://127.0.0.1:{port}/", timeout_s=5)
        assert refused.value.kind == "connect"


async def test_waiting_for_a_connection_counts_against_the_timeout(server: TestServer) -> None:
    async with HttpClient(limit=1) as http:
        slow = asyncio.create_task(http.request("GET", _url(server, "/slow?s=1"), timeout_s=5))
        await asyncio.sleep(0.1)  # the one connection is busy
        with pytest.raises(HttpFailure, match="no connection within") as waited:
            await http.request("GET", _url(server, "/plain"), timeout_s=0.2)
        assert waited.value.kind == "timeout"
        assert (await slow).body == b"late"
        assert (await http.request("GET", _url(server, "/plain"), timeout_s=5)).status == 200


def test_split_url() -> None:
    assert split_url("http://127.0.0.1:8080/v1/keys/k?t=a&CMCD=x") == (
        "127.0.0.1",
        8080,
        "/v1/keys/k?t=a&CMCD=x",
    )
    assert split_url("http://example/") == ("example", 80, "/")
    with pytest.raises(ValueError, match="only http://"):
        split_url("https://example/")
