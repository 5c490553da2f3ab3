"""POST /v1/sessions/{session_id}/events and GET /v1/sessions/{session_id}/qoe.

Authorised by the session's own token (the one in its playlist URL), sent as
`Authorization: Bearer <token>` or as `?t=<token>` (navigator.sendBeacon cannot set headers).
A token of another session is refused with 403; a missing, forged or expired one with 401.
The token keeps authorising its session's telemetry for `OFFLINE_WINDOW_S` after it expires,
so plays made offline can be reported when the device is back online.

    {"events": [
      {"event_id": "0b5c…", "type": "heartbeat", "ts_ms": 1700000012345, "position_s": 12.5},
      {"event_id": "0b5d…", "type": "bitrate_switch", "ts_ms": …, "position_s": 14.0,
       "bitrate_kbps": 160, "rendition": "aac_160", "pathway": "cdn-a"},
      {"event_id": "0b5e…", "type": "seek", "ts_ms": …, "position_s": 90.0, "from_s": 15.2},
      {"event_id": "…", "type": "heartbeat", "ts_ms": <original time>, "position_s": 40,
       "offline": true}
    ]}

Every event: event_id (unique in the session; a retry repeats it), type, ts_ms (the player's
clock; for offline events the original time), position_s, and optionally seq, offline,
pathway. seq numbers the session's events 0, 1, 2, ... in the order they happened: it orders
events within one millisecond, and an edge holding every number up to the latest decides the
session's play and QoE without reading its events back (cdn_edge.telemetry.sink).

Per type: play takes bitrate_kbps, rendition, startup_ms; bitrate_switch needs bitrate_kbps
and takes rendition; seek needs from_s; error needs code and takes message and fatal.

202 {"accepted": n, "refused": [{"index": i, "event_id": ..., "reason": ...}]} once the
accepted events are written (to the store, or the edge's spool on disk); 503 with Retry-After
if they are not within 8 s (they stay queued; sending them again is harmless). Offline events
older than 30 days are refused one by one (the player should drop them). A malformed event
fails the batch with 400 naming it ("events[3].position_s: must be a number >= 0"); a body
over 64 KiB or 500 events is 413; a full telemetry queue, or a session posting more than its
budgets (cdn_edge.policy.event_budget: 500 at once, then 2 a second; 5,000 in all, refilled
over 30 days), is 429 with Retry-After: the player keeps the events and sends them again.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from aiohttp import web

from cdn_edge.errors import (
    InvalidField,
    PayloadTooLarge,
    RateLimited,
    TokenMismatch,
    Unauthorized,
    Unavailable,
)
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.policy.event_budget import (
    EVENT_BURST,
    EVENT_RATE_PER_S,
    MAX_EVENTS_PER_REQUEST,
    SESSION_EVENT_CAP,
    EventRefusal,
)
from cdn_edge.policy.names import check_name
from cdn_edge.policy.rate_limit import retry_after_header
from cdn_edge.state import (
    BLOCKING,
    CLOCK,
    EVENT_BUDGETS,
    METRICS,
    TELEMETRY,
    TELEMETRY_STORE,
    TOKENS,
    log_fields,
)
from cdn_edge.web.request_body import read_bounded
from streamer.plays import OFFLINE_WINDOW_S, offline_refusal
from streamer.qoe import session_qoe
from streamer.telemetry.model import (
    EVENT_TYPES,
    MAX_BITRATE_KBPS,
    MAX_TEXT_CHARS,
    PlayerEvent,
    is_text,
)

MAX_BODY_BYTES = 64 * 1024
MAX_EVENTS = MAX_EVENTS_PER_REQUEST
MAX_STARTUP_MS = 10 * 60 * 1000  # ten minutes: anything longer is not a startup
MAX_TS_MS = 2**53 - 1  # what a JavaScript number holds exactly
_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")

_COMMON = frozenset({"event_id", "type", "ts_ms", "position_s", "seq", "offline", "pathway"})
_BY_TYPE: dict[str, frozenset[str]] = {
    "play": frozenset({"bitrate_kbps", "rendition", "startup_ms"}),
    "bitrate_switch": frozenset({"bitrate_kbps", "rendition"}),
    "seek": frozenset({"from_s"}),
    "error": frozenset({"code", "message", "fatal"}),
}


# Field readers: each returns the value or raises InvalidField naming `field`.


def _identifier(field: str, value: object) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InvalidField(field, "must be 1 to 128 of A-Z a-z 0-9 _ . : -")
    return value


def _whole(field: str, value: object, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidField(field, f"must be a whole number from {low} to {high}")
    return value


def _seconds(field: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidField(field, "must be a number >= 0")
    try:
        seconds = float(value)
    except OverflowError:  # a JSON integer has no size limit; 10**400 is no float
        raise InvalidField(field, "must be a number >= 0 within float range") from None
    if not math.isfinite(seconds) or seconds < 0:
        raise InvalidField(field, "must be a number >= 0")
    return seconds


def _flag(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidField(field, "must be true or false")
    return value


def parse_event(doc: object, index: int, claims: SessionClaims, received_ms: int) -> PlayerEvent:
    """One event of the body; InvalidField names it as events[index].field."""
    where = f"events[{index}]"
    if not isinstance(doc, dict):
        raise InvalidField(where, "must be an object")
    kind = doc.get("type")
    if kind not in EVENT_TYPES:
        raise InvalidField(f"{where}.type", f"must be one of {', '.join(EVENT_TYPES)}")
    allowed = _COMMON | _BY_TYPE.get(kind, frozenset())
    for name in doc:
        if name not in allowed:
            raise InvalidField(f"{where}.{str(name)[:40]}", f"is not a field of a {kind} event")
    for name in ("event_id", "ts_ms", "position_s"):
        if name not in doc:
            raise InvalidField(f"{where}.{name}", "is required")
    need = {"bitrate_switch": "bitrate_kbps", "seek": "from_s", "error": "code"}.get(kind)
    if need is not None and need not in doc:
        raise InvalidField(f"{where}.{need}", f"is required in a {kind} event")

    def opt(name: str, read: Any, *args: Any) -> Any:
        return read(f"{where}.{name}", doc[name], *args) if name in doc else None

    message = doc.get("message", "")
    if not isinstance(message, str) or len(message) > MAX_TEXT_CHARS or not is_text(message):
        raise InvalidField(
            f"{where}.message", f"must be text (no lone surrogates) of at most {MAX_TEXT_CHARS}"
        )
    fields = dict(
        session_id=claims.session_id,
        event_id=_identifier(f"{where}.event_id", doc["event_id"]),
        type=kind,
        track_id=claims.track_id,
        client_ms=_whole(f"{where}.ts_ms", doc["ts_ms"], 0, MAX_TS_MS),
        received_ms=received_ms,
        position_s=_seconds(f"{where}.position_s", doc["position_s"]),
        seq=opt("seq", _whole, 0, MAX_TS_MS) or 0,
        offline=bool(opt("offline", _flag)),
        pathway=opt("pathway", _identifier) or "",
        bitrate_kbps=opt("bitrate_kbps", _whole, 1, MAX_BITRATE_KBPS),
        rendition=opt("rendition", _identifier) or "",
        from_s=opt("from_s", _seconds),
        startup_ms=opt("startup_ms", _whole, 0, MAX_STARTUP_MS),
        error_code=opt("code", _identifier) or "",
        error_message=message,
        fatal=bool(opt("fatal", _flag)),
    )
    try:
        return PlayerEvent(**fields)
    except ValueError as exc:  # the model's own checks: a backstop behind the readers above
        raise InvalidField(where, str(exc)) from exc


def parse_events(doc: object, claims: SessionClaims, received_ms: int) -> list[PlayerEvent]:
    if not isinstance(doc, dict) or not isinstance(doc.get("events"), list):
        raise InvalidField("events", 'expected a body {"events": [...]}')
    items = doc["events"]
    if len(items) > MAX_EVENTS:
        raise PayloadTooLarge(f"{len(items)} events in one request; send at most {MAX_EVENTS}")
    return [parse_event(item, i, claims, received_ms) for i, item in enumerate(items)]


def _token(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("the Authorization header must be 'Bearer <session token>'")
        return token.strip()
    query_token = request.query.get("t")
    if not query_token:
        raise Unauthorized(
            "send the session token (from the playlist URL) as 'Authorization: Bearer <token>' "
            "or ?t=<token>"
        )
    return query_token


def _refusal_message(session_id: str, refusal: EventRefusal) -> str:
    if refusal.reason == "session_cap":
        return (
            f"session {session_id} has posted {SESSION_EVENT_CAP} events, more than a player "
            "sends in a session; keep these and send them again after Retry-After, or start "
            "a new session"
        )
    return (
        f"session {session_id} posts more events than a player sends (a burst of "
        f"{EVENT_BURST}, then {EVENT_RATE_PER_S:g} a second); keep these and send them "
        "again after Retry-After"
    )


def authorize(request: web.Request) -> SessionClaims:
    """The claims of the session in the path, if the request carries its token."""
    app = request.app
    session_id = check_name("session id", request.match_info["session_id"])
    # Accepted up to the offline window after expiry (see the module docstring).
    now = int(app[CLOCK]()) - OFFLINE_WINDOW_S
    claims = app[TOKENS].verify_session(_token(request), now)
    if claims.session_id != session_id:
        raise TokenMismatch("the token belongs to another session than the one in the path")
    log_fields(request).update(session_id=claims.session_id, track_id=claims.track_id)
    return claims


async def post_events(request: web.Request) -> web.Response:
    app = request.app
    claims = authorize(request)
    body = await read_bounded(request, MAX_BODY_BYTES, "send fewer events per request")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidField("body", f"not JSON: {exc}") from exc
    except RecursionError as exc:  # json's C decoder recurses once per level of nesting
        raise InvalidField("body", "JSON nested too deeply for a request body") from exc
    now_ms = int(app[CLOCK]() * 1000)
    events = parse_events(doc, claims, now_ms)
    refusal = app[EVENT_BUDGETS].take(claims.session_id, len(events)) if events else None
    if refusal is not None:
        app[METRICS].telemetry.player_events_refused.labels(refusal.reason).inc(len(events))
        raise RateLimited(
            _refusal_message(claims.session_id, refusal), retry_after_header(refusal.wait_s)
        )
    accepted: list[PlayerEvent] = []
    refused: list[dict[str, Any]] = []
    telemetry = app[METRICS].telemetry
    for index, event in enumerate(events):
        reason = offline_refusal(event.client_ms, now_ms) if event.offline else None
        if reason is None:
            accepted.append(event)
        else:
            refused.append({"index": index, "event_id": event.event_id, "reason": reason})
            telemetry.player_events_refused.labels("offline_window").inc()
    # Acknowledged only once written (to the store, or the spool on disk behind it): an edge
    # killed right after the 202 has lost nothing the player was told was taken.
    if not await app[TELEMETRY].submit_durably(accepted):
        raise Unavailable(
            f"the {len(accepted)} events were taken but are not stored yet; send them again"
            " (events are deduplicated by event_id)"
        )
    for event in accepted:
        telemetry.player_events.labels(event.type, telemetry.pathway(event.pathway or "-")).inc()
    return web.json_response(
        {"accepted": len(accepted), "refused": refused},
        status=202,
        headers={"Cache-Control": "no-store"},
    )


async def session_qoe_report(request: web.Request) -> web.Response:
    """The session's QoE and play, from what the store holds so far."""
    app = request.app
    claims = authorize(request)
    store = app[TELEMETRY_STORE]
    telemetry = await app[BLOCKING](store.session_telemetry, claims.session_id)
    qoe = session_qoe(telemetry.events)
    play = telemetry.play
    doc = {
        "session_id": claims.session_id,
        "track_id": claims.track_id,
        "events": len(telemetry.events),
        "cmcd_samples": len(telemetry.cmcd),
        "segments_delivered": len(telemetry.deliveries),
        "qoe": {
            "played_s": round(qoe.played_s, 3),
            "startup_s": qoe.startup_s,
            "stalls": qoe.stalls,
            "stalled_s": round(qoe.stalled_s, 3),
            "rebuffer_ratio": round(qoe.rebuffer_ratio, 4),
            "average_bitrate_kbps": (
                None if qoe.average_bitrate_kbps is None else round(qoe.average_bitrate_kbps, 1)
            ),
            "bitrate_switches": qoe.bitrate_switches,
            "errors": qoe.errors,
            "fatal_errors": qoe.fatal_errors,
            "ended": qoe.ended,
            "pathway": qoe.pathway,
        },
        "play": None
        if play is None
        else {"day": play.day.isoformat(), "played_ms": play.played_ms, "offline": play.offline},
    }
    return web.json_response(doc, headers={"Cache-Control": "no-store"})
