"""GET /v1/keys/{key_id}?t=<key token>: the 16 bytes of a content key (RFC 8216 4.3.2.4).

Refused with 401 for a missing, forged or expired token, 403 when the token was issued for
another key (an edited URL) or the key opens renditions above the session's tier, 429 when
the session asks too fast. Issuance is counted, and the request's access log line says which
key went to which session (never the key bytes).
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.errors import Unauthorized
from cdn_edge.names import check_name
from cdn_edge.state import CATALOG, CLOCK, KEYS, METRICS, TOKENS, log_fields

KEY_HEADERS = {
    # The clear key must not stay in any cache, shared or private.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


async def content_key(request: web.Request) -> web.Response:
    app = request.app
    key_id = check_name("key id", request.match_info["key_id"])
    token = request.query.get("t")
    if not token:
        raise Unauthorized("the key URL needs its token (?t=...) from the media playlist")
    now = int(app[CLOCK]())
    claims = app[TOKENS].verify_key(token, key_id, now)
    fields = log_fields(request)
    fields.update(
        session_id=claims.session_id,
        track_id=claims.track_id,
        version=claims.version,
        key_id=key_id,
        session_tier=claims.tier,
    )
    track = await app[CATALOG].version(claims.track_id, claims.version)
    wrapped, key = app[KEYS].content_key(track, key_id, claims.tier, claims.session_id)
    fields["key_tier"] = wrapped.tier
    app[METRICS].keys_issued.labels(wrapped.tier).inc()
    return web.Response(body=key, content_type="application/octet-stream", headers=KEY_HEADERS)
