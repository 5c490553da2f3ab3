"""Operations over HTTP: metrics, health, readiness, access logs, player page, hls.js."""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cdn_edge.state import READY
from cdn_edge.web.access_log import ACCESS_LOGGER, ATOMIC_WRITE_BYTES, AccessLog
from streamer.errors import StorageError
from streamer.settings import Settings
from tests.edge.builders import CountingReader
from tests.edge.conftest import AccessLines, Client, path_of

OpenSession = Callable[..., Awaitable[dict[str, Any]]]


async def test_metrics_exposition(
    client: Client, open_session: OpenSession, settings: Settings
) -> None:
    doc = await open_session("free")
    await client.get(path_of(settings, doc["playlist_url"]))
    await client.post("/v1/sessions", json={})  # refused: no listener token
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    assert 'edge_requests_total{route="session_create",status="201"} 1.0' in text
    assert 'edge_requests_total{route="playlist_main",status="200"} 1.0' in text
    assert 'edge_request_duration_seconds_bucket{le="0.005",route="playlist_main"' in text
    assert 'edge_refusals_total{reason="unauthorized"} 1.0' in text
    assert 'edge_bytes_served_total{route="playlist_main"}' in text
    assert 'edge_sessions_created_total{tier="free"} 1.0' in text
    assert "edge_active_sessions 1.0" in text
    assert "edge_segment_cache_hit_ratio" in text
    assert "edge_keys_issued_total" in text or "edge_keys_issued" in text


async def test_health_and_readiness(client: Client, reader: CountingReader) -> None:
    assert (await client.get("/healthz")).status == 200
    response = await client.get("/readyz")
    assert response.status == 200
    assert ("stat", "tracks/.readyz-probe") in reader.calls
    client.app[READY].ready = False
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await client.get("/healthz")).status == 200


async def test_readiness_fails_when_the_store_fails(
    client: Client, reader: CountingReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(key: str) -> None:
        raise StorageError("connection refused")

    monkeypatch.setattr(reader, "stat", down)
    response = await client.get("/readyz")
    assert response.status == 503


async def test_unknown_routes_are_json_404(client: Client) -> None:
    response = await client.get("/nope")
    assert response.status == 404
    assert (await response.json())["error"] == "not_found"
    response = await client.post("/healthz")
    assert response.status == 405
    assert "GET" in response.headers["Allow"]


async def test_access_log_has_request_id_and_no_tokens(
    client: Client,
    open_session: OpenSession,
    settings: Settings,
    access_lines: AccessLines,
    access_log_stream: io.StringIO,
) -> None:
    doc = await open_session("free")
    token = doc["playlist_url"].split("/")[-2]
    response = await client.get(
        path_of(settings, doc["playlist_url"]), headers={"X-Request-Id": "req-12345678"}
    )
    assert response.headers["X-Request-Id"] == "req-12345678"
    lines = [line for line in access_lines() if line["route"] == "playlist_main"]
    assert len(lines) == 1
    line = lines[0]
    assert line["logger"] == ACCESS_LOGGER and line["msg"] == "request"
    assert line["request_id"] == "req-12345678" and line["status"] == 200
    assert line["session_id"] == doc["session_id"]
    assert line["ts"].endswith("Z") and line["bytes"] > 0
    assert token not in access_log_stream.getvalue()
    # A hostile request id is replaced, not echoed.
    response = await client.get("/healthz", headers={"X-Request-Id": "<script>alert(1)"})
    assert response.headers["X-Request-Id"] != "<script>alert(1)"
    assert "<script>" not in access_log_stream.getvalue()


async def test_request_ids_are_unique(client: Client) -> None:
    ids = {(await client.get("/healthz")).headers["X-Request-Id"] for _ in range(50)}
    assert len(ids) == 50


async def test_key_issuance_is_logged_without_key_bytes(
    client: Client,
    open_session: OpenSession,
    settings: Settings,
    access_lines: AccessLines,
    access_log_stream: io.StringIO,
) -> None:
    from manifests import parse_media

    doc = await open_session("free")
    url = doc["playlist_url"].rsplit("/", 1)[0] + "/aac_96/playlist.m3u8"
    media = parse_media(await (await client.get(path_of(settings, url))).text())
    segment_key = media.segments[0].key
    assert segment_key is not None and segment_key.uri is not None
    key_url = segment_key.uri
    key = await (await client.get(path_of(settings, key_url, relative_to=url))).read()
    issued = [line for line in access_lines() if line["route"] == "key"]
    assert len(issued) == 1
    assert issued[0]["key_id"] == "v1-free-0" and issued[0]["key_tier"] == "free"
    assert issued[0]["session_id"] == doc["session_id"] and issued[0]["session_tier"] == "free"
    text = access_log_stream.getvalue()
    assert key.hex() not in text.lower() and repr(key) not in text


async def test_access_log_is_buffered_then_written_in_order() -> None:
    stream = io.StringIO()
    log = AccessLog(stream, clock=lambda: 1_700_000_000.25)
    for i in range(3):
        log.write({"request_id": f"r{i}", "status": 200})
    assert stream.getvalue() == ""  # nothing until a flush
    log.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["r0", "r1", "r2"]
    assert lines[0]["ts"] == "2023-11-14T22:13:20.250Z"
    log.write({})  # no fields is still a JSON line
    log.flush()
    assert json.loads(stream.getvalue().splitlines()[-1])["msg"] == "request"
    AccessLog(None).write({"a": 1})  # off: nothing to write to, no error


async def test_player_page(client: Client) -> None:
    response = await client.get("/player?track=trk1&token=abc")
    assert response.status == 200
    assert response.content_type == "text/html"
    text = await response.text()
    assert "/static/hls.min.js" in text and "/v1/sessions" in text
    assert "createGain" in text  # loudness gain applied in the page
    assert response.headers["Referrer-Policy"] == "no-referrer"


def install_fake_hls(hls_dir: Path) -> None:
    hls_dir.mkdir(parents=True)
    (hls_dir / "hls.min.js").write_text("var Hls = {};")


async def test_hls_js_missing_then_installed(client: Client, hls_dir: Path) -> None:
    response = await client.get("/static/hls.min.js")
    assert response.status == 404
    assert "./dev setup" in (await response.json())["message"]
    await asyncio.to_thread(install_fake_hls, hls_dir)
    response = await client.get("/static/hls.min.js")
    assert response.status == 200
    assert await response.text() == "var Hls = {};"
    assert response.content_type == "text/javascript"


def test_access_log_writes_whole_lines_in_pipe_atomic_chunks() -> None:
    class CountingStream(io.StringIO):
        def __init__(self) -> None:
            super().__init__()
            self.writes: list[str] = []

        def write(self, text: str) -> int:
            self.writes.append(text)
            return super().write(text)

    stream = CountingStream()
    log = AccessLog(stream, clock=lambda: 1_700_000_000.0)
    for i in range(200):
        log.write({"request_id": f"r{i:04d}", "route": "segment", "status": 200})
    log.write({"request_id": "long", "pad": "x" * 5000})  # one line over the limit
    log.flush()
    assert len(stream.writes) > 1
    for chunk in stream.writes:
        assert chunk.endswith("\n")
        assert len(chunk) <= ATOMIC_WRITE_BYTES or chunk.count("\n") == 1
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == [f"r{i:04d}" for i in range(200)] + ["long"]
