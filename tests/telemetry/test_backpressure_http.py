"""A tiny telemetry queue in front of a store that does not answer: 429s, counted drops."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aiohttp import web

from cdn_edge.state import METRICS, TELEMETRY
from streamer.settings import Settings
from tests.edge.conftest import Client, ManualClock
from tests.telemetry.conftest import FlakyStore, OpenPlayback, drain

QUEUE = 4


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, telemetry_queue_events=QUEUE)


def heartbeats(clock: ManualClock, first: int, count: int) -> list[dict[str, Any]]:
    now = int(clock() * 1000)
    return [
        {"event_id": f"hb-{n}", "type": "heartbeat", "ts_ms": now + n * 1000, "position_s": n}
        for n in range(first, first + count)
    ]


async def test_a_full_queue_answers_429_and_loses_nothing(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()  # before the store blocks: nothing queued by it
    session_store.gate.clear()  # every store call now waits
    path = f"/v1/sessions/{pb.doc['session_id']}/events"
    auth = {"Authorization": f"Bearer {pb.token}"}
    edge_app[TELEMETRY].durable_wait_s = 0.2
    first = heartbeats(clock, 0, 3)
    response = await client.post(path, json={"events": first}, headers=auth)
    assert response.status == 503  # taken, but not acknowledged before they are stored
    assert (await response.json())["error"] == "unavailable"
    response = await client.post(path, json={"events": heartbeats(clock, 3, 2)}, headers=auth)
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    body = await response.json()
    assert body["error"] == "rate_limited"
    assert f"3 of {QUEUE}" in body["message"]
    registry = edge_app[METRICS].registry
    assert registry.get_sample_value("edge_refusals_total", {"reason": "rate_limited"}) == 1

    session_store.gate.set()
    await drain(edge_app, clock)
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert [e.event_id for e in stored] == ["hb-0", "hb-1", "hb-2"]
    # Room again: the unacknowledged and the refused events are taken when sent again.
    edge_app[TELEMETRY].durable_wait_s = 5.0
    for events in (first, heartbeats(clock, 3, 2)):
        response = await client.post(path, json={"events": events}, headers=auth)
        assert response.status == 202
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert [e.event_id for e in stored] == [f"hb-{n}" for n in range(5)]


async def test_playback_never_waits_for_a_full_queue(
    client: Client,
    open_playback: OpenPlayback,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    session_store.gate.clear()
    cmcd = "?CMCD=br%3D96%2Cot%3Da"
    for path in pb.segments:
        response = await client.get(path + cmcd)
        assert response.status == 200
        assert "CMSD-Dynamic" in response.headers
    assert edge_app[TELEMETRY].held <= QUEUE
    registry = edge_app[METRICS].registry
    dropped = sum(
        registry.get_sample_value(
            "edge_telemetry_dropped_total", {"kind": kind, "reason": "queue_full"}
        )
        or 0
        for kind in ("cmcd", "delivery")
    )
    assert dropped == 2 * len(pb.segments) - QUEUE  # counted, never silent
    session_store.gate.set()
    await drain(edge_app, clock)
