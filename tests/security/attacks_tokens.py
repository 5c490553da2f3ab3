"""Tokens made without our secrets, tampered, spliced, or of another audience."""

from __future__ import annotations

import time
from collections.abc import Iterator

from tests.security import forgery
from tests.security.attempts import (
    JSON,
    PLAYS_QUERY,
    Attempt,
    Context,
    Headers,
    bearer,
    event_body,
    fetch,
    refused,
    session_body,
)

CATEGORY_SESSION = "forged session token"
CATEGORY_LISTENER = "forged listener token"
CATEGORY_AUDIENCE = "other audience"


def forged_session_tokens(ctx: Context) -> Iterator[Attempt]:
    """Session tokens signed with other secrets, tampered, spliced, or of another format, on
    every media route, steering and telemetry."""
    world = ctx.world
    a = ctx.track("A")
    free, premium = ctx.sessions["free-A"], ctx.sessions["premium-A"]
    claims = {
        **forgery.session_claims(premium.token),
        "sid": "forged-session",
        "sub": "mallory",
        "exp": int(time.time()) + 3600,
    }
    platform_key = world.secrets.platform_key
    free_variants = forgery.session_claims(free.token)["var"]
    tokens: dict[str, str] = {
        "signed with a random secret": forgery.sign_session(claims, b"r" * 32),
        "signed with the platform (JWT) key": forgery.sign_session(claims, platform_key),
        "signed with the secret's hex decoded": forgery.sign_session(
            claims, bytes.fromhex(platform_key.decode())
        ),
        "signed with the KEK": forgery.sign_session(claims, world.ring.active.secret),
        "signed with an empty key": forgery.sign_session(claims, b""),
        "signed with the derivation label": forgery.sign_session(
            claims, b"streamer-edge/playback-token/v1"
        ),
        "free token edited to premium": forgery.with_claims(
            free.token, tier="premium", var=claims["var"]
        ),
        "free token edited to add flac": forgery.with_claims(
            free.token, var=free_variants + ",flac"
        ),
        "free payload, premium signature": (
            f"{free.token.split('.')[0]}.{premium.token.split('.')[1]}"
        ),
        "listener JWT as a session token": ctx.bearer["listener-premium"],
        "ingest JWT as a session token": ctx.bearer["ingest"],
        "analytics JWT as a session token": ctx.bearer["analytics"],
        "alg none JWT as a session token": forgery.jwt_unsigned(claims),
    }
    for label, mutant in forgery.session_token_mutants(premium.token, free.token).items():
        tokens[f"premium token, {label}"] = mutant
    premium_kid = next(k for k, t in a.keys.items() if t == "premium")
    paths = (
        f"keys/{premium_kid}",
        "flac/init.mp4",
        "flac/seg_00000.m4s",
        "flac/playlist.m3u8",
        "aac_256/seg_00001.m4s",
        "main.m3u8",
    )
    sid = premium.session_id
    for label, token in tokens.items():
        for path in paths:
            yield fetch(CATEGORY_SESSION, f"{label}: {path}", f"/v1/s/{token}/{path}")
        yield refused(CATEGORY_SESSION, f"{label}: steering", "GET", f"/v1/steer/{token}")
        yield refused(
            CATEGORY_SESSION,
            f"{label}: events",
            "POST",
            f"/v1/sessions/{sid}/events",
            bearer(token) + JSON,
            event_body(),
        )
        yield refused(CATEGORY_SESSION, f"{label}: qoe", "GET", f"/v1/sessions/{sid}/qoe?t={token}")


def forged_listener_tokens(ctx: Context) -> Iterator[Attempt]:
    """Listener bearer tokens made without the platform key (alg none, algorithm confusion,
    other keys, tampered and spliced genuine tokens) and sent the wrong way. A 2xx opens a
    session or lists the catalogue."""
    key = ctx.world.secrets.platform_key
    now = int(time.time())
    claims = {
        "sub": "mallory",
        "tier": "premium",
        "region": "SE",
        "aud": "streamer-edge",
        "iat": now,
        "exp": now + 3600,
    }
    genuine = ctx.bearer["listener-free"]
    body = session_body(ctx.track("A").track_id)
    for label, token in forgery.jwt_forgeries(claims, genuine, key).items():
        yield refused(CATEGORY_LISTENER, label, "POST", "/v1/sessions", bearer(token) + JSON, body)
        yield refused(CATEGORY_LISTENER, f"{label}: tracks", "GET", "/v1/tracks", bearer(token))
    sent: tuple[tuple[str, str, Headers], ...] = (
        ("no Authorization", "", ()),
        ("Basic scheme", "", (("Authorization", f"Basic {genuine}"),)),
        ("token without a scheme", "", (("Authorization", genuine),)),
        ("empty bearer", "", (("Authorization", "Bearer "),)),
        ("tampered free token", "", bearer(forgery.jwt_with_payload(genuine, tier="premium"))),
        ("token in the query instead", f"?token={genuine}&access_token={genuine}", ()),
        ("session token as the bearer", "", bearer(ctx.sessions["premium-A"].token)),
    )
    for label, query, headers in sent:
        yield refused(
            CATEGORY_LISTENER, label, "POST", f"/v1/sessions{query}", headers + JSON, body
        )


def other_audiences(ctx: Context) -> Iterator[Attempt]:
    """Genuine tokens of one audience on another's endpoints (listener, session, ingest and
    analytics), forgeries on ingest and analytics, and right-key tokens of the wrong scope."""
    a, b = ctx.track("A"), ctx.track("B")
    sid = ctx.sessions["premium-A"].session_id
    upload = b"RIFF" + b"\0" * 64
    endpoints: dict[str, tuple[str, str, Headers, bytes | None]] = {
        "listener": ("POST", "/v1/sessions", JSON, session_body(a.track_id)),
        "track list": ("GET", "/v1/tracks", (), None),
        "ingest": ("POST", "/v1/ingest?filename=song.wav", (), upload),
        "ingest status": ("GET", f"/v1/ingest/{ctx.job_id}", (), None),
        "plays of A": ("GET", f"/v1/tracks/{a.track_id}/plays?{PLAYS_QUERY}", (), None),
        "plays of B": ("GET", f"/v1/tracks/{b.track_id}/plays?{PLAYS_QUERY}", (), None),
        "events": ("POST", f"/v1/sessions/{sid}/events", JSON, event_body()),
        "qoe": ("GET", f"/v1/sessions/{sid}/qoe", (), None),
    }
    allowed = {
        "listener-free": {"listener", "track list"},
        "listener-premium": {"listener", "track list"},
        "ingest": {"ingest", "ingest status"},
        "analytics": {"plays of A"},  # label-a's own track only
        "analytics-all": {"plays of A", "plays of B"},
        "session": {"events", "qoe"},
    }

    def on(endpoint: str, label: str, token: str) -> Attempt:
        method, target, headers, body = endpoints[endpoint]
        name = f"{label} on {endpoint}"
        return refused(CATEGORY_AUDIENCE, name, method, target, bearer(token) + headers, body)

    for kind, token in {**ctx.bearer, "session": ctx.sessions["premium-A"].token}.items():
        for endpoint in endpoints:
            if endpoint not in allowed[kind]:
                yield on(endpoint, f"{kind} token", token)
    key = ctx.world.secrets.platform_key
    now = int(time.time())
    ingest_claims = {"sub": "label-a", "aud": "streamer-ingest", "scope": "ingest"}
    analytics_claims = {"sub": "label-a", "aud": "streamer-analytics", "scope": "analytics"}
    for kind, claims, endpoints_of_kind in (
        ("ingest", ingest_claims, ("ingest", "ingest status")),
        ("analytics", {**analytics_claims, "tracks": "*"}, ("plays of A", "plays of B")),
    ):
        forged = forgery.jwt_forgeries({**claims, "exp": now + 3600}, ctx.bearer[kind], key)
        for label, token in forged.items():
            for endpoint in endpoints_of_kind:
                yield on(endpoint, f"forged {kind} ({label})", token)
    # Right key, wrong audience or scope: what another product's genuine token would be.
    for label, claims in {
        "ingest audience, analytics scope": {"aud": "streamer-ingest", "scope": "analytics"},
        "analytics audience, ingest scope": {"aud": "streamer-analytics", "scope": "ingest"},
        "edge audience, both scopes": {"aud": "streamer-edge", "scope": "ingest analytics"},
        "ingest audience, no scope": {"aud": "streamer-ingest"},
        "analytics audience, no scope": {"aud": "streamer-analytics", "tracks": "*"},
        "no audience": {"scope": "ingest analytics", "tracks": "*"},
    }.items():
        token = forgery.jwt_hmac({"sub": "label-a", "exp": now + 3600, **claims}, key)
        for endpoint in ("ingest", "ingest status", "plays of B"):
            yield on(endpoint, label, token)
