"""Session and event bodies as the edge parses them (after json.loads): any JSON at all, and
near-valid bodies with one field wrong, parse or fail with a 4xx naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given

from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.strategies import EVENT_BODIES, SESSION_BODIES
from tests.fuzz.targets import EdgeError, SessionClaims, parse_events, parse_session_request

CLAIMS = SessionClaims(
    session_id="fuzz-session",
    track_id="TRKA00000001",
    version="0a0a0a0a0a0a0a0a",
    user_id="fuzzer",
    tier="free",
    variants=("aac_96",),
    expires_at=2_000_000_000,
)


def _refused_cleanly(exc: EdgeError) -> None:
    assert 400 <= exc.http_status < 500, exc
    assert str(exc)


@pytest.mark.parametrize("scale", SCALES)
def test_session_bodies(scale: int) -> None:
    @budget(400, scale)
    @given(SESSION_BODIES)
    def check(doc: Any) -> None:
        tried("session bodies (parse_session_request)")
        try:
            parse_session_request(doc)
        except EdgeError as exc:
            _refused_cleanly(exc)

    check()


@pytest.mark.parametrize("scale", SCALES)
def test_event_bodies(scale: int) -> None:
    @budget(400, scale)
    @given(EVENT_BODIES)
    def check(doc: Any) -> None:
        tried("event bodies (parse_events)")
        try:
            parse_events(doc, CLAIMS, 1_700_000_000_000)
        except EdgeError as exc:
            _refused_cleanly(exc)

    check()
