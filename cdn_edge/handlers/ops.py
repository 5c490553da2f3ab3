"""GET /metrics, /healthz (alive) and /readyz (take traffic: started, not draining, store up)."""

from __future__ import annotations

import contextlib

from aiohttp import web

from cdn_edge.errors import Unavailable
from cdn_edge.metrics import CONTENT_TYPE
from cdn_edge.state import BLOCKING, METRICS, READER, READY
from streamer.errors import ObjectNotFound

# A key no object has: a "not found" answer proves the store is reachable, cheaply.
READINESS_PROBE_KEY = "tracks/.readyz-probe"
NO_STORE = {"Cache-Control": "no-store"}


async def metrics(request: web.Request) -> web.Response:
    body = request.app[METRICS].exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE, **NO_STORE})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"}, headers=NO_STORE)


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    if not app[READY].ready:
        raise Unavailable("the edge is starting or draining")
    reader = app[READER]
    with contextlib.suppress(ObjectNotFound):
        await app[BLOCKING](reader.stat, READINESS_PROBE_KEY)
    return web.json_response({"status": "ready"}, headers=NO_STORE)
