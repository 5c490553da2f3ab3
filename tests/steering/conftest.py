"""Fixtures for steering: the edge's fixtures, configured with two CDN pathways on loopback.

The "CDNs" are one small aiohttp server answering GET /a/healthz and /b/healthz with a status
the test sets, so the edge's background health probes run for real, never off the machine.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from streamer.settings import Settings, load_settings
from tests.edge.conftest import (  # noqa: F401  fixtures, shared with the edge's tests
    access_log_stream,
    client,
    clock,
    edge_app,
    edge_secrets,
    hls_dir,
    listener_token,
    open_session,
    reader,
    ring,
    session_store,
    store,
    track,
)

EDGE_URL = "http://edge.test"  # nothing connects to it: the edge's own pathway is not probed
STEERING_TTL_S = 2  # probes every 0.25 s (a tenth of the TTL, at least 0.25 s)


@dataclass
class FakeCdns:
    """Health endpoints of CDN pathways 'a' and 'b' under one loopback server."""

    url: str
    status: dict[str, int] = field(default_factory=lambda: {"a": 200, "b": 200})
    probes: dict[str, int] = field(default_factory=lambda: {"a": 0, "b": 0})

    def base(self, name: str) -> str:
        return f"{self.url}/{name}"


@pytest.fixture
async def cdns(aiohttp_server: object) -> FakeCdns:
    holder: list[FakeCdns] = []

    async def healthz(request: web.Request) -> web.Response:
        cdn = holder[0]
        name = request.match_info["name"]
        cdn.probes[name] += 1
        return web.json_response({"status": "ok"}, status=cdn.status[name])

    app = web.Application()
    app.router.add_get("/{name:[ab]}/healthz", healthz)
    server: TestServer = await aiohttp_server(app)  # type: ignore[operator]
    holder.append(FakeCdns(str(server.make_url("")).rstrip("/")))
    return holder[0]


@pytest.fixture
def settings(tmp_path: Path, cdns: FakeCdns) -> Settings:
    pathways = [
        {"id": "cdn-a", "base_url": cdns.base("a"), "regions": ["SE", "NO"], "weight": 1},
        {"id": "cdn-b", "base_url": cdns.base("b"), "weight": 1},
    ]
    return load_settings(
        environ={},
        data_dir=tmp_path / "data",
        public_url=EDGE_URL,
        pathways=json.dumps(pathways),
        steering_ttl_s=STEERING_TTL_S,
    )
