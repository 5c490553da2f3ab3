"""GET /v1/gate/s/{session_token}/keys/{key_id}: a content key for the nginx gate's dict.

Only the gate asks (its credential in the Streamer-Gate header; `cdn_edge.playback.gate_keys`),
once per key it lacks. 403 without the credential; 401 for a missing, forged or expired token;
404 for a key not in the session's track version; 403 with the key's tier in
Streamer-Key-Tier when the key opens renditions above the session's tier. Otherwise the 16
bytes, the key's tier and the session's and listener's key budgets. No budget is spent here.
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.errors import Forbidden
from cdn_edge.handlers.keys import KEY_HEADERS
from cdn_edge.playback.gate_keys import (
    CREDENTIAL_HEADER,
    KEY_TIER_HEADER,
    LISTENER_BUDGET_HEADER,
    SESSION_BUDGET_HEADER,
    is_gate,
    render_budget,
)
from cdn_edge.policy.key_budget import LISTENER_BUDGET
from cdn_edge.policy.names import check_name
from cdn_edge.state import CATALOG, CLOCK, GATE_CREDENTIALS, KEYS, TOKENS, log_fields
from cdn_edge.web.middleware import json_error


async def gate_key(request: web.Request) -> web.Response:
    app = request.app
    if not is_gate(request.headers.get(CREDENTIAL_HEADER, ""), app[GATE_CREDENTIALS]):
        raise Forbidden("this route answers the nginx gate only (its Streamer-Gate credential)")
    key_id = check_name("key id", request.match_info["key_id"])
    session = app[TOKENS].verify_session(request.match_info["token"], int(app[CLOCK]()))
    fields = log_fields(request)
    fields.update(
        session_id=session.session_id,
        track_id=session.track_id,
        version=session.version,
        key_id=key_id,
        session_tier=session.tier,
    )
    track = await app[CATALOG].version(session.track_id, session.version)
    wrapped, key, budget = app[KEYS].for_gate(track, key_id, session)
    fields["key_tier"] = wrapped.tier
    if key is None:
        return json_error(
            403,
            "not_entitled",
            f"key {key_id} opens {wrapped.tier} renditions; the session is {session.tier}",
            {KEY_TIER_HEADER: wrapped.tier},
        )
    headers = {
        **KEY_HEADERS,
        KEY_TIER_HEADER: wrapped.tier,
        SESSION_BUDGET_HEADER: render_budget(budget),
        LISTENER_BUDGET_HEADER: render_budget(LISTENER_BUDGET),
    }
    return web.Response(body=key, content_type="application/octet-stream", headers=headers)
