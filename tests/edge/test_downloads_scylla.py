"""Offline downloads over HTTP with the real CQL store (Cassandra of `scripts/services up`):
the limit under concurrent registrations, a grant, a revocation."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from streamer.offline.policy import DEVICE_LIMIT
from streamer.offline.scylla import ScyllaOfflineStore
from tests.backends.cql_fixtures import open_test_scylla_offline_store
from tests.edge.conftest import ManualClock
from tests.edge.offline_device import auth, grant, new_device, register

pytestmark = pytest.mark.services


@pytest.fixture
def offline_store(tmp_path: Path) -> ScyllaOfflineStore:  # overrides the SQLite one
    return open_test_scylla_offline_store(tmp_path)


async def test_concurrent_registrations_stop_at_the_limit(
    dl: TestClient, listener_token: Callable[..., str]
) -> None:
    token = listener_token("premium")
    results = await asyncio.gather(*(register(dl, token, new_device()) for _ in range(8)))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * DEVICE_LIMIT + [409] * (8 - DEVICE_LIMIT), results
    response = await dl.get("/v1/devices", headers=auth(token))
    assert len((await response.json())["devices"]) == DEVICE_LIMIT


async def test_grant_then_revoke(
    dl: TestClient, listener_token: Callable[..., str], clock: ManualClock
) -> None:
    token = listener_token("premium", ttl_s=7 * 86_400)
    _, device = await register(dl, token, new_device())
    status, issued = await grant(dl, token, device["device_id"])
    assert status == 201, issued
    licence_id = issued["licence"]["licence_id"]
    response = await dl.delete(
        f"/v1/devices/{device['device_id']}/licences/{licence_id}", headers=auth(token)
    )
    assert (response.status, (await response.json())["state"]) == (200, "revoked")
    clock.advance(3 * 86_400)
    response = await dl.post(
        f"/v1/devices/{device['device_id']}/licences/{licence_id}/renew",
        json={"licence": issued["licence"], "signature": issued["signature"]},
        headers=auth(token),
    )
    assert (response.status, (await response.json())["error"]) == (403, "licence_revoked")
