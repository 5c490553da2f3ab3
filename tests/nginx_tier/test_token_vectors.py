"""The Python signer and verifier agree with every shared session-token vector."""

from __future__ import annotations

from typing import Any

import pytest

from cdn_edge.nginx_tier import decide_segment
from cdn_edge.playback.tokens import PlaybackTokens, SessionClaims
from drm import sign_token
from tests.nginx_tier.vectors import cases, vector_secrets, vectors


def _session(claims: dict[str, Any]) -> SessionClaims:
    return SessionClaims(
        session_id=claims["sid"],
        track_id=claims["trk"],
        version=claims["ver"],
        user_id=claims["sub"],
        tier=claims["tier"],
        variants=tuple(claims["var"].split(",")),
        expires_at=claims["exp"],
        region=claims["reg"],
    )


@pytest.mark.parametrize("kind", ["free", "premium"])
def test_the_edge_signs_the_vector_tokens(kind: str) -> None:
    claims = vectors()["claims"][kind]
    token = vectors()["tokens"][kind]
    secrets = vector_secrets()
    assert sign_token(claims, secrets[0]) == token
    assert PlaybackTokens(secrets).sign_session(_session(claims)) == token
    assert PlaybackTokens(secrets).verify_session(token, vectors()["now"]) == _session(claims)


@pytest.mark.parametrize("case", cases(), ids=[c["name"] for c in cases()])
def test_the_python_gate_decides_each_vector(case: dict[str, Any]) -> None:
    decision = decide_segment(case["path"], PlaybackTokens(vector_secrets()), vectors()["now"])
    assert decision.status == case["gate"]
    if case["gate"] == 200:
        assert decision.code == ""
        assert decision.session is not None
        exists = decision.object_key in vectors()["objects"]
        assert exists == (case["status"] == 200)
    else:
        assert decision.code == case["error"]
        assert decision.object_key == ""


def test_the_vectors_cover_the_refusals() -> None:
    seen = {(c["gate"], c["error"]) for c in cases()}
    for wanted in (
        (200, ""),
        (400, "malformed_name"),
        (401, "token_invalid"),
        (401, "token_expired"),
        (403, "token_mismatch"),
        (403, "not_entitled"),
    ):
        assert wanted in seen
