"""GET /v1/s/{session_token}/keys/{key_id}: the 16 bytes of a content key (RFC 8216 4.3.2.4).

The session token is the one in the session's playlist paths, and media playlists name keys
"../keys/{key id}", so a key has one URI in every playlist of a session and players that cache
keys by URI fetch it once (see `cdn_edge.policy.key_budget`). Refused with 401 for a missing, forged
or expired token, 404 for a key not in the session's track version, 403 when the key opens
renditions above the session's tier (an edited URL), 429 past the session's or the listener's
key budget. A download session's token (cdn_edge.playback.offline_licences) is refused with
403: downloads get their keys wrapped for the device, never in the clear. Issuance is counted,
and the request's access log line says which key went to which session (never the key bytes).
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.errors import NotEntitled
from cdn_edge.playback.offline_licences import DOWNLOAD_SESSION_PREFIX
from cdn_edge.policy.names import check_name
from cdn_edge.state import CATALOG, CLOCK, KEYS, METRICS, TOKENS, log_fields

KEY_HEADERS = {
    # The clear key must not stay in any cache, shared or private.
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
}


async def content_key(request: web.Request) -> web.Response:
    app = request.app
    key_id = check_name("key id", request.match_info["key_id"])
    session = app[TOKENS].verify_session(request.match_info["token"], int(app[CLOCK]()))
    if session.session_id.startswith(DOWNLOAD_SESSION_PREFIX):
        raise NotEntitled(
            "a download session gets its content keys wrapped for its device, in its licence"
        )
    fields = log_fields(request)
    fields.update(
        session_id=session.session_id,
        track_id=session.track_id,
        version=session.version,
        key_id=key_id,
        session_tier=session.tier,
    )
    track = await app[CATALOG].version(session.track_id, session.version)
    wrapped, key = app[KEYS].content_key(track, key_id, session)
    fields["key_tier"] = wrapped.tier
    app[METRICS].keys_issued.labels(wrapped.tier).inc()
    return web.Response(body=key, content_type="application/octet-stream", headers=KEY_HEADERS)
