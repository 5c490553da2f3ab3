"""The attack table for one front, the controls that prove the detector sees material, and
the genuine bearer tokens the table starts from."""

from __future__ import annotations

import time

from tests.security.attacks_entitlement import (
    cross_session,
    cross_tier,
    cross_track,
    expired_and_replayed,
)
from tests.security.attacks_requests import methods, oversized, traversal
from tests.security.attacks_tokens import (
    forged_listener_tokens,
    forged_session_tokens,
    other_audiences,
)
from tests.security.attempts import Attempt, Context, fetch
from tests.security.world import (
    World,
    issue_analytics_token,
    issue_ingest_token,
    issue_listener_token,
)

CATEGORIES = (
    cross_tier,
    cross_track,
    cross_session,
    expired_and_replayed,
    forged_session_tokens,
    forged_listener_tokens,
    other_audiences,
    traversal,
    oversized,
    methods,
)


def build_attempts(ctx: Context) -> list[Attempt]:
    return [attempt for category in CATEGORIES for attempt in category(ctx)]


def controls(ctx: Context) -> list[tuple[Attempt, str]]:
    """Entitled fetches, each with the material it must carry: keys, init sections, segments
    and (by the key URIs they name) media playlists."""
    out: list[tuple[Attempt, str]] = []
    for name in ("free-A", "premium-A", "free-B", "premium-B"):
        session = ctx.sessions[name]
        who = session.principal
        letter = who.track or ""
        track = ctx.track(letter)
        base = f"/v1/s/{session.token}"
        for kid, tier in track.keys.items():
            item = f"{letter}:key:{kid}:{tier}"
            if who.may_have(item):
                out.append((fetch("control", f"{name} key {kid}", f"{base}/keys/{kid}", who), item))
        for rendition in who.variants:
            for file in ("init.mp4", track.segment_names(rendition)[-1]):
                target = f"{base}/{rendition}/{file}"
                item = f"{letter}:obj:{rendition}/{file}"
                out.append((fetch("control", f"{name} {rendition}/{file}", target, who), item))
            tier = track.renditions[rendition]
            kid = next(k for k, t in track.keys.items() if t == tier)
            target = f"{base}/{rendition}/playlist.m3u8"
            attempt = fetch("control", f"{name} {rendition} playlist", target, who)
            out.append((attempt, f"{letter}:key:{kid}:{tier}"))
    return out


def genuine_bearers(world: World) -> dict[str, str]:
    """A genuine token of every JWT kind, as the account service issues them."""
    key = world.secrets.platform_key
    now = time.time()
    return {
        "listener-free": issue_listener_token(key, "bearer-free", "free", "SE", 3600, now),
        "listener-premium": issue_listener_token(key, "bearer-prem", "premium", "SE", 3600, now),
        "ingest": issue_ingest_token(key, "label-a", 3600, now),
        "analytics": issue_analytics_token(key, "label-a", 3600, now),
        "analytics-all": issue_analytics_token(key, "royalties", 3600, now, all_tracks=True),
    }
