"""Operations over HTTP: metrics, health, readiness, access logs, player page, hls.js."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from cdn_edge.access_log import ACCESS_LOGGER, JsonFormatter
from cdn_edge.state import READY
from streamer.errors import StorageError
from streamer.settings import Settings
from tests.edge.builders import CountingReader
from tests.edge.conftest import Client, path_of

OpenSession = Callable[..., Awaitable[dict[str, Any]]]


async def test_metrics_exposition(
    client: Client, open_session: OpenSession, settings: Settings
) -> None:
    doc = await open_session("free")
    await client.get(path_of(settings, doc["playlist_url"]))
    await client.get("/v1/keys/v1-free-0")  # refused: no token
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
    client.app[READY].ready = False  # type: ignore[index]
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
    client: Client, open_session: OpenSession, settings: Settings, caplog: Any
) -> None:
    doc = await open_session("free")
    token = doc["playlist_url"].split("/")[-2]
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = await client.get(
            path_of(settings, doc["playlist_url"]), headers={"X-Request-Id": "req-12345678"}
        )
    assert response.headers["X-Request-Id"] == "req-12345678"
    records = [r for r in caplog.records if r.name == ACCESS_LOGGER]
    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    assert '"request_id":"req-12345678"' in line
    assert '"route":"playlist_main"' in line
    assert f'"session_id":"{doc["session_id"]}"' in line
    assert token not in line
    # A hostile request id is replaced, not echoed.
    response = await client.get("/healthz", headers={"X-Request-Id": "<script>alert(1)"})
    assert response.headers["X-Request-Id"] != "<script>alert(1)"


async def test_key_issuance_is_logged_without_key_bytes(
    client: Client, open_session: OpenSession, settings: Settings, caplog: Any
) -> None:
    from manifests import parse_media

    doc = await open_session("free")
    url = doc["playlist_url"].rsplit("/", 1)[0] + "/aac_96.m3u8"
    media = parse_media(await (await client.get(path_of(settings, url))).text())
    with caplog.at_level(logging.INFO, logger="cdn_edge.keys_api"):
        key = await (await client.get(path_of(settings, media.segments[0].key.uri))).read()  # type: ignore[union-attr]
    issued = [r for r in caplog.records if r.getMessage() == "content key issued"]
    assert len(issued) == 1
    line = JsonFormatter().format(issued[0])
    assert '"key_id":"v1-free-0"' in line
    assert key.hex() not in line.lower() and repr(key) not in line


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
