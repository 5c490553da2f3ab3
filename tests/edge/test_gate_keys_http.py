"""The nginx gate's key fetch (GET /v1/gate/s/{token}/keys/{key id}): only with the gate's
credential, the key's bytes, tier and budgets, refusals as the key route's, no budget spent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from cdn_edge.playback.gate_keys import (
    CREDENTIAL_HEADER,
    KEY_TIER_HEADER,
    LISTENER_BUDGET_HEADER,
    SESSION_BUDGET_HEADER,
    gate_credential,
    gate_credentials,
    is_gate,
)
from cdn_edge.policy.key_budget import LISTENER_BUDGET
from cdn_edge.state import CATALOG, CLOCK, KEYS, TOKENS
from streamer.token_secrets import TokenSecrets
from tests.edge.builders import BuiltTrack
from tests.edge.conftest import Client

OpenSession = Callable[..., Awaitable[dict[str, Any]]]


def _token(doc: dict[str, Any]) -> str:
    return str(doc["playlist_url"].split("/")[-2])


def _gate(edge_secrets: TokenSecrets) -> dict[str, str]:
    key = edge_secrets.playback_key
    return {CREDENTIAL_HEADER: gate_credential(key if isinstance(key, bytes) else key[0])}


def test_credentials_follow_the_playback_keys() -> None:
    new, old = b"k" * 32, b"o" * 32
    accepted = gate_credentials((new, old))
    assert is_gate(gate_credential(new), accepted) and is_gate(gate_credential(old), accepted)
    assert not is_gate(gate_credential(b"x" * 32), accepted)
    assert not is_gate("", accepted)
    assert len(gate_credential(new)) == 64 and gate_credential(new) != gate_credential(old)


async def test_only_the_gate_may_fetch(
    client: Client, open_session: OpenSession, edge_secrets: TokenSecrets
) -> None:
    path = f"/v1/gate/s/{_token(await open_session('premium'))}/keys/v1-free-0"
    for headers in ({}, {CREDENTIAL_HEADER: gate_credential(b"wrong" * 8)}):
        response = await client.get(path, headers=headers)
        assert response.status == 403
        assert (await response.json())["error"] == "forbidden"
        assert KEY_TIER_HEADER not in response.headers
    assert (await client.get(path, headers=_gate(edge_secrets))).status == 200


async def test_the_gate_gets_bytes_tier_and_budgets_and_spends_nothing(
    client: Client, open_session: OpenSession, edge_secrets: TokenSecrets, track: BuiltTrack
) -> None:
    doc = await open_session("premium")
    session = client.app[TOKENS].verify_session(_token(doc), int(client.app[CLOCK]()))
    budget = client.app[KEYS].session_budget(await client.app[CATALOG].current("trk1"), session)
    path = f"/v1/gate/s/{_token(doc)}/keys/v1-premium-0"
    for _ in range(budget.capacity + 5):  # past the session's budget: the gate spends, not us
        response = await client.get(path, headers=_gate(edge_secrets))
        assert response.status == 200
    assert await response.read() == track.clear_keys["v1-premium-0"]
    assert response.headers[KEY_TIER_HEADER] == "premium"
    capacity, rate = response.headers[SESSION_BUDGET_HEADER].split(" ")
    assert (int(capacity), float(rate)) == (budget.capacity, budget.refill_per_s)
    listener = response.headers[LISTENER_BUDGET_HEADER].split(" ")
    assert (int(listener[0]), float(listener[1])) == (
        LISTENER_BUDGET.capacity,
        LISTENER_BUDGET.refill_per_s,
    )
    assert response.headers["Cache-Control"] == "no-store"
    # The session's own key route still has its whole budget.
    own = await client.get(f"/v1/s/{_token(doc)}/keys/v1-premium-0")
    assert own.status == 200


async def test_refusals_say_the_tier_and_never_the_bytes(
    client: Client, open_session: OpenSession, edge_secrets: TokenSecrets, track: BuiltTrack
) -> None:
    token = _token(await open_session("free"))
    above = await client.get(f"/v1/gate/s/{token}/keys/v1-premium-0", headers=_gate(edge_secrets))
    assert above.status == 403
    assert above.headers[KEY_TIER_HEADER] == "premium"
    body = await above.read()
    assert (await above.json())["error"] == "not_entitled"
    assert track.clear_keys["v1-premium-0"] not in body
    missing = await client.get(f"/v1/gate/s/{token}/keys/v9-free-0", headers=_gate(edge_secrets))
    assert missing.status == 404
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    reply = await client.get(f"/v1/gate/s/{forged}/keys/v1-free-0", headers=_gate(edge_secrets))
    assert reply.status == 401
    bad = await client.get(f"/v1/gate/s/{token}/keys/.hidden", headers=_gate(edge_secrets))
    assert bad.status == 400
