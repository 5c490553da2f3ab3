"""GET /v1/tracks/{id}/plays with analytics tokens: per-day counts for a track's creator."""

from __future__ import annotations

import time
from datetime import date
from typing import Any

import jwt
import pytest

from cdn_edge.analytics_auth import (
    ANALYTICS_AUDIENCE,
    AnalyticsVerifier,
    issue_analytics_token,
    issue_dev_analytics_token,
)
from cdn_edge.errors import Forbidden, Unauthorized
from streamer.settings import Settings
from streamer.telemetry.model import PlayClaim
from streamer.token_secrets import TokenSecrets, load_token_secrets
from tests.edge.conftest import Client, ManualClock
from tests.telemetry.conftest import CREATOR, FlakyStore

D1, D2, D3 = date(2024, 5, 1), date(2024, 5, 2), date(2024, 5, 3)


@pytest.fixture
def analytics(edge_secrets: TokenSecrets, clock: ManualClock) -> Any:
    def issue(subject: str = CREATOR, ttl_s: int = 3600, **kwargs: Any) -> dict[str, str]:
        token = issue_analytics_token(edge_secrets.platform_key, subject, ttl_s, clock(), **kwargs)
        return {"Authorization": f"Bearer {token}"}

    return issue


@pytest.fixture
def counted(session_store: FlakyStore) -> None:
    plays = [PlayClaim(f"s{n}", "trk1", D1, 0) for n in range(3)]
    plays += [PlayClaim("s9", "trk1", D3, 0, offline=True), PlayClaim("x", "trk2", D1, 0)]
    session_store.inner.claim_plays(plays)


def plays_url(first: str = "2024-05-01", last: str = "2024-05-03", track: str = "trk1") -> str:
    return f"/v1/tracks/{track}/plays?from={first}&to={last}"


async def test_the_creator_reads_daily_counts(
    client: Client, analytics: Any, counted: None
) -> None:
    response = await client.get(plays_url(), headers=analytics())
    assert response.status == 200, await response.text()
    assert await response.json() == {
        "track_id": "trk1",
        "from": "2024-05-01",
        "to": "2024-05-03",
        "total": 4,
        "days": [
            {"day": "2024-05-01", "plays": 3},
            {"day": "2024-05-02", "plays": 0},
            {"day": "2024-05-03", "plays": 1},
        ],
    }
    assert "no-store" in response.headers["Cache-Control"]


async def test_another_creator_is_refused_unless_reading_every_track(
    client: Client, analytics: Any, counted: None
) -> None:
    response = await client.get(plays_url(), headers=analytics("someone-else"))
    assert response.status == 403
    assert "not submitted by 'someone-else'" in (await response.json())["message"]
    everything = analytics("royalty-service", all_tracks=True)
    response = await client.get(plays_url(last="2024-05-01", track="trk2"), headers=everything)
    assert response.status == 200
    assert (await response.json())["total"] == 1


async def test_unknown_track_is_404_for_its_would_be_creator(
    client: Client, analytics: Any
) -> None:
    response = await client.get(plays_url(track="nope"), headers=analytics())
    assert response.status == 404


def _jwt(secrets: TokenSecrets, now: float, **overrides: Any) -> dict[str, str]:
    claims = {"sub": CREATOR, "aud": ANALYTICS_AUDIENCE, "scope": "analytics", "exp": now + 60}
    claims.update(overrides)
    body = {k: v for k, v in claims.items() if v is not None}
    return {"Authorization": f"Bearer {jwt.encode(body, secrets.platform_key, 'HS256')}"}


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("missing", 401),
        ("listener_audience", 401),
        ("expired", 401),
        ("forged", 401),
        ("no_scope", 403),
        ("other_scope", 403),
    ],
)
async def test_token_failures(
    client: Client, edge_secrets: TokenSecrets, clock: ManualClock, case: str, status: int
) -> None:
    now = clock()
    headers = {
        "missing": {},
        "listener_audience": _jwt(edge_secrets, now, aud="streamer-edge"),
        "expired": _jwt(edge_secrets, now, exp=now - 3600),
        "forged": _jwt(TokenSecrets(b"f" * 32, b"g" * 32), now),
        "no_scope": _jwt(edge_secrets, now, scope=None),
        "other_scope": _jwt(edge_secrets, now, scope="ingest"),
    }[case]
    response = await client.get(plays_url(), headers=headers)
    assert response.status == status
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("to=2024-05-03", "from"),
        ("from=2024-05-01", "to"),
        ("from=2024-5-1&to=2024-05-03", "from"),
        ("from=yesterday&to=2024-05-03", "from"),
        ("from=2024-05-03&to=2024-05-01", "to"),
        ("from=2023-01-01&to=2024-05-01", "to"),  # over a year
    ],
)
async def test_bad_ranges_name_the_field(
    client: Client, analytics: Any, query: str, field: str
) -> None:
    response = await client.get(f"/v1/tracks/trk1/plays?{query}", headers=analytics())
    assert response.status == 400
    assert (await response.json())["message"].startswith(f"{field}:")


async def test_a_store_that_is_down_is_503(
    client: Client, analytics: Any, session_store: FlakyStore
) -> None:
    session_store.down = True
    response = await client.get(plays_url(), headers=analytics())
    assert response.status == 503


def test_dev_token_for_the_cli(settings: Settings) -> None:
    token = issue_dev_analytics_token(settings, "creator-9")
    key = load_token_secrets(settings).platform_key
    grant = AnalyticsVerifier(key, time.time)
    assert grant.verify(token).subject == "creator-9"
    assert not grant.verify(token).all_tracks
    everything = issue_dev_analytics_token(settings, "ops", all_tracks=True)
    assert grant.verify(everything).all_tracks


def test_verifier_messages() -> None:
    verifier = AnalyticsVerifier(b"k" * 32, lambda: 1000.0)
    with pytest.raises(Unauthorized, match="Bearer"):
        verifier.verify_header(None)
    token = issue_analytics_token(b"k" * 32, "c", 60, 1000.0)
    assert verifier.verify_header(f"Bearer {token}").subject == "c"
    scopeless = jwt.encode(
        {"sub": "c", "aud": ANALYTICS_AUDIENCE, "exp": 2000}, b"k" * 32, algorithm="HS256"
    )
    with pytest.raises(Forbidden, match="analytics"):
        verifier.verify(scopeless)
