"""Offline download policy: device limits, licence lifetime, renewal, and when a licence held.

Pure functions over streamer.offline.model; time is passed in as int unix seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from streamer.catalog import Tier
from streamer.offline.model import Licence

DEVICE_LIMIT = 5  # devices per account, as the large services allow (Spotify: 5)
LICENCE_TTL_S = 30 * 86_400  # a download plays for 30 days offline, then the device must check in
# A device online renews when its licence has less than this left, so devices that come online
# every day do not rewrite every licence every day.
RENEW_WITHIN_S = 29 * 86_400


@dataclass(frozen=True)
class Refusal:
    """Why a download request is refused: a stable code for clients, a message for people."""

    code: str
    message: str


def tier_refusal(tier: Tier) -> Refusal | None:
    """Downloads are a premium feature."""
    if tier != "premium":
        return Refusal(
            "premium_required", f"offline downloads need a premium listener; this one is {tier}"
        )
    return None


def registration_refusal(registered: int, limit: int = DEVICE_LIMIT) -> Refusal | None:
    """Whether an account with `registered` devices may add one more."""
    if registered >= limit:
        return Refusal(
            "device_limit",
            f"the account has {registered} devices registered for downloads, the most it may"
            f" have is {limit}; remove one first",
        )
    return None


def licence_refusal(licence: Licence, now: int) -> Refusal | None:
    """Why `licence` no longer opens its download at `now`, or None while it does."""
    if licence.revoked_at is not None and licence.revoked_at <= now:
        return Refusal(
            "licence_revoked",
            f"licence {licence.licence_id} was revoked at {licence.revoked_at}"
            f" ({licence.revoked_by or 'unknown'})",
        )
    if now >= licence.expires_at:
        return Refusal(
            "licence_expired",
            f"licence {licence.licence_id} expired at {licence.expires_at},"
            f" {now - licence.expires_at} s ago; request a new licence",
        )
    return None


def new_expiry(now: int) -> int:
    return now + LICENCE_TTL_S


def renewal_due(licence: Licence, now: int) -> bool:
    """Whether a device online at `now` should have its (valid) licence's expiry moved."""
    return licence.expires_at - now < RENEW_WITHIN_S


def valid_at(licence: Licence, at: int) -> bool:
    """Whether the licence held at instant `at`: granted, not yet expired, not yet revoked.

    The stored expiry is the latest one; a licence is renewed only while valid, so its
    validity is one unbroken interval from `granted_at`.
    """
    if at < licence.granted_at or at >= licence.expires_at:
        return False
    return licence.revoked_at is None or at < licence.revoked_at
