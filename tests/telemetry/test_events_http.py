"""POST /v1/sessions/{id}/events over HTTP: auth, validation, limits, backpressure, plays."""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from aiohttp import web

from cdn_edge.state import METRICS, TELEMETRY
from drm import sign_token
from streamer.token_secrets import TokenSecrets
from tests.edge.conftest import Client, ManualClock
from tests.telemetry.conftest import FlakyStore, OpenPlayback, Playback, drain

_ids = itertools.count()
DAY = date(2023, 11, 14)  # the manual clock's day


def doc(kind: str, ts_ms: int, position_s: float, **fields: Any) -> dict[str, Any]:
    base = {"event_id": f"ev-{next(_ids)}", "type": kind, "ts_ms": ts_ms, "position_s": position_s}
    return base | fields


def listening(clock: ManualClock, seconds: int, every_s: int = 5) -> list[dict[str, Any]]:
    """A play now, then heartbeats as if the listener kept playing (times on our clock)."""
    now = int(clock() * 1000)
    events = [doc("play", now, 0, bitrate_kbps=96, rendition="aac_96", startup_ms=640)]
    for t in range(every_s, seconds + 1, every_s):
        events.append(doc("heartbeat", now + t * 1000, t))
    return events


Post = Callable[..., Awaitable[Any]]


@pytest.fixture
def post(client: Client) -> Post:
    async def post_(
        pb: Playback, events: list[dict[str, Any]], via: str = "header", **kwargs: Any
    ) -> Any:
        path = f"/v1/sessions/{pb.doc['session_id']}/events"
        headers = {}
        if via == "header":
            headers["Authorization"] = f"Bearer {pb.token}"
        elif via == "query":
            path += f"?t={pb.token}"
        return await client.post(path, json={"events": events}, headers=headers, **kwargs)

    return post_


async def fetch_segments(client: Client, pb: Playback, count: int) -> None:
    for path in pb.segments[:count]:
        response = await client.get(path)
        assert response.status == 200


async def test_events_land_in_the_store(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    events = listening(clock, 20)
    response = await post(pb, events)
    assert response.status == 202, await response.text()
    assert await response.json() == {"accepted": 5, "refused": []}
    assert response.headers["Cache-Control"] == "no-store"
    await drain(edge_app, clock)
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert [e.event_id for e in stored] == [e["event_id"] for e in events]
    first = stored[0]
    assert (first.type, first.track_id, first.bitrate_kbps, first.startup_ms) == (
        "play",
        "trk1",
        96,
        640,
    )
    assert first.received_ms == int(clock() * 1000)


async def test_token_in_the_query_for_beacons(
    open_playback: OpenPlayback, post: Post, clock: ManualClock
) -> None:
    pb = await open_playback()
    response = await post(pb, listening(clock, 5), via="query")
    assert response.status == 202


async def test_auth_failures(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
) -> None:
    pb, other = await open_playback(), await open_playback()
    events = listening(clock, 5)
    assert (await post(pb, events, via="none")).status == 401
    wrong = dataclasses.replace(pb, token=other.token)
    response = await post(wrong, events)
    assert response.status == 403
    assert (await response.json())["error"] == "token_mismatch"
    # A genuine token of another kind, under the edge's own secret.
    other_kind = sign_token(
        {"t": "g", "sid": pb.doc["session_id"], "exp": 2**40}, edge_secrets.playback_key
    )
    response = await post(dataclasses.replace(pb, token=other_kind), events)
    assert response.status == 403
    forged = pb.token[:-4] + ("AAAA" if not pb.token.endswith("AAAA") else "BBBB")
    assert (await post(dataclasses.replace(pb, token=forged), events)).status == 401
    response = await client.post(
        f"/v1/sessions/{pb.doc['session_id']}/events",
        json={"events": events},
        headers={"Authorization": f"Basic {pb.token}"},
    )
    assert response.status == 401


async def test_an_expired_token_reports_for_thirty_more_days(
    open_playback: OpenPlayback, post: Post, clock: ManualClock
) -> None:
    pb = await open_playback()
    clock.advance(20 * 86_400)  # the session token expired long ago, the window is open
    assert (await post(pb, listening(clock, 5))).status == 202
    clock.advance(11 * 86_400)
    response = await post(pb, listening(clock, 5))
    assert response.status == 401
    assert (await response.json())["error"] == "token_expired"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ({"position_s": -1}, "events[3].position_s"),
        ({"position_s": "12"}, "events[3].position_s"),
        ({"position_s": None}, "events[3].position_s"),
        ({"ts_ms": 1.5}, "events[3].ts_ms"),
        ({"event_id": "has space"}, "events[3].event_id"),
        ({"event_id": None}, "events[3].event_id"),
        ({"type": "rewind"}, "events[3].type"),
        ({"colour": "red"}, "events[3].colour"),
        ({"from_s": 3}, "events[3].from_s"),  # a heartbeat has no from_s
        ({"offline": "yes"}, "events[3].offline"),
        ({"pathway": "a/b"}, "events[3].pathway"),
        ({"type": "bitrate_switch"}, "events[3].bitrate_kbps"),
        ({"type": "seek"}, "events[3].from_s"),
        ({"type": "error"}, "events[3].code"),
        ({"type": "error", "code": "x", "message": "m" * 600}, "events[3].message"),
        # A lone surrogate (valid JSON, not text): no store can keep it, and the batch it
        # sat in would fail again on every retry.
        ({"type": "error", "code": "x", "message": "bad \ud800"}, "events[3].message"),
        ({"type": "play", "startup_ms": -5}, "events[3].startup_ms"),
    ],
)
async def test_validation_names_the_bad_item(
    open_playback: OpenPlayback,
    post: Post,
    clock: ManualClock,
    edge_app: web.Application,
    bad: dict[str, Any],
    field: str,
) -> None:
    pb = await open_playback()
    events = listening(clock, 25)
    events[3] = {k: v for k, v in (events[3] | bad).items() if v is not None}
    response = await post(pb, events)
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "invalid_field"
    assert body["message"].startswith(f"{field}:"), body["message"]
    assert edge_app[TELEMETRY].held == 0  # nothing of a bad batch is taken


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"events": {}}', b'{"events": [1]}', b'{"evnts": []}']
)
async def test_malformed_bodies(client: Client, open_playback: OpenPlayback, body: bytes) -> None:
    pb = await open_playback()
    response = await client.post(
        f"/v1/sessions/{pb.doc['session_id']}/events",
        data=body,
        headers={"Authorization": f"Bearer {pb.token}", "Content-Type": "application/json"},
    )
    assert response.status == 400
    assert (await response.json())["error"] == "invalid_field"


async def test_oversized_bodies_are_413(
    client: Client, open_playback: OpenPlayback, post: Post, clock: ManualClock
) -> None:
    pb = await open_playback()
    response = await client.post(
        f"/v1/sessions/{pb.doc['session_id']}/events",
        data=b" " * (64 * 1024 + 1),
        headers={"Authorization": f"Bearer {pb.token}"},
    )
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"
    now = int(clock() * 1000)
    response = await post(pb, [doc("heartbeat", now, 1) for _ in range(501)])
    assert response.status == 413
    assert "at most 500" in (await response.json())["message"]
    assert (await post(pb, [doc("heartbeat", now, 1) for _ in range(500)])).status == 202


async def test_offline_events_older_than_thirty_days_are_refused_one_by_one(
    open_playback: OpenPlayback,
    post: Post,
    clock: ManualClock,
    edge_app: web.Application,
    session_store: FlakyStore,
) -> None:
    pb = await open_playback()
    now = int(clock() * 1000)
    old = doc("heartbeat", now - 31 * 86_400_000, 10, offline=True)
    recent = doc("heartbeat", now - 3 * 86_400_000, 10, offline=True)
    response = await post(pb, [recent, old, doc("heartbeat", now, 12)])
    assert response.status == 202
    body = await response.json()
    assert body["accepted"] == 2
    [refused] = body["refused"]
    assert (refused["index"], refused["event_id"]) == (1, old["event_id"])
    assert "30 days" in refused["reason"]
    await drain(edge_app, clock)
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert {e.event_id for e in stored} == {recent["event_id"], stored[-1].event_id}
    assert old["event_id"] not in {e.event_id for e in stored}


async def test_store_down_playback_goes_on_and_telemetry_lands_later(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    session_store.down = True
    pb = await open_playback()  # the session record fails; the session works
    cmcd = "CMCD=" + "bl%3D12000%2Cbr%3D96%2Cd%3D6000%2Cot%3Da%2Csid%3D%22p1%22"
    for path in (pb.playlist, pb.key, pb.init, *pb.segments[:6]):
        response = await client.get(f"{path}&{cmcd}" if "?" in path else f"{path}?{cmcd}")
        assert response.status == 200, (path, await response.text())
    events = listening(clock, 35)
    writer = edge_app[TELEMETRY]
    writer.durable_wait_s = 1.0
    # The store is down and this edge has no spool: the batch is kept, not acknowledged.
    assert (await post(pb, events)).status == 503
    assert writer.held > 0
    metrics = edge_app[METRICS].registry
    assert (metrics.get_sample_value("edge_telemetry_write_failures_total") or 0) >= 1

    session_store.down = False
    await drain(edge_app, clock)
    telemetry = session_store.inner.session_telemetry(pb.doc["session_id"])
    assert len(telemetry.events) == len(events)
    assert {c.route for c in telemetry.cmcd} == {"playlist", "key", "segment"}
    assert len(telemetry.deliveries) == 6  # media segments; the init section is not evidence
    assert telemetry.play is not None and telemetry.play.day == DAY


async def test_a_play_is_counted_once_under_duplicates_reordering_and_retries(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    rng = random.Random(7)
    pb = await open_playback()
    await fetch_segments(client, pb, 7)  # 42 s delivered
    events = listening(clock, 45)
    batches = [events[i : i + 3] for i in range(0, len(events), 3)]
    rng.shuffle(batches)  # batches arrive out of order...
    batches += rng.sample(batches, 3)  # ...and some are sent again (retries)
    for batch in batches:
        noisy = batch + rng.sample(batch, 1)  # duplicates inside a request too
        rng.shuffle(noisy)
        assert (await post(pb, noisy)).status == 202
        await drain(edge_app, clock)
    store = session_store.inner
    assert store.plays_by_day("trk1", DAY, DAY) == {DAY: 1}
    play = store.session_telemetry(pb.doc["session_id"]).play
    assert play is not None and not play.offline
    registry = edge_app[METRICS].registry
    assert registry.get_sample_value("edge_track_plays_total", {"track_id": "trk1"}) == 1

    report = await client.get(
        f"/v1/sessions/{pb.doc['session_id']}/qoe",
        headers={"Authorization": f"Bearer {pb.token}"},
    )
    assert report.status == 200
    body = await report.json()
    assert body["play"]["day"] == DAY.isoformat()
    assert body["qoe"]["played_s"] == 45
    assert body["qoe"]["startup_s"] == 0.64
    assert body["events"] == len(events)


async def test_too_little_listening_is_no_play(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    listened = await open_playback()
    await fetch_segments(client, listened, 8)
    assert (await post(listened, listening(clock, 25))).status == 202  # 25 s < 30 s
    skimmed = await open_playback()
    await fetch_segments(client, skimmed, 3)  # claims 60 s, the edge delivered 18 s
    assert (await post(skimmed, listening(clock, 60))).status == 202
    await drain(edge_app, clock)
    assert session_store.inner.plays_by_day("trk1", DAY, DAY) == {}


async def test_offline_play_counts_on_its_original_day(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    await fetch_segments(client, pb, 8)  # downloaded for offline listening
    played_at = int(clock() * 1000) + 2 * 86_400_000  # two days later, offline
    events = [doc("play", played_at, 0, offline=True)]
    events += [doc("heartbeat", played_at + t * 1000, t, offline=True) for t in (10, 20, 30, 40)]
    clock.advance(9 * 86_400)  # reported a week after that, on reconnecting
    assert (await post(pb, events)).status == 202
    await drain(edge_app, clock)
    day = date(2023, 11, 16)
    assert session_store.inner.plays_by_day("trk1", DAY, date(2023, 12, 31)) == {day: 1}
    play = session_store.inner.session_telemetry(pb.doc["session_id"]).play
    assert play is not None and play.offline and play.played_ms == played_at + 30_000


async def test_session_end_exports_qoe(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    pb = await open_playback()
    now = int(clock() * 1000)
    events = [
        doc("play", now, 0, startup_ms=1500, bitrate_kbps=96, pathway="cdn-a"),
        doc("heartbeat", now + 10_000, 10),
        doc("stall_start", now + 12_000, 12),
        doc("stall_end", now + 14_000, 12),
        doc("bitrate_switch", now + 15_000, 13, bitrate_kbps=160, rendition="aac_160"),
        doc("error", now + 16_000, 14, code="frag_load_timeout", message="retried"),
        doc("end", now + 20_000, 18),
    ]
    assert (await post(pb, events)).status == 202
    assert (await post(pb, events[-1:])).status == 202  # a repeated end is not a second session
    await drain(edge_app, clock)
    text = await (await client.get("/metrics")).text()
    assert 'edge_track_sessions_ended_total{track_id="trk1"} 1.0' in text
    assert 'edge_qoe_startup_seconds_bucket{le="2.0",pathway="cdn-a"} 1.0' in text
    assert 'edge_qoe_bitrate_switches_total{pathway="cdn-a"} 1.0' in text
    assert 'edge_qoe_errors_total{fatal="false",pathway="cdn-a"} 1.0' in text
    assert 'edge_player_events_total{pathway="cdn-a",type="play"} 1.0' in text
    assert "edge_qoe_rebuffer_ratio_count" in text
    assert "edge_telemetry_queued 0.0" in text
    assert json.loads(json.dumps(events))  # the documented body shape is plain JSON


async def test_a_body_that_arrives_in_pieces_is_read_whole(
    client: Client, open_playback: OpenPlayback, clock: ManualClock
) -> None:
    pb = await open_playback()
    now = int(clock() * 1000)
    body = json.dumps({"events": [doc("heartbeat", now + n, n) for n in range(400)]}).encode()

    async def trickle() -> Any:
        for start in range(0, len(body), 1000):
            yield body[start : start + 1000]

    response = await client.post(
        f"/v1/sessions/{pb.doc['session_id']}/events",
        data=trickle(),
        headers={"Authorization": f"Bearer {pb.token}", "Content-Type": "application/json"},
    )
    assert response.status == 202, await response.text()
    assert (await response.json())["accepted"] == 400

    async def too_much() -> Any:
        for _ in range(70):
            yield b" " * 1000

    response = await client.post(
        f"/v1/sessions/{pb.doc['session_id']}/events",
        data=too_much(),
        headers={"Authorization": f"Bearer {pb.token}"},
    )
    assert response.status == 413


async def test_a_session_posting_more_than_a_player_would_gets_429_and_keeps_its_events(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    session_store: FlakyStore,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    from cdn_edge.policy.event_budget import EVENT_BURST, EVENT_RATE_PER_S

    pb = await open_playback()
    now = int(clock() * 1000)
    burst = [doc("heartbeat", now + i, i / 1000) for i in range(EVENT_BURST)]
    assert (await post(pb, burst)).status == 202  # an offline upload's worth at once
    more = [doc("heartbeat", now + EVENT_BURST + i, 1.0) for i in range(4)]
    refused = await post(pb, more)
    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(int(4 / EVENT_RATE_PER_S))
    assert "send them again" in (await refused.json())["message"]
    other = await open_playback()  # budgets are per session
    assert (await post(other, listening(clock, 10))).status == 202
    clock.advance(4 / EVENT_RATE_PER_S)
    assert (await post(pb, more)).status == 202  # the same events, later: all taken
    await drain(edge_app, clock)
    stored = session_store.inner.session_telemetry(pb.doc["session_id"]).events
    assert len(stored) == EVENT_BURST + 4


async def test_a_session_past_its_event_cap_gets_429_saying_so_with_a_long_retry_after(
    client: Client,
    open_playback: OpenPlayback,
    post: Post,
    edge_app: web.Application,
    clock: ManualClock,
) -> None:
    from cdn_edge.policy.event_budget import EVENT_BURST, EVENT_RATE_PER_S, SESSION_EVENT_CAP

    pb = await open_playback()
    now = int(clock() * 1000)
    for batch in range(SESSION_EVENT_CAP // EVENT_BURST):
        first = batch * EVENT_BURST
        events = [doc("heartbeat", now + first + i, (first + i) / 1000) for i in range(EVENT_BURST)]
        assert (await post(pb, events)).status == 202
        clock.advance(EVENT_BURST / EVENT_RATE_PER_S)
    # More than the total refilled meanwhile (about 5 events).
    late = [doc("heartbeat", now + SESSION_EVENT_CAP + i, 99.0 + i) for i in range(50)]
    refused = await post(pb, late)
    assert refused.status == 429
    assert int(refused.headers["Retry-After"]) > 3600
    body = await refused.json()
    assert f"has posted {SESSION_EVENT_CAP} events" in body["message"]
    assert "start a new session" in body["message"]
    refused_metric = edge_app[METRICS].telemetry.player_events_refused
    assert refused_metric.labels("session_cap")._value.get() == len(late)
    other = await open_playback()
    assert (await post(other, listening(clock, 10))).status == 202
