"""Genuine tokens stretched past what they grant: other tiers, tracks and sessions, and
tokens used after they expired."""

from __future__ import annotations

import time
from collections.abc import Iterator

from tests.security import forgery
from tests.security.attempts import (
    JSON,
    PLAYS_QUERY,
    Attempt,
    Context,
    bearer,
    event_body,
    fetch,
    media_targets,
    refused,
    session_body,
)
from tests.security.world import issue_analytics_token, issue_ingest_token, issue_listener_token

VARIATIONS = (
    ("plain", ()),
    ("range", (("Range", "bytes=0-"),)),
    ("gzip", (("Accept-Encoding", "gzip"),)),
    ("cmcd", (("CMCD-Object", "br=3000,ot=a"),)),
)


def cross_tier(ctx: Context) -> Iterator[Attempt]:
    """Free sessions edit their URLs to premium renditions and keys, and to renditions their
    device was not offered."""
    for name in ("free-A", "free-B", "free-A-aac"):
        session = ctx.sessions[name]
        track = ctx.track(session.principal.track or "")
        wanted = [r for r in track.renditions if r not in session.principal.variants]
        premium_keys = [k for k, tier in track.keys.items() if tier == "premium"]
        for target in media_targets(session.token, track, wanted, premium_keys):
            where = f"{name} {target[-36:]}"
            for label, headers in VARIATIONS:
                yield fetch("cross-tier", f"{where} {label}", target, session.principal, headers)
            query = f"{target}?tier=premium&variant=flac&CMCD=br%3D3000"
            yield fetch("cross-tier", f"{where} query", query, session.principal)


def cross_track(ctx: Context) -> Iterator[Attempt]:
    """A session's token with another track's key ids, its URLs climbing to the other
    track's objects, its claims edited to the other track, and hints in queries and headers."""
    for name, other in (("free-A", "B"), ("premium-A", "B"), ("free-B", "A"), ("premium-B", "A")):
        session = ctx.sessions[name]
        who = session.principal
        track = ctx.track(other)
        for kid in track.keys:
            yield fetch(
                "cross-track", f"{name} key {kid}", f"/v1/s/{session.token}/keys/{kid}", who
            )
        for path in (
            f"tracks/{track.track_id}/{track.version}/aac_96/seg_00000.m4s",
            f"{track.track_id}/{track.version}/aac_96/seg_00000.m4s",
            f"{track.version}/aac_96/seg_00000.m4s",
        ):
            for up in ("../" * 4, "..%2F" * 4, "%2e%2e/" * 4, "..%252F" * 4):
                target = f"/v1/s/{session.token}/aac_96/{up}{path}"
                yield fetch("cross-track", f"{name} climb {up[:6]} {path[:30]}", target, who)
        own_kid = next(iter(ctx.track(who.track or "").keys))
        for query in (
            f"track={track.track_id}&version={track.version}",
            f"trk={track.track_id}&ver={track.version}",
            f"track_id={track.track_id}",
        ):
            for target in (
                f"/v1/s/{session.token}/keys/{own_kid}?{query}",
                f"/v1/s/{session.token}/aac_96/seg_00000.m4s?{query}",
            ):
                yield fetch("cross-track", f"{name} query {query[:20]}", target, who)
        elsewhere = f"/v1/s/{ctx.sessions['premium-' + other].token}/flac/seg_00000.m4s"
        for header, value in (
            ("X-Track-Id", track.track_id),
            ("X-Version", track.version),
            ("X-Original-URL", elsewhere),
            ("X-Rewrite-URL", elsewhere),
        ):
            target = f"/v1/s/{session.token}/aac_96/seg_00000.m4s"
            yield fetch("cross-track", f"{name} header {header}", target, who, ((header, value),))
        # The session's own token, its claims edited to the other track (signature kept).
        edited = forgery.with_claims(session.token, trk=track.track_id, ver=track.version)
        for target in media_targets(edited, track, ["aac_96"], list(track.keys)):
            yield fetch("cross-track", f"{name} edited trk {target[-30:]}", target, who)


def cross_session(ctx: Context) -> Iterator[Attempt]:
    """One session's token on another session's telemetry, written and read."""
    names = ("free-A", "premium-A", "free-B", "premium-B")
    for thief in names:
        token = ctx.sessions[thief].token
        for victim in names:
            if thief == victim:
                continue
            sid = ctx.sessions[victim].session_id
            events, qoe = f"/v1/sessions/{sid}/events", f"/v1/sessions/{sid}/qoe"
            for method, target, headers, body in (
                ("POST", events, bearer(token) + JSON, event_body()),
                ("POST", f"{events}?t={token}", JSON, event_body()),
                ("GET", qoe, bearer(token), None),
                ("GET", f"{qoe}?t={token}", (), None),
                ("GET", f"{qoe}?t={token}&session_id={sid}", (), None),
            ):
                name = f"{thief} -> {victim} {method} {target[-8:]}"
                yield refused("cross-session", name, method, target, headers, body)


def expired_and_replayed(ctx: Context) -> Iterator[Attempt]:
    """Genuine tokens used after they expired: session tokens on media, listener tokens on
    new sessions, ingest and analytics tokens on their own endpoints."""
    a = ctx.track("A")
    for name in ("expired-free-A", "expired-premium-A"):
        token = ctx.sessions[name].token
        targets = media_targets(token, a, list(a.renditions), list(a.keys))
        targets += [f"/v1/s/{token}/main.m3u8", f"/v1/steer/{token}"]
        for target in targets:
            yield fetch("expired", f"{name} {target[-40:]}", target)
        extended = forgery.with_claims(token, exp=int(time.time()) + 3600)
        for target in media_targets(extended, a, ["flac"], list(a.keys)):
            yield fetch("expired", f"{name} exp edited {target[-40:]}", target)
    key = ctx.world.secrets.platform_key
    now = time.time()
    for label, ttl, issued in (
        ("expired an hour ago", 3600, now - 7200),
        ("expired 31 s ago (past the skew)", 60, now - 91),
        ("expired a year ago", 3600, now - 366 * 86400),
    ):
        for tier in ("free", "premium"):
            token = issue_listener_token(key, f"replay-{tier}", tier, "SE", ttl, issued)
            yield refused(
                "expired",
                f"listener {tier} {label}",
                "POST",
                "/v1/sessions",
                bearer(token) + JSON,
                session_body(a.track_id),
            )
            yield refused(
                "expired", f"listener {tier} {label}: tracks", "GET", "/v1/tracks", bearer(token)
            )
        ingest = bearer(issue_ingest_token(key, "label-a", ttl, issued))
        body = b"RIFF" + b"\0" * 64
        yield refused(
            "expired", f"ingest {label}", "POST", "/v1/ingest?filename=x.wav", ingest, body
        )
        yield refused(
            "expired", f"ingest status {label}", "GET", f"/v1/ingest/{ctx.job_id}", ingest
        )
        analytics = issue_analytics_token(key, "label-a", ttl, issued, all_tracks=True)
        plays = f"/v1/tracks/{a.track_id}/plays?{PLAYS_QUERY}"
        yield refused("expired", f"analytics {label}", "GET", plays, bearer(analytics))
    early = forgery.jwt_hmac(
        {
            "sub": "early",
            "tier": "premium",
            "region": "SE",
            "aud": "streamer-edge",
            "nbf": int(now) + 3600,
            "exp": int(now) + 7200,
        },
        key,
    )
    yield refused(
        "expired",
        "listener not valid yet (nbf)",
        "POST",
        "/v1/sessions",
        bearer(early) + JSON,
        session_body(a.track_id),
    )
