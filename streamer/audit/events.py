"""Builders of the audited events: one call per action, so a caller records in one line.

    request.app[AUDIT].record(licence_granted(user_id=..., licence_id=..., track_id=...,
                                              key_ids=..., expires_at=..., at_s=now))
                                                   # in an edge handler (cdn_edge.state.AUDIT)
    recorder.record([licence_revoked(actor=..., licence_id=..., reason=..., at_s=now)])
                                                   # elsewhere: durable when it returns

Times are unix seconds (floats) as the callers' clocks give them; no builder reads a clock.
Details never hold a secret or key bytes: key *ids* only.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from streamer.audit.model import AuditAction, AuditEvent

# Key ids listed in an entry; beyond this (a four-hour track rotating keys every ten segments
# has hundreds) the entry holds their count and the SHA-256 of the sorted, newline-joined ids,
# which the track record reproduces.
MAX_LISTED_KEY_IDS = 64


def new_event(
    action: AuditAction, actor: str, subject: str, at_s: float, **details: Any
) -> AuditEvent:
    """An event with a fresh random id."""
    return AuditEvent(
        event_id=secrets.token_hex(16),
        at_us=round(at_s * 1_000_000),
        action=action,
        actor=actor,
        subject=subject,
        details=details,
    )


def key_granted(
    *,
    user_id: str,
    session_id: str,
    track_id: str,
    version: str,
    tier: str,
    key_ids: Iterable[str],
    variants: Iterable[str],
    expires_at: int,
    at_s: float,
) -> AuditEvent:
    """A playback session entitled to these content keys (one entry per session)."""
    return new_event(
        AuditAction.KEY_GRANTED,
        f"listener:{user_id}",
        f"session:{session_id}",
        at_s,
        track_id=track_id,
        version=version,
        tier=tier,
        variants=list(variants),
        expires_at=expires_at,
        **key_id_details(key_ids),
    )


def key_id_details(key_ids: Iterable[str]) -> dict[str, Any]:
    """The key ids as an entry's details hold them: listed, or counted and hashed."""
    ids = sorted(set(key_ids))
    if len(ids) <= MAX_LISTED_KEY_IDS:
        return {"key_ids": ids}
    digest = hashlib.sha256("\n".join(ids).encode()).hexdigest()
    return {"key_count": len(ids), "key_ids_sha256": digest}


def licence_granted(
    *,
    user_id: str,
    licence_id: str,
    track_id: str,
    key_ids: Iterable[str],
    expires_at: int,
    at_s: float,
    **details: Any,
) -> AuditEvent:
    """An offline licence issued to a listener."""
    return new_event(
        AuditAction.LICENCE_GRANTED,
        f"listener:{user_id}",
        f"licence:{licence_id}",
        at_s,
        track_id=track_id,
        expires_at=expires_at,
        **key_id_details(key_ids),
        **details,
    )


def licence_revoked(
    *, actor: str, licence_id: str, reason: str, at_s: float, **details: Any
) -> AuditEvent:
    """An offline licence withdrawn, by whom and why."""
    return new_event(
        AuditAction.LICENCE_REVOKED, actor, f"licence:{licence_id}", at_s, reason=reason, **details
    )


def kek_rotated(*, actor: str, new_kek_id: str, records: int, keys: int, at_s: float) -> AuditEvent:
    return new_event(
        AuditAction.KEK_ROTATED, actor, f"kek:{new_kek_id}", at_s, records=records, keys=keys
    )


def ingest_submitted(
    *,
    actor: str,
    job_id: str,
    track_id: str,
    filename: str,
    master_sha256: str,
    via: str,
    at_s: float,
    kind: str = "track",
) -> AuditEvent:
    """A master queued for ingest; `via` is "http" or "cli", `kind` "track" or "ad"."""
    return new_event(
        AuditAction.INGEST_SUBMITTED,
        actor,
        f"job:{job_id}",
        at_s,
        track_id=track_id,
        filename=filename,
        master_sha256=master_sha256,
        via=via,
        kind=kind,
    )


def admin_action(
    action: AuditAction, *, actor: str, subject: str, at_s: float, **details: Any
) -> AuditEvent:
    """An operator's command (`streamer plays recount`, `db migrate`, ...) and its outcome."""
    return new_event(action, actor, subject, at_s, **details)
