"""The gate remembers verified tokens (per worker and in a shared dict) without changing a
decision: a remembered token still expires, and only the exact token is remembered."""

from __future__ import annotations

import os
import signal
import time

from cdn_edge.nginx_tier import NginxTier
from cdn_edge.nginx_tier.process import prepare_prefix
from drm import sign_token
from tests.nginx_tier.conftest import request
from tests.nginx_tier.vectors import vector_secrets, vectors

FREE = vectors()["tokens"]["free"]
PREMIUM = vectors()["tokens"]["premium"]


def _segment(token: str) -> str:
    return f"/v1/s/{token}/aac_160/seg_00001.m4s"


def test_a_remembered_token_still_expires(tier: NginxTier) -> None:
    exp = int(time.time()) + 2
    token = sign_token({**vectors()["claims"]["free"], "exp": exp}, vector_secrets()[0])
    # Both workers, over fresh connections: each request may land on either.
    for _ in range(4):
        assert request(tier, _segment(token)).status == 200
    time.sleep(max(0.0, exp - time.time()) + 0.3)
    for _ in range(4):
        reply = request(tier, _segment(token))
        assert reply.status == 401
        assert reply.json()["error"] == "token_expired"


def test_only_the_exact_token_is_remembered(tier: NginxTier) -> None:
    assert request(tier, _segment(FREE)).status == 200  # now remembered
    payload, signature = FREE.split(".")
    forged = [
        f"{payload}.{PREMIUM.split('.')[1]}",  # another token's signature
        f"{PREMIUM.split('.')[0]}.{signature}",  # another payload under this signature
        f"{payload}A.{signature}",
    ]
    for token in forged:
        reply = request(tier, _segment(token))
        assert (reply.status, reply.json()["error"]) == (401, "token_invalid"), token
    # Entitlement is still checked per request: a remembered free token gets no aac_256.
    assert request(tier, f"/v1/s/{FREE}/aac_256/seg_00000.m4s").status == 403
    assert request(tier, _segment(FREE)).status == 200


def test_a_reload_with_other_keys_forgets_what_the_old_ones_verified(tier: NginxTier) -> None:
    assert request(tier, _segment(FREE)).status == 200  # remembered in the shared dict
    prepare_prefix(tier.config, (b"another playback key, 32 bytes!!",))
    os.kill(tier.process.pid, signal.SIGHUP)  # new workers; the shared dict outlives them
    deadline = time.monotonic() + 10
    status = 200
    while status == 200 and time.monotonic() < deadline:
        status = request(tier, _segment(FREE)).status
        time.sleep(0.05)
    assert status == 401
