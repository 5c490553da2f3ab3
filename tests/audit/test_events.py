"""The event builders: what each action records, and the one-line licence calls."""

from __future__ import annotations

import hashlib

from streamer.audit.chain import head_of, link, verify_stream
from streamer.audit.events import (
    MAX_LISTED_KEY_IDS,
    key_granted,
    licence_granted,
    licence_revoked,
)
from streamer.audit.model import AuditAction
from tests.contract.audit_logs import KEY

T = 1_700_000_000.5


def test_licence_grant_and_revocation_are_typed_and_chain() -> None:
    granted = licence_granted(
        user_id="u1",
        licence_id="lic1",
        track_id="trk1",
        key_ids=["v1-aac_160-1", "v1-aac_160-0", "v1-aac_160-0"],
        expires_at=1_700_086_400,
        at_s=T,
        device="dev-9",
    )
    revoked = licence_revoked(actor="cli:ops@host", licence_id="lic1", reason="refund", at_s=T + 1)
    assert granted.action == AuditAction.LICENCE_GRANTED
    assert revoked.action == AuditAction.LICENCE_REVOKED
    assert (granted.action.value, revoked.action.value) == ("licence.granted", "licence.revoked")
    assert (granted.actor, granted.subject) == ("listener:u1", "licence:lic1")
    assert granted.details == {
        "track_id": "trk1",
        "expires_at": 1_700_086_400,
        "key_ids": ["v1-aac_160-0", "v1-aac_160-1"],
        "device": "dev-9",
    }
    assert revoked.subject == "licence:lic1" and revoked.details == {"reason": "refund"}
    assert granted.at_us == 1_700_000_000_500_000
    entries = link(KEY, "edge.h.w0", None, [granted, revoked])
    assert verify_stream(KEY, "edge.h.w0", entries, head_of(entries[-1])).problem is None


def test_many_key_ids_are_counted_and_hashed_not_listed() -> None:
    ids = [f"v1-aac_160-{n}" for n in range(MAX_LISTED_KEY_IDS + 1)]
    event = key_granted(
        user_id="u1",
        session_id="s1",
        track_id="trk1",
        version="v1",
        tier="premium",
        key_ids=reversed(ids),
        variants=["aac_160"],
        expires_at=1,
        at_s=T,
    )
    digest = hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()
    assert "key_ids" not in event.details
    assert event.details["key_count"] == len(ids) and event.details["key_ids_sha256"] == digest
