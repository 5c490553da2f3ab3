"""The three bearer-token kinds over HTTP: one skew policy, audiences and scopes kept apart.

Listener tokens open sessions, analytics tokens read play counts, ingest tokens submit masters;
the ingest API is mounted on the edge's app as `streamer serve --ingest` mounts it, and every
kind is checked against the same manual clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from aiohttp import web

from cdn_edge.analytics_auth import ANALYTICS_AUDIENCE
from cdn_edge.listener_auth import LISTENER_AUDIENCE
from streamer.bearer_tokens import CLOCK_LEEWAY_S
from streamer.jobs.sqlite import SQLiteJobStore
from streamer.objects.memory import InMemoryObjectStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.edge.conftest import ALL_CODECS, Client, ManualClock
from transcoder.http_api import INGEST_AUDIENCE, ingest_token_verifier, install_ingest_api


@pytest.fixture
def edge_app(
    edge_app: web.Application,
    settings: Settings,
    store: InMemoryObjectStore,
    edge_secrets: TokenSecrets,
    clock: ManualClock,
    tmp_path: Path,
) -> web.Application:
    jobs = SQLiteJobStore(tmp_path / "jobs.sqlite3")
    verify = ingest_token_verifier(edge_secrets.platform_key, clock)
    install_ingest_api(edge_app, settings, store, jobs, verify)
    return edge_app


@dataclass(frozen=True)
class Kind:
    """One kind of token: the claims of a good one, and a request it authorises."""

    claims: dict[str, Any]
    method: str
    path: str
    body: dict[str, Any] | None
    ok: int  # the status of the request with a good token


DAY = "2023-11-14"  # the manual clock's day
KINDS = {
    "listener": Kind(
        {"sub": "u1", "tier": "free", "region": "SE", "aud": LISTENER_AUDIENCE},
        "POST",
        "/v1/sessions",
        {"track_id": "trk1", "device": {"codecs": ALL_CODECS}},
        201,
    ),
    "analytics": Kind(
        {"sub": "ops", "aud": ANALYTICS_AUDIENCE, "scope": "analytics", "tracks": "*"},
        "GET",
        f"/v1/tracks/trk1/plays?from={DAY}&to={DAY}",
        None,
        200,
    ),
    # An unknown job is 404 only once the token is accepted.
    "ingest": Kind(
        {"sub": "label-a", "aud": INGEST_AUDIENCE, "scope": "ingest"},
        "GET",
        "/v1/ingest/no-such-job",
        None,
        404,
    ),
}

Send = Callable[[str, str], Awaitable[int]]


@pytest.fixture
def send(client: Client) -> Send:
    async def send_(kind: str, token: str) -> int:
        spec = KINDS[kind]
        headers = {"Authorization": f"Bearer {token}"}
        response = await client.request(spec.method, spec.path, json=spec.body, headers=headers)
        await response.read()
        return response.status

    return send_


@pytest.fixture
def mint(edge_secrets: TokenSecrets, clock: ManualClock) -> Callable[..., str]:
    """A token of `kind` signed with the platform key, with claims overridden (None drops)."""

    def mint_(kind: str, alg: str = "HS256", **overrides: Any) -> str:
        claims = {**KINDS[kind].claims, "iat": int(clock()), "exp": int(clock()) + 600}
        claims.update(overrides)
        body = {k: v for k, v in claims.items() if v is not None}
        if alg in ("HS256", "none"):  # PyJWT takes "" as no key for alg none
            return jwt.encode(body, edge_secrets.platform_key if alg == "HS256" else "", alg)
        # Another HMAC under the right secret, signed by hand: PyJWT warns on its key length.
        return _hmac_jwt(body, edge_secrets.platform_key, alg)

    return mint_


@pytest.mark.parametrize("kind", KINDS)
async def test_a_good_token_is_accepted(kind: str, send: Send, mint: Callable[..., str]) -> None:
    assert await send(kind, mint(kind)) == KINDS[kind].ok


@pytest.mark.parametrize("kind", KINDS)
async def test_every_kind_has_the_same_clock_leeway(
    kind: str, send: Send, mint: Callable[..., str], clock: ManualClock
) -> None:
    now, ok = int(clock()), KINDS[kind].ok
    assert await send(kind, mint(kind, exp=now - CLOCK_LEEWAY_S + 1)) == ok
    assert await send(kind, mint(kind, exp=now - CLOCK_LEEWAY_S)) == 401
    assert await send(kind, mint(kind, exp=now - 3600)) == 401
    assert await send(kind, mint(kind, nbf=now + CLOCK_LEEWAY_S)) == ok
    assert await send(kind, mint(kind, nbf=now + CLOCK_LEEWAY_S + 1)) == 401


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("alg", ["none", "HS512", "HS384"])
async def test_only_hs256_is_accepted(
    kind: str, alg: str, send: Send, mint: Callable[..., str]
) -> None:
    assert await send(kind, mint(kind, alg=alg)) == 401


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _hmac_jwt(claims: dict[str, Any], key: bytes, alg: str) -> str:
    digest = {"HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    signing_input = f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}."
    signing_input += _b64(json.dumps(claims).encode())
    return f"{signing_input}.{_b64(hmac.digest(key, signing_input.encode(), digest))}"


def _tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed and its signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize(
    ("kind", "changes"),
    [
        ("listener", {"tier": "premium"}),
        ("analytics", {"sub": "someone-else"}),
        ("ingest", {"sub": "label-b"}),
        ("ingest", {"exp": 2**40}),
    ],
)
async def test_a_tampered_token_is_refused(
    kind: str, changes: dict[str, Any], send: Send, mint: Callable[..., str]
) -> None:
    assert await send(kind, _tampered(mint(kind), **changes)) == 401


@pytest.mark.parametrize("token_kind", KINDS)
@pytest.mark.parametrize("endpoint_kind", KINDS)
async def test_a_token_opens_only_its_own_endpoints(
    token_kind: str, endpoint_kind: str, send: Send, mint: Callable[..., str]
) -> None:
    status = await send(endpoint_kind, mint(token_kind))
    assert status == (KINDS[endpoint_kind].ok if token_kind == endpoint_kind else 401)


@pytest.mark.parametrize(
    ("kind", "scope"),
    [("analytics", "ingest"), ("analytics", None), ("ingest", "analytics"), ("ingest", None)],
)
async def test_the_right_audience_without_the_scope_is_403(
    kind: str, scope: str | None, send: Send, mint: Callable[..., str]
) -> None:
    assert await send(kind, mint(kind, scope=scope)) == 403


async def test_a_listener_token_with_an_ingest_scope_is_still_a_listener_token(
    send: Send, mint: Callable[..., str]
) -> None:
    # Scopes widen nothing across audiences: the audience decides where a token is valid.
    assert await send("ingest", mint("listener", scope="ingest analytics")) == 401
    assert await send("analytics", mint("listener", scope="ingest analytics")) == 401
