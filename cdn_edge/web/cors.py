"""CORS (Fetch standard, "CORS protocol"), so web players on other origins can play.

Every credential travels in an Authorization header or in a URL token, never in a cookie, so
any origin may call: "*" is safe here and lets CDNs cache one response for all origins.
"""

from __future__ import annotations

from aiohttp import web

ALLOW_ORIGIN = "*"
ALLOW_METHODS = "GET, HEAD, POST, OPTIONS"
# CMCD in header mode (CTA-5004 section 2) is four request headers hls.js adds itself.
ALLOW_HEADERS = (
    "Authorization, Content-Type, Range, If-None-Match, If-Range, X-Request-Id, "
    "CMCD-Object, CMCD-Request, CMCD-Session, CMCD-Status"
)
# Headers a player script may read: ranges and validators for segment loaders, Retry-After for
# backing off, the request id for bug reports, and the server's CMSD (CTA-5006) hints.
EXPOSE_HEADERS = (
    "Content-Length, Content-Range, ETag, Retry-After, X-Request-Id, CMSD-Static, CMSD-Dynamic"
)
PREFLIGHT_MAX_AGE_S = 86400

CORS_HEADERS = {
    "Access-Control-Allow-Origin": ALLOW_ORIGIN,
    "Access-Control-Expose-Headers": EXPOSE_HEADERS,
}


def preflight_response() -> web.Response:
    """The answer to OPTIONS on any path: what a cross-origin caller may send."""
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
        },
    )
