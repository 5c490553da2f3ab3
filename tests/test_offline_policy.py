"""Offline download policy and the offline play decision: pure functions over dataclasses."""

from __future__ import annotations

import dataclasses
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.offline.model import Device, Licence
from streamer.offline.plays import decide_licensed_play, offline_play_session_id
from streamer.offline.policy import (
    DEVICE_LIMIT,
    LICENCE_TTL_S,
    Refusal,
    licence_refusal,
    new_expiry,
    registration_refusal,
    renewal_due,
    tier_refusal,
    valid_at,
)
from streamer.telemetry.model import PlayClaim, PlayerEvent

T0 = 1_700_000_000  # 2023-11-14 22:13:20 UTC
LICENCE = Licence("lic1", "dev1", "u1", "trk1", "v1", ("flac",), T0, T0 + LICENCE_TTL_S)


def test_only_premium_may_download() -> None:
    assert tier_refusal("premium") is None
    refusal = tier_refusal("free")
    assert refusal is not None and refusal.code == "premium_required"


def test_the_device_limit() -> None:
    assert registration_refusal(DEVICE_LIMIT - 1) is None
    refusal = registration_refusal(DEVICE_LIMIT)
    assert refusal is not None and refusal.code == "device_limit"
    assert registration_refusal(2, limit=2) is not None


def test_licence_states() -> None:
    assert licence_refusal(LICENCE, T0) is None
    assert licence_refusal(LICENCE, T0 + LICENCE_TTL_S - 1) is None
    expired = licence_refusal(LICENCE, T0 + LICENCE_TTL_S)
    assert expired is not None and expired.code == "licence_expired"
    revoked = dataclasses.replace(LICENCE, revoked_at=T0 + 10, revoked_by="listener")
    assert licence_refusal(revoked, T0 + 9) is None
    refusal = licence_refusal(revoked, T0 + 10)
    assert refusal is not None and refusal.code == "licence_revoked"
    assert "listener" in refusal.message


def test_renewal_window() -> None:
    assert new_expiry(T0) == T0 + LICENCE_TTL_S
    assert not renewal_due(LICENCE, T0 + 3600)  # fresh: nothing to renew
    assert renewal_due(LICENCE, T0 + 2 * 86_400)


@given(st.integers(T0 - 10**6, T0 + 2 * LICENCE_TTL_S), st.integers(T0, T0 + LICENCE_TTL_S))
def test_valid_at_is_the_interval_up_to_revocation(at: int, revoked_at: int) -> None:
    revoked = dataclasses.replace(LICENCE, revoked_at=revoked_at)
    assert valid_at(revoked, at) == (T0 <= at < min(revoked_at, T0 + LICENCE_TTL_S))
    # Revoking never makes a licence valid at an instant it was not.
    assert not valid_at(revoked, at) or valid_at(LICENCE, at)


def test_models_validate_at_construction() -> None:
    with pytest.raises(ValueError, match="expires at"):
        dataclasses.replace(LICENCE, expires_at=T0)
    with pytest.raises(ValueError, match="licence_id"):
        dataclasses.replace(LICENCE, licence_id="a.b")
    with pytest.raises(ValueError, match="32 bytes"):
        Device("dev1", "u1", b"short", "phone", T0)


def _events(start_ms: int, seconds: int) -> list[PlayerEvent]:
    return [
        PlayerEvent(
            session_id="off:lic1:p1",
            event_id=f"e{n}",
            type="heartbeat",
            track_id="trk1",
            client_ms=start_ms + n * 10_000,
            received_ms=start_ms + 10**9,
            position_s=float(n * 10),
            seq=n,
            offline=True,
        )
        for n in range(seconds // 10 + 1)
    ]


def test_a_licensed_play_counts_on_its_own_day() -> None:
    start_ms = (T0 + 2 * 3600) * 1000  # 00:13 UTC on the 15th
    claim = decide_licensed_play(LICENCE, "p1", _events(start_ms, 40), now_ms=start_ms + 10**8)
    assert claim == PlayClaim(
        offline_play_session_id("lic1", "p1"), "trk1", date(2023, 11, 15), start_ms + 30_000, True
    )


def test_a_licensed_play_outside_the_licence_does_not_count() -> None:
    revoked = dataclasses.replace(LICENCE, revoked_at=T0 + 3600)
    start_ms = (T0 + 7200) * 1000
    decision = decide_licensed_play(revoked, "p1", _events(start_ms, 40), now_ms=start_ms + 10**8)
    assert isinstance(decision, Refusal) and decision.code == "licence_not_valid_at_play"
    before = decide_licensed_play(LICENCE, "p1", _events((T0 - 60) * 1000, 40), (T0 + 60) * 1000)
    assert isinstance(before, Refusal) and before.code == "licence_not_valid_at_play"
    short = decide_licensed_play(LICENCE, "p1", _events(start_ms, 20), start_ms + 10**8)
    assert isinstance(short, Refusal) and short.code == "below_threshold"
