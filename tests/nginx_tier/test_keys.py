"""Content keys served by the gate (streamer_tier.lua, serve_key) against a stand-in edge that
answers the gate's key fetch as cdn_edge/handlers/gate_keys.py does: the bytes come from the
gate's dict after one fetch per key, tiers and budgets hold across nginx's two workers, and the
access log records each delivery."""

from __future__ import annotations

import base64
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from cdn_edge.nginx_tier import NginxNotInstalled, NginxTier, NginxTierConfig, start_nginx_tier
from cdn_edge.playback.gate_keys import (
    CREDENTIAL_HEADER,
    KEY_TIER_HEADER,
    LISTENER_BUDGET_HEADER,
    SESSION_BUDGET_HEADER,
    gate_credential,
)
from drm import sign_token
from tests.nginx_tier.conftest import access_lines, request
from tests.nginx_tier.vectors import vector_secrets, vectors

FREE = vectors()["tokens"]["free"]
PREMIUM = vectors()["tokens"]["premium"]
KEYS = {"v1-free-0": ("free", b"F" * 16), "v1-premium-0": ("premium", b"P" * 16)}
SESSION_BUDGET = (4, 0.001)  # four keys, then a refusal for about 17 minutes
LISTENER_BUDGET = (6, 0.001)
RANK = {"free": 0, "premium": 1}


@dataclass
class _FakeEdge:
    fetches: Counter[str] = field(default_factory=Counter)
    refused: list[str] = field(default_factory=list)


def _handler(edge: _FakeEdge) -> type[BaseHTTPRequestHandler]:
    credential = gate_credential(vector_secrets()[0])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            match = re.fullmatch(r"/v1/gate/s/([^/]+)/keys/([^/]+)", self.path)
            if match is None or self.headers.get(CREDENTIAL_HEADER) != credential:
                edge.refused.append(self.path)
                return self._send(403, b'{"error":"forbidden","message":"gate only"}', {})
            token, key_id = match.groups()
            edge.fetches[key_id] += 1
            payload = token.split(".")[0]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
            if key_id not in KEYS:
                return self._send(404, b'{"error":"not_found","message":"no such key"}', {})
            tier, key = KEYS[key_id]
            if RANK[tier] > RANK[claims["tier"]]:
                body = b'{"error":"not_entitled","message":"above"}'
                return self._send(403, body, {KEY_TIER_HEADER: tier})
            headers = {
                KEY_TIER_HEADER: tier,
                SESSION_BUDGET_HEADER: f"{SESSION_BUDGET[0]} {SESSION_BUDGET[1]!r}",
                LISTENER_BUDGET_HEADER: f"{LISTENER_BUDGET[0]} {LISTENER_BUDGET[1]!r}",
            }
            self._send(200, key, headers)

        def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def key_edge() -> Iterator[tuple[_FakeEdge, str]]:
    edge = _FakeEdge()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(edge))
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield edge, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def key_tier(
    tier_config: NginxTierConfig, key_edge: tuple[_FakeEdge, str]
) -> Iterator[tuple[NginxTier, _FakeEdge]]:
    edge, address = key_edge
    try:
        started = start_nginx_tier(replace(tier_config, edge_upstream=address), vector_secrets())
    except NginxNotInstalled as exc:
        pytest.fail(f"the nginx tier tests need nginx with its Lua module: {exc}")
    with started:
        yield started, edge


def _key(token: str, key_id: str) -> str:
    return f"/v1/s/{token}/keys/{key_id}"


def _session(sid: str, sub: str, tier: str = "premium") -> str:
    claims = {**vectors()["claims"][tier], "sid": sid, "sub": sub}
    return sign_token(claims, vector_secrets()[0])


def test_keys_come_from_the_dict_after_one_fetch(key_tier: tuple[NginxTier, _FakeEdge]) -> None:
    tier, edge = key_tier
    for token in (PREMIUM, _session("sess-2", "carol")):
        for key_id in ("v1-free-0", "v1-premium-0"):
            reply = request(tier, _key(token, key_id) + "?CMCD=ot%3Dk")
            assert reply.status == 200, reply.body
            assert reply.body == KEYS[key_id][1]
            assert reply.headers["Content-Type"] == "application/octet-stream"
            assert reply.headers["Cache-Control"] == "no-store"
            assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert request(tier, _key(PREMIUM, "v1-free-0"), "HEAD").status == 200
    assert edge.fetches == Counter({"v1-free-0": 1, "v1-premium-0": 1})
    assert edge.refused == []


def test_an_above_tier_key_is_refused_even_once_its_bytes_are_known(
    key_tier: tuple[NginxTier, _FakeEdge],
) -> None:
    tier, edge = key_tier
    refused = request(tier, _key(FREE, "v1-premium-0"))
    assert refused.status == 403 and refused.json()["error"] == "not_entitled"
    assert request(tier, _key(PREMIUM, "v1-premium-0")).status == 200  # bytes now in the dict
    for _ in range(4):  # either worker; no fetch needed to refuse
        again = request(tier, _key(FREE, "v1-premium-0"))
        assert again.status == 403 and again.json()["error"] == "not_entitled"
        assert KEYS["v1-premium-0"][1] not in again.body
    assert edge.fetches["v1-premium-0"] == 2  # the free session's, then the premium one's
    assert request(tier, _key(FREE, "v1-free-0")).body == KEYS["v1-free-0"][1]


def test_other_keys_tokens_and_names_are_refused(key_tier: tuple[NginxTier, _FakeEdge]) -> None:
    tier, edge = key_tier
    missing = request(tier, _key(PREMIUM, "v2-free-0"))
    assert missing.status == 404 and missing.json()["error"] == "not_found"
    payload, signature = FREE.split(".")
    forged = request(tier, _key(f"{payload}.{signature[:-2]}AA", "v1-free-0"))
    assert forged.status == 401 and forged.json()["error"] == "token_invalid"
    assert forged.headers["WWW-Authenticate"].startswith("Bearer")
    for name in (".hidden", "a%2F..", "x" * 129):
        bad = request(tier, _key(FREE, name))
        assert bad.status == 400 and bad.json()["error"] == "malformed_name", name
    assert request(tier, _key(FREE, "v1-free-0"), "POST").status == 405
    # The gate's fetch is internal: no client reaches it, credential or not.
    inner = request(tier, f"/_streamer/gate_key?t={FREE}&k=v1-free-0&c=00")
    assert inner.status == 404
    assert edge.fetches == Counter({"v2-free-0": 1})


def test_budgets_per_session_and_listener_hold_across_workers(
    key_tier: tuple[NginxTier, _FakeEdge],
) -> None:
    tier, _ = key_tier
    first = _session("budget-1", "dave")
    statuses = [request(tier, _key(first, "v1-free-0")).status for _ in range(5)]
    assert statuses == [200] * 4 + [429]
    refused = request(tier, _key(first, "v1-free-0"))
    assert refused.json()["error"] == "rate_limited"
    assert "session budget-1 has fetched its 4 keys" in refused.json()["message"]
    assert int(refused.headers["Retry-After"]) >= 900
    # Dave's second session: its own budget, but the listener's has 2 keys left (6 - 4).
    second = _session("budget-2", "dave")
    statuses = [request(tier, _key(second, "v1-free-0")).status for _ in range(3)]
    assert statuses == [200, 200, 429]
    listener = request(tier, _key(second, "v1-free-0")).json()
    assert listener["message"].startswith("listener dave fetched more than 6 keys")
    # Another listener is untouched.
    assert request(tier, _key(_session("budget-3", "erin"), "v1-free-0")).status == 200


def test_each_key_delivery_is_a_log_line(key_tier: tuple[NginxTier, _FakeEdge]) -> None:
    tier, _ = key_tier
    request(tier, _key(PREMIUM, "v1-premium-0") + "?CMCD=ot%3Dk")
    request(tier, _key(FREE, "v1-premium-0"))
    lines = {line["session_id"]: line for line in access_lines(tier, 2)}
    served, refused = lines["sess-premium-1"], lines["sess-free-1"]
    assert served["route"] == "key" and served["status"] == 200
    assert (served["object"], served["key_tier"], served["tier"]) == (
        "v1-premium-0",
        "premium",
        "premium",
    )
    assert served["uri"] == "/v1/s/-/keys/v1-premium-0"
    assert served["cmcd_query"] == "ot%3Dk"
    assert (refused["status"], refused["key_tier"], refused["tier"]) == (403, "premium", "free")
    logs = tier.config.access_log.read_text() + tier.config.error_log.read_text()
    assert FREE.split(".")[1] not in logs and gate_credential(vector_secrets()[0]) not in logs
