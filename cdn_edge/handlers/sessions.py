"""POST /v1/sessions: a listener opens a playback session for a track.

Request (with `Authorization: Bearer <listener token>`):

    {"track_id": "...", "device": {"codecs": ["mp4a.40.2", "opus"], "max_bitrate_kbps": 160,
     "network": "wifi" | "cellular", "save_data": false}}

Response 201: session id, the absolute signed multivariant playlist URL, expiry, the loudness
gain to -14 LUFS and the start variant.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cdn_edge.errors import InvalidField, MalformedName, NotAcceptable
from cdn_edge.playback.playlist_builder import MULTIVARIANT_NAME, session_path
from cdn_edge.playback.tokens import SESSION_TTL_S, SessionClaims
from cdn_edge.policy.names import check_name
from cdn_edge.policy.negotiation import (
    DeviceCapabilities,
    choose_variants,
    offers_from_renditions,
    parse_codec,
)
from cdn_edge.state import (
    AUDIT,
    CATALOG,
    CLOCK,
    LISTENERS,
    METRICS,
    SESSIONS,
    SETTINGS,
    THROUGHPUT,
    TOKENS,
    log_fields,
)
from cdn_edge.web.request_body import read_bounded
from streamer.audit.errors import InvalidAuditEvent
from streamer.audit.events import key_granted
from streamer.catalog import Codec, RenditionRecord, TrackRecord
from streamer.sessions.port import PlaybackSession

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 16 * 1024  # a session request is a few hundred bytes
MAX_DEVICE_CODECS = 32
MAX_BITRATE_KBPS = 100_000
SESSION_ID_BYTES = 12  # 96 random bits, 16 characters of base64url


@dataclass(frozen=True)
class SessionRequest:
    track_id: str
    device: DeviceCapabilities
    device_doc: dict[str, Any]  # what the player sent, recorded with the session


def parse_session_request(doc: object) -> SessionRequest:
    """Validate the request body; InvalidField (400) names the first bad field."""
    if not isinstance(doc, dict):
        raise InvalidField("body", "expected a JSON object")
    track_id = doc.get("track_id")
    if not isinstance(track_id, str):
        raise InvalidField("track_id", "expected a string track id")
    try:
        check_name("track id", track_id)
    except MalformedName as exc:
        raise InvalidField("track_id", str(exc)) from exc
    device = doc.get("device")
    if not isinstance(device, dict):
        raise InvalidField("device", "expected an object with at least 'codecs'")
    codecs = device.get("codecs")
    if (
        not isinstance(codecs, list)
        or not codecs
        or len(codecs) > MAX_DEVICE_CODECS
        or not all(isinstance(c, str) and 0 < len(c) <= 64 for c in codecs)
    ):
        raise InvalidField(
            "device.codecs",
            f"expected a list of 1 to {MAX_DEVICE_CODECS} codec strings "
            '(e.g. ["mp4a.40.2", "opus", "fLaC"])',
        )
    families: set[Codec] = {f for f in map(parse_codec, codecs) if f is not None}
    max_kbps = device.get("max_bitrate_kbps")
    if max_kbps is not None and (
        isinstance(max_kbps, bool)
        or not isinstance(max_kbps, int)
        or not 1 <= max_kbps <= MAX_BITRATE_KBPS
    ):
        raise InvalidField(
            "device.max_bitrate_kbps", f"expected an integer from 1 to {MAX_BITRATE_KBPS}"
        )
    network = device.get("network")
    if network not in (None, "wifi", "cellular"):
        raise InvalidField("device.network", 'expected "wifi" or "cellular"')
    save_data = device.get("save_data", False)
    if not isinstance(save_data, bool):
        raise InvalidField("device.save_data", "expected true or false")
    capabilities = DeviceCapabilities(frozenset(families), max_kbps, network, save_data)
    return SessionRequest(track_id, capabilities, device)


async def _read_json(request: web.Request) -> object:
    body = await read_bounded(request, MAX_BODY_BYTES, "a session request is a small JSON object")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InvalidField("body", f"not JSON: {exc}") from exc
    except RecursionError as exc:  # json's C decoder recurses once per level of nesting
        raise InvalidField("body", "JSON nested too deeply for a request body") from exc


def _variant_doc(r: RenditionRecord) -> dict[str, Any]:
    return {
        "rendition": r.name,
        "codec": r.codec,
        "codecs": r.codecs,
        "bitrate_kbps": r.bitrate_kbps,
        "bandwidth": r.bandwidth,
    }


def _iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


def _audit_key_grant(
    app: web.Application, claims: SessionClaims, record: TrackRecord, now: int
) -> None:
    """One audit entry per session: the content keys its variants may fetch. Queued: the
    response never waits for it, and an event that cannot be built costs a log line only."""
    key_ids = {
        segment.key_id
        for rendition in record.renditions
        if rendition.name in claims.variants
        for segment in rendition.segments
    }
    try:
        event = key_granted(
            user_id=claims.user_id,
            session_id=claims.session_id,
            track_id=claims.track_id,
            version=claims.version,
            tier=claims.tier,
            key_ids=key_ids,
            variants=claims.variants,
            expires_at=claims.expires_at,
            at_s=app[CLOCK](),
        )
    except InvalidAuditEvent as exc:
        logger.error("key grant of session %s not audited: %s", claims.session_id, exc)
        return
    app[AUDIT].record(event)


async def create_session(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    req = parse_session_request(await _read_json(request))
    track = await app[CATALOG].current(req.track_id)
    record = track.record
    now = int(app[CLOCK]())
    # The start bitrate follows what this listener's connection recently achieved.
    measured_kbps = app[THROUGHPUT].get(listener.user_id, now)
    offers = offers_from_renditions(record.renditions)
    variants = choose_variants(listener.tier, req.device, offers, measured_kbps)
    if not variants:
        raise NotAcceptable(
            f"track {record.track_id} has no rendition a {listener.tier} listener "
            f"with codecs {sorted(req.device.codecs)} can play"
        )
    expires_at = now + SESSION_TTL_S + math.ceil(record.duration_s)
    claims = SessionClaims(
        session_id=secrets.token_urlsafe(SESSION_ID_BYTES),
        track_id=record.track_id,
        version=record.version,
        user_id=listener.user_id,
        tier=listener.tier,
        variants=variants,
        expires_at=expires_at,
        region=listener.region,
    )
    token = app[TOKENS].sign_session(claims)
    base = app[SETTINGS].base_url
    app[SESSIONS].record(
        PlaybackSession(
            session_id=claims.session_id,
            user_id=listener.user_id,
            tier=listener.tier,
            region=listener.region,
            track_id=record.track_id,
            version=record.version,
            device=req.device_doc,
            variants=variants,
            created_at=now,
            expires_at=expires_at,
        )
    )
    _audit_key_grant(app, claims, record, now)
    app[METRICS].sessions_created.labels(listener.tier).inc()
    log_fields(request).update(session_id=claims.session_id, track_id=record.track_id)
    loudness = record.loudness
    doc = {
        "session_id": claims.session_id,
        "playlist_url": f"{base}{session_path(token)}/{MULTIVARIANT_NAME}.m3u8",
        "expires_at": _iso(expires_at),
        "expires_in_s": expires_at - now,
        "track": {
            "track_id": record.track_id,
            "version": record.version,
            "duration_s": record.duration_s,
        },
        "loudness": {
            "gain_db": loudness.playback_gain_db,
            "gain_linear": round(10 ** (loudness.playback_gain_db / 20), 6),
            "target_lufs": loudness.target_lufs,
            "integrated_lufs": loudness.integrated_lufs,
            "true_peak_dbtp": loudness.true_peak_dbtp,
        },
        "start_variant": _variant_doc(track.renditions[variants[0]]),
        "variants": list(variants),
    }
    return web.json_response(doc, status=201, headers={"Cache-Control": "no-store"})
