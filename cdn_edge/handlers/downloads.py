"""Offline downloads for premium listeners: devices, licences, and plays made offline.

All with `Authorization: Bearer <listener token>`, except the admin revocation:

    POST   /v1/devices                       register {"public_key": <X25519, base64url>,
                                             "name": "..."} -> 201; 409 device_limit_reached
                                             past 5; 403 premium_required for free listeners
    GET    /v1/devices                       the listener's devices
    DELETE /v1/devices/{device_id}           remove it; its licences are revoked first
    POST   /v1/devices/{device_id}/licences  {"track_id": "...", "codecs": [...]} -> 201 a
                                             signed licence (30 days), the content keys wrapped
                                             for the device, and media playlist URLs
    GET    /v1/devices/{device_id}/licences  the device's licences and their state
    POST   /v1/devices/{device_id}/licences/{licence_id}/renew
                                             {"licence": {...}, "signature": "..."}: the device
                                             online again; 200 with the licence renewed (or as
                                             it was, while more than 29 days remain)
    DELETE /v1/devices/{device_id}/licences/{licence_id}   revoke (the listener)
    DELETE /v1/admin/licences/{licence_id}   revoke (admin token, scope "licences")
    POST   /v1/devices/{device_id}/plays     {"plays": [{"play_id", "licence_id", "events":
                                             [...as /v1/sessions/{id}/events...]}]}: plays made
                                             offline; 200 once counted (or refused one by one),
                                             503 if the store is down (send them all again:
                                             each play counts once)
    GET    /v1/downloads/licence-key         the Ed25519 key licences are signed with

Refusals are 403 with a reason code in "error": premium_required, device_unknown,
licence_revoked, licence_expired, licence_not_yours; an edited licence is
licence_signature_invalid. See cdn_edge.playback.offline_licences for the cryptography.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from cdn_edge.errors import (
    DownloadRefused,
    InvalidField,
    MalformedName,
    NotAcceptable,
    NotFound,
    PayloadTooLarge,
    Unavailable,
)
from cdn_edge.handlers.events import parse_event
from cdn_edge.playback.offline_licences import (
    IssuedLicence,
    OfflineLicences,
    b64url,
    download_renditions,
    from_b64url,
)
from cdn_edge.playback.playlist_builder import MEDIA_PLAYLIST_FILE, session_path
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.policy.event_budget import MAX_EVENTS_PER_REQUEST
from cdn_edge.policy.names import check_name
from cdn_edge.policy.negotiation import Listener, parse_codec
from cdn_edge.state import (
    ADMINS,
    BLOCKING,
    CATALOG,
    CLOCK,
    LISTENERS,
    OFFLINE,
    PLAY_LEDGER,
    SETTINGS,
    log_fields,
)
from cdn_edge.web.request_body import read_bounded
from drm import KeyLengthError, KeyUnwrapError
from drm.device_keys import check_device_public_key
from streamer.catalog import Codec
from streamer.offline.model import MAX_DEVICE_NAME_CHARS, Device, Licence
from streamer.offline.plays import decide_licensed_play, offline_play_session_id
from streamer.offline.policy import (
    DEVICE_LIMIT,
    Refusal,
    licence_refusal,
    renewal_due,
    tier_refusal,
)
from streamer.telemetry.model import PlayClaim, PlayerEvent

MAX_BODY_BYTES = 64 * 1024  # a batch of offline plays; everything else is far smaller
MAX_PLAYS = 50  # per request; a device back online sends the rest in further requests
DEVICE_ID_BYTES = 12
ALL_CODECS: frozenset[Codec] = frozenset({"aac", "opus", "flac"})
NO_STORE = {"Cache-Control": "no-store"}


def _service(request: web.Request) -> OfflineLicences:
    service = request.app[OFFLINE]
    if service is None:
        raise Unavailable("offline downloads are not configured on this edge")
    return service


def _refuse(refusal: Refusal | None) -> None:
    if refusal is not None:
        raise DownloadRefused(refusal.code, refusal.message)


async def _read_json(request: web.Request) -> dict[str, Any]:
    body = await read_bounded(request, MAX_BODY_BYTES, "send fewer plays per request")
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise InvalidField("body", f"not JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidField("body", "JSON nested too deeply for a request body") from exc
    if not isinstance(doc, dict):
        raise InvalidField("body", "expected a JSON object")
    return doc


async def _device(request: web.Request, listener: Listener) -> Device:
    """The listener's device named in the path; 403 device_unknown if it is not theirs."""
    device_id = check_name("device id", request.match_info["device_id"])
    service = _service(request)
    device = await request.app[BLOCKING](service.store.get_device, listener.user_id, device_id)
    if device is None:
        raise DownloadRefused(
            "device_unknown",
            f"device {device_id} is not registered to listener {listener.user_id}"
            " (never registered, or removed)",
        )
    log_fields(request).update(device_id=device_id)
    return device


async def _licence(request: web.Request, device: Device) -> Licence:
    licence_id = check_name("licence id", request.match_info["licence_id"])
    service = _service(request)
    licence = await request.app[BLOCKING](service.store.get_licence, licence_id)
    if licence is None:
        raise NotFound(f"no licence {licence_id}")
    if licence.device_id != device.device_id or licence.user_id != device.user_id:
        raise DownloadRefused(
            "licence_not_yours", f"licence {licence_id} belongs to another device"
        )
    log_fields(request).update(licence_id=licence_id)
    return licence


def _iso(unix_s: int) -> str:
    return datetime.fromtimestamp(unix_s, UTC).isoformat().replace("+00:00", "Z")


def _device_doc(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "name": device.name,
        "public_key": b64url(device.public_key),
        "registered_at": _iso(device.registered_at),
    }


def _licence_state(licence: Licence, now: int) -> dict[str, Any]:
    refusal = licence_refusal(licence, now)
    return {
        "licence_id": licence.licence_id,
        "track_id": licence.track_id,
        "version": licence.version,
        "renditions": list(licence.renditions),
        "granted_at": _iso(licence.granted_at),
        "expires_at": _iso(licence.expires_at),
        "revoked_at": None if licence.revoked_at is None else _iso(licence.revoked_at),
        "state": "valid" if refusal is None else refusal.code.removeprefix("licence_"),
    }


def _issued_doc(request: web.Request, issued: IssuedLicence, renewed: bool) -> dict[str, Any]:
    service = _service(request)
    doc: dict[str, Any] = {
        "licence": issued.document,
        "signature": b64url(issued.signature),
        "signing_key": b64url(service.public_key),
        "expires_at": _iso(issued.licence.expires_at),
        "renewed": renewed,
    }
    if issued.download_token is not None:
        base = request.app[SETTINGS].base_url + session_path(issued.download_token)
        doc["downloads"] = [
            {"rendition": name, "playlist_url": f"{base}/{name}/{MEDIA_PLAYLIST_FILE}"}
            for name in issued.licence.renditions
        ]
    return doc


async def register_device(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    _refuse(tier_refusal(listener.tier))
    service = _service(request)
    doc = await _read_json(request)
    key_text = doc.get("public_key")
    try:
        public_key = check_device_public_key(from_b64url(key_text))  # type: ignore[arg-type]
    except (ValueError, KeyLengthError, KeyUnwrapError) as exc:
        raise InvalidField(
            "public_key", f"expected a 32-byte X25519 public key in base64url ({exc})"
        ) from exc
    name = doc.get("name", "")
    if not isinstance(name, str) or len(name) > MAX_DEVICE_NAME_CHARS:
        raise InvalidField("name", f"expected a string of at most {MAX_DEVICE_NAME_CHARS} chars")
    device = Device(
        device_id=secrets.token_urlsafe(DEVICE_ID_BYTES),
        user_id=listener.user_id,
        public_key=public_key,
        name=name,
        registered_at=int(app[CLOCK]()),
    )
    # DeviceLimitReached (409) from the store, which enforces the limit atomically.
    await app[BLOCKING](service.store.register_device, device, DEVICE_LIMIT)
    log_fields(request).update(device_id=device.device_id)
    return web.json_response(_device_doc(device), status=201, headers=NO_STORE)


async def list_devices(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    devices = await app[BLOCKING](_service(request).store.devices_of, listener.user_id)
    doc = {"devices": [_device_doc(d) for d in devices], "limit": DEVICE_LIMIT}
    return web.json_response(doc, headers=NO_STORE)


async def remove_device(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    device = await _device(request, listener)
    service = _service(request)
    # Licences first: a failure half-way leaves the device registered, and a retry finishes.
    licences = await app[BLOCKING](service.store.licences_of, device.user_id, device.device_id)
    for licence in licences:
        if licence.revoked_at is None:
            await app[BLOCKING](service.revoke, licence.licence_id, "listener:device_removed")
    await app[BLOCKING](service.store.remove_device, device.user_id, device.device_id)
    return web.Response(status=204, headers=NO_STORE)


def _codecs(doc: dict[str, Any]) -> frozenset[Codec]:
    codecs = doc.get("codecs")
    if codecs is None:
        return ALL_CODECS
    if not isinstance(codecs, list) or not 0 < len(codecs) <= 32:
        raise InvalidField("codecs", 'expected a list of codec strings (e.g. ["mp4a.40.2"])')
    families = {parse_codec(c) for c in codecs if isinstance(c, str)}
    return frozenset(f for f in families if f is not None)


async def grant_licence(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    _refuse(tier_refusal(listener.tier))
    device = await _device(request, listener)
    doc = await _read_json(request)
    track_id = doc.get("track_id")
    if not isinstance(track_id, str):
        raise InvalidField("track_id", "expected a string track id")
    try:
        check_name("track id", track_id)
    except MalformedName as exc:
        raise InvalidField("track_id", str(exc)) from exc
    track = await app[CATALOG].current(track_id)
    renditions = download_renditions(track, _codecs(doc))
    if not renditions:
        raise NotAcceptable(
            f"track {track_id} has no premium rendition in a codec the device decodes"
        )
    issued = await app[BLOCKING](_service(request).grant, device, track, renditions)
    log_fields(request).update(licence_id=issued.licence.licence_id, track_id=track_id)
    return web.json_response(_issued_doc(request, issued, False), status=201, headers=NO_STORE)


async def list_licences(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    device = await _device(request, listener)
    service = _service(request)
    licences = await app[BLOCKING](service.store.licences_of, device.user_id, device.device_id)
    now = int(app[CLOCK]())
    doc = {"licences": [_licence_state(lic, now) for lic in licences]}
    return web.json_response(doc, headers=NO_STORE)


async def renew_licence(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    _refuse(tier_refusal(listener.tier))
    device = await _device(request, listener)
    licence = await _licence(request, device)
    service = _service(request)
    doc = await _read_json(request)
    signature = doc.get("signature")
    if not isinstance(signature, str):
        raise InvalidField("signature", "expected the licence's signature, as issued")
    try:
        presented = service.verify(doc.get("licence"), signature)
    except ValueError as exc:
        raise InvalidField("licence", str(exc)) from exc
    if (
        presented.get("licence_id") != licence.licence_id
        or presented.get("device_id") != device.device_id
    ):
        raise DownloadRefused(
            "licence_not_yours", "the licence presented is not the one in the path"
        )
    now = int(app[CLOCK]())
    _refuse(licence_refusal(licence, now))
    if not renewal_due(licence, now):
        unchanged = {"licence": presented, "signature": signature, "renewed": False}
        unchanged.update(
            signing_key=b64url(service.public_key), expires_at=_iso(licence.expires_at)
        )
        return web.json_response(unchanged, headers=NO_STORE)
    track = await app[CATALOG].version(licence.track_id, licence.version)
    issued = await app[BLOCKING](service.renew, licence, device, track)
    if issued is None:  # revoked or expired between the read and the conditional write
        latest = await app[BLOCKING](service.store.get_licence, licence.licence_id)
        _refuse(licence_refusal(latest or licence, int(app[CLOCK]())))
        raise Unavailable(f"licence {licence.licence_id} changed while renewing; try again")
    return web.json_response(_issued_doc(request, issued, True), headers=NO_STORE)


async def revoke_licence(request: web.Request) -> web.Response:
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    device = await _device(request, listener)
    licence = await _licence(request, device)
    revoked = await app[BLOCKING](_service(request).revoke, licence.licence_id, "listener")
    assert revoked is not None  # read just above; licences are never deleted
    return web.json_response(_licence_state(revoked, int(app[CLOCK]())), headers=NO_STORE)


async def admin_revoke_licence(request: web.Request) -> web.Response:
    app = request.app
    operator = app[ADMINS].verify_header(request.headers.get("Authorization"))
    licence_id = check_name("licence id", request.match_info["licence_id"])
    revoked = await app[BLOCKING](_service(request).revoke, licence_id, f"admin:{operator}")
    if revoked is None:
        raise NotFound(f"no licence {licence_id}")
    log_fields(request).update(licence_id=licence_id)
    return web.json_response(_licence_state(revoked, int(app[CLOCK]())), headers=NO_STORE)


async def licence_key(request: web.Request) -> web.Response:
    doc = {"algorithm": "Ed25519", "public_key": b64url(_service(request).public_key)}
    return web.json_response(doc, headers={"Cache-Control": "public, max-age=3600"})


def _play_events(
    item: object, index: int, licence: Licence, play_session: str, received_ms: int
) -> list[PlayerEvent]:
    where = f"plays[{index}].events"
    events = item.get("events") if isinstance(item, dict) else None
    if not isinstance(events, list) or not events:
        raise InvalidField(where, "expected a non-empty list of the play's events")
    claims = SessionClaims(
        session_id=play_session,
        track_id=licence.track_id,
        version=licence.version,
        user_id=licence.user_id,
        tier="premium",
        variants=licence.renditions,
        expires_at=licence.expires_at,
    )
    parsed = []
    for n, event in enumerate(events):
        try:
            parsed.append(parse_event(event, n, claims, received_ms))
        except InvalidField as exc:
            raise InvalidField(f"plays[{index}].{exc.field}", str(exc).split(": ", 1)[-1]) from exc
    return parsed


async def report_plays(request: web.Request) -> web.Response:
    """Plays made offline: each counted once, on its own day, if its licence held then."""
    app = request.app
    listener = app[LISTENERS].verify_header(request.headers.get("Authorization"))
    # No tier check: plays made while premium count even if the subscription lapsed since. Nor
    # a device check: a device removed since still reports the plays it made before (its
    # licences were revoked at removal, so later plays do not count).
    device_id = check_name("device id", request.match_info["device_id"])
    log_fields(request).update(device_id=device_id)
    service = _service(request)
    doc = await _read_json(request)
    plays = doc.get("plays")
    if not isinstance(plays, list):
        raise InvalidField("plays", 'expected a body {"plays": [...]}')
    if len(plays) > MAX_PLAYS:
        raise PayloadTooLarge(f"{len(plays)} plays in one request; send at most {MAX_PLAYS}")
    events_sent = sum(
        len(p["events"]) for p in plays if isinstance(p, dict) and isinstance(p.get("events"), list)
    )
    if events_sent > MAX_EVENTS_PER_REQUEST:
        raise PayloadTooLarge(f"send at most {MAX_EVENTS_PER_REQUEST} events per request")
    now_ms = int(app[CLOCK]() * 1000)
    licences: dict[str, Licence | None] = {}
    claims: list[PlayClaim] = []
    refused: list[dict[str, Any]] = []
    for index, item in enumerate(plays):
        if not isinstance(item, dict):
            raise InvalidField(f"plays[{index}]", "must be an object")
        play_id, licence_id = item.get("play_id"), item.get("licence_id")
        for field, value in (("play_id", play_id), ("licence_id", licence_id)):
            if not isinstance(value, str) or not value or len(value) > 64:
                raise InvalidField(f"plays[{index}].{field}", "must be 1 to 64 of A-Z a-z 0-9 _ -")
        assert isinstance(play_id, str) and isinstance(licence_id, str)
        try:
            check_name("play id", play_id)
            check_name("licence id", licence_id)
        except MalformedName as exc:
            raise InvalidField(f"plays[{index}]", str(exc)) from exc
        if licence_id not in licences:
            licences[licence_id] = await app[BLOCKING](service.store.get_licence, licence_id)
        licence = licences[licence_id]
        if licence is None or (licence.user_id, licence.device_id) != (
            listener.user_id,
            device_id,
        ):
            refused.append(
                {
                    "index": index,
                    "play_id": play_id,
                    "reason": "licence_not_yours",
                    "message": f"licence {licence_id} is not a licence of this device",
                }
            )
            continue
        session = offline_play_session_id(licence_id, play_id)
        events = _play_events(item, index, licence, session, now_ms)
        decision = decide_licensed_play(licence, play_id, events, now_ms)
        if isinstance(decision, Refusal):
            refused.append(
                {
                    "index": index,
                    "play_id": play_id,
                    "reason": decision.code,
                    "message": decision.message,
                }
            )
        elif all(c.session_id != decision.session_id for c in claims):  # a play sent twice
            claims.append(decision)
    # StorageError (503 with Retry-After) before anything is acknowledged: the device keeps
    # its plays and sends them again; a play already counted is not counted twice.
    counted = await app[BLOCKING](app[PLAY_LEDGER].claim_plays, claims) if claims else ()
    counted_ids = {c.session_id for c in counted}
    result = {
        "counted": [
            {"play_id": c.session_id.rsplit(":", 1)[1], "day": c.day.isoformat()}
            for c in claims
            if c.session_id in counted_ids
        ],
        "already_counted": [
            c.session_id.rsplit(":", 1)[1] for c in claims if c.session_id not in counted_ids
        ],
        "refused": refused,
    }
    return web.json_response(result, headers=NO_STORE)
