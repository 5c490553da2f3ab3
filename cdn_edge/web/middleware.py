"""The one middleware every request passes: request id, errors as JSON, CORS, metrics, log.

One middleware rather than five: each layer costs microseconds on a route that must serve
thousands of playlists a second per core.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from cdn_edge.errors import EdgeError
from cdn_edge.state import ACCESS_LOG, CAPTURE, LOG_FIELDS, METRICS, REQUEST_ID
from cdn_edge.telemetry.capture import CMCD_ROUTES
from cdn_edge.unique_ids import UniqueIds
from cdn_edge.web.cors import CORS_HEADERS, preflight_response
from drm import DrmError, TokenClaimMismatch, TokenError, TokenExpired
from manifests import ManifestError
from streamer.errors import StreamerError

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_CLIENT_REQUEST_ID = re.compile(r"[A-Za-z0-9_.\-]{8,64}")  # adopt a caller's id if it is sane
_CAMEL_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
UNMATCHED_ROUTE = "unmatched"
PREFLIGHT_ROUTE = "preflight"


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps({"error": code, "message": message}).encode()
    return web.Response(
        status=status,
        body=body,
        content_type="application/json",
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


BACKEND_RETRY_AFTER_S = 2  # long enough for a store to fail over, short for a player's buffer


def error_response(exc: BaseException) -> tuple[web.Response, str]:
    """The JSON response for an exception, and its reason code for the refusal counter."""
    if isinstance(exc, EdgeError):
        return json_error(exc.http_status, exc.code, str(exc), exc.headers()), exc.code
    if isinstance(exc, TokenError):
        if isinstance(exc, TokenClaimMismatch):
            return json_error(403, "token_mismatch", str(exc)), "token_mismatch"
        headers = {"WWW-Authenticate": 'Bearer realm="streamer-edge"'}
        code = "token_expired" if isinstance(exc, TokenExpired) else "token_invalid"
        return json_error(401, code, str(exc), headers), code
    if isinstance(exc, web.HTTPException):
        # The router's 404 and 405 (with its Allow header) in our JSON shape.
        code = exc.reason.lower().replace(" ", "_")
        headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return json_error(exc.status, code, exc.reason, headers), code
    if isinstance(exc, StreamerError | DrmError | ManifestError):
        status = exc.http_status
        code = _CAMEL_HUMP.sub("_", type(exc).__name__).lower()  # ObjectNotFound: object_not_found
        headers = {}
        if status >= 500:
            logger.error("request failed: %s", exc, exc_info=exc)
            message = "the edge could not serve this; see the server log"
            if status == 503:  # a backend is down: players and CDNs retry after a pause
                headers["Retry-After"] = str(BACKEND_RETRY_AFTER_S)
        else:
            message = str(exc)
        return json_error(status, code, message, headers), code
    logger.error("unexpected error", exc_info=exc)
    return json_error(500, "internal_error", "unexpected error; see the server log"), "internal"


_request_ids = UniqueIds()


def _request_id(header: str | None) -> str:
    if header and _CLIENT_REQUEST_ID.fullmatch(header):
        return header
    return _request_ids.next()


@web.middleware
async def edge_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    request_id = _request_id(request.headers.get("X-Request-Id"))
    request[REQUEST_ID] = request_id
    fields: dict[str, Any] = {}
    request[LOG_FIELDS] = fields
    reason = None
    if request.method == "OPTIONS":
        # CORS preflight for any path, answered here so no catch-all route turns every
        # unknown GET into a 405.
        response: web.StreamResponse = preflight_response()
        route = PREFLIGHT_ROUTE
    else:
        try:
            response = await handler(request)
        except Exception as exc:
            response, reason = error_response(exc)
        route = request.match_info.route.name or UNMATCHED_ROUTE
        if route in CMCD_ROUTES:
            # After the handler: its verified token named the session (or nobody).
            request.app[CAPTURE].observe_cmcd(
                request, route, fields.get("session_id"), response.status
            )
    response.headers.update(CORS_HEADERS)
    response.headers["X-Request-Id"] = request_id
    elapsed = time.perf_counter() - started

    app = request.app
    sent = 0
    if request.method != "HEAD" and isinstance(response, web.Response):
        sent = response.content_length or 0
    app[METRICS].observe_request(route, response.status, elapsed, sent)
    if reason is not None and 400 <= response.status < 500:
        app[METRICS].refusals.labels(reason).inc()
    access_log = app[ACCESS_LOG]
    if access_log.enabled:
        fields.update(
            request_id=request_id,
            method=request.method,
            route=route,
            status=response.status,
            ms=round(elapsed * 1000, 3),
            bytes=sent,
            remote=request.remote,
        )
        if reason is not None:
            fields["reason"] = reason
        access_log.write(fields)
    return response
