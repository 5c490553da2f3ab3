"""Plays made offline under a licence: counted once, on their own day, only while it held;
and the faults: a store outage during a grant or a play report loses nothing and half-writes
nothing."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from streamer.errors import StorageError
from streamer.offline.sqlite import SQLiteOfflineStore
from streamer.sessions.sqlite import SQLiteSessionStore
from tests.edge.conftest import START, ManualClock
from tests.edge.offline_device import auth, grant, new_device, register

DAY_S = 86_400


def _day(unix_s: float) -> date:
    return datetime.fromtimestamp(unix_s, UTC).date()


def play(play_id: str, licence_id: str, at_s: float, seconds: int = 40) -> dict[str, Any]:
    """A play as the device's player records it offline: start, then a heartbeat each 10 s."""
    at_ms = int(at_s * 1000)
    events = [
        {"event_id": f"{play_id}-0", "type": "play", "ts_ms": at_ms, "position_s": 0, "seq": 0}
    ]
    for n in range(1, seconds // 10 + 1):
        events.append(
            {
                "event_id": f"{play_id}-{n}",
                "type": "heartbeat",
                "ts_ms": at_ms + n * 10_000,
                "position_s": n * 10,
                "seq": n,
                "offline": True,
            }
        )
    return {"play_id": play_id, "licence_id": licence_id, "events": events}


async def _report(dl: TestClient, token: str, device_id: str, *plays: dict[str, Any]) -> Any:
    response = await dl.post(
        f"/v1/devices/{device_id}/plays", json={"plays": list(plays)}, headers=auth(token)
    )
    return response.status, await response.json()


@pytest.fixture
async def licensed(dl: TestClient, listener_token: Callable[..., str]) -> tuple[str, str, str]:
    """(listener token, device id, licence id), granted at START."""
    token = listener_token("premium", ttl_s=90 * DAY_S)
    status, device = await register(dl, token, new_device())
    assert status == 201, device
    status, issued = await grant(dl, token, device["device_id"])
    assert status == 201, issued
    return token, device["device_id"], issued["licence"]["licence_id"]


async def test_offline_plays_count_once_on_their_own_day(
    dl: TestClient,
    licensed: tuple[str, str, str],
    clock: ManualClock,
    session_store: SQLiteSessionStore,
) -> None:
    token, device_id, licence_id = licensed
    day1, day2 = START + 1 * DAY_S, START + 2 * DAY_S
    clock.advance(5 * DAY_S)  # the device comes back online five days later
    status, doc = await _report(
        dl, token, device_id, play("p1", licence_id, day1), play("p2", licence_id, day2)
    )
    assert status == 200, doc
    assert doc["counted"] == [
        {"play_id": "p1", "day": _day(day1 + 40).isoformat()},
        {"play_id": "p2", "day": _day(day2 + 40).isoformat()},
    ]
    status, again = await _report(dl, token, device_id, play("p1", licence_id, day1))
    assert (status, again["counted"], again["already_counted"]) == (200, [], ["p1"])
    counts = session_store.plays_by_day("trk1", _day(START), _day(clock()))
    assert counts == {_day(day1 + 40): 1, _day(day2 + 40): 1}


async def test_a_play_below_the_threshold_is_not_a_play(
    dl: TestClient, licensed: tuple[str, str, str], clock: ManualClock
) -> None:
    token, device_id, licence_id = licensed
    clock.advance(DAY_S)
    status, doc = await _report(dl, token, device_id, play("p1", licence_id, START + 60, 20))
    assert status == 200
    assert [r["reason"] for r in doc["refused"]] == ["below_threshold"]


async def test_plays_after_revocation_or_expiry_do_not_count(
    dl: TestClient,
    licensed: tuple[str, str, str],
    clock: ManualClock,
    session_store: SQLiteSessionStore,
) -> None:
    token, device_id, licence_id = licensed
    clock.advance(2 * DAY_S)
    response = await dl.delete(
        f"/v1/devices/{device_id}/licences/{licence_id}", headers=auth(token)
    )
    assert response.status == 200
    revoked_at = clock()
    clock.advance(DAY_S)
    status, doc = await _report(
        dl,
        token,
        device_id,
        play("before", licence_id, revoked_at - 3600),
        play("after", licence_id, revoked_at + 3600),
        play("expired", licence_id, START + 31 * DAY_S),  # also "in the future" here
    )
    assert status == 200, doc
    assert [c["play_id"] for c in doc["counted"]] == ["before"]
    reasons = {r["play_id"]: r["reason"] for r in doc["refused"]}
    assert reasons["after"] == "licence_not_valid_at_play"
    assert reasons["expired"] in ("licence_not_valid_at_play", "offline_window")
    counts = session_store.plays_by_day("trk1", _day(START), _day(clock()))
    assert sum(counts.values()) == 1


async def test_a_play_under_an_expired_licence_does_not_count(
    dl: TestClient, licensed: tuple[str, str, str], clock: ManualClock
) -> None:
    token, device_id, licence_id = licensed
    clock.advance(30 * DAY_S + 2 * 3600)  # the device plays on after expiry, then reports
    status, doc = await _report(dl, token, device_id, play("late", licence_id, clock() - 3600))
    assert status == 200
    assert [r["reason"] for r in doc["refused"]] == ["licence_not_valid_at_play"]
    assert "did not hold" in doc["refused"][0]["message"]


async def test_plays_made_while_premium_count_after_the_subscription_lapsed(
    dl: TestClient,
    licensed: tuple[str, str, str],
    clock: ManualClock,
    listener_token: Callable[..., str],
) -> None:
    _, device_id, licence_id = licensed
    clock.advance(DAY_S)
    free = listener_token("free")
    status, doc = await _report(dl, free, device_id, play("p1", licence_id, START + 3600))
    assert (status, len(doc["counted"])) == (200, 1), doc


async def test_another_devices_licence_does_not_count_here(
    dl: TestClient, licensed: tuple[str, str, str], clock: ManualClock
) -> None:
    token, _, licence_id = licensed
    status, other = await register(dl, token, new_device())
    clock.advance(DAY_S)
    status, doc = await _report(dl, token, other["device_id"], play("p1", licence_id, START + 3600))
    assert (status, [r["reason"] for r in doc["refused"]]) == (200, ["licence_not_yours"])


async def test_plays_sent_during_a_store_outage_are_not_lost(
    dl: TestClient,
    licensed: tuple[str, str, str],
    clock: ManualClock,
    session_store: SQLiteSessionStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    token, device_id, licence_id = licensed
    clock.advance(DAY_S)
    plays = (play("p1", licence_id, START + 3600), play("p2", licence_id, START + 7200))

    def down(*_: object) -> None:
        raise StorageError("session store down (injected)")

    with monkeypatch.context() as outage:
        outage.setattr(session_store, "claim_plays", down)
        response = await dl.post(
            f"/v1/devices/{device_id}/plays", json={"plays": list(plays)}, headers=auth(token)
        )
        assert response.status == 503
        assert response.headers["Retry-After"]
    # Not acknowledged, so the device keeps them and sends them again once the store is back.
    status, doc = await _report(dl, token, device_id, *plays)
    assert (status, [c["play_id"] for c in doc["counted"]]) == (200, ["p1", "p2"])
    counts = session_store.plays_by_day("trk1", _day(START), _day(clock()))
    assert counts == {_day(START + 3640): 1, _day(START + 7240): 1}  # 23:14 and 00:14 UTC


async def test_a_grant_that_fails_half_way_writes_nothing_and_hands_out_nothing(
    dl: TestClient,
    listener_token: Callable[..., str],
    offline_store: SQLiteOfflineStore,
) -> None:
    token = listener_token("premium")
    _, device = await register(dl, token, new_device())
    # A real failure inside the grant's transaction, after the licence row is inserted: the
    # index insert aborts, as a full disk or a lost lock would.
    with contextlib.closing(sqlite3.connect(offline_store.path)) as db, db:
        db.execute(
            "CREATE TRIGGER fail_index BEFORE INSERT ON offline_licences_by_device"
            " BEGIN SELECT RAISE(ABORT, 'disk I/O error (injected)'); END"
        )
    status, doc = await grant(dl, token, device["device_id"])
    assert status == 503, doc
    assert "licence" not in doc and "keys" not in str(doc)
    with contextlib.closing(sqlite3.connect(offline_store.path)) as db:
        assert db.execute("SELECT count(*) FROM offline_licences").fetchone() == (0,)
    with contextlib.closing(sqlite3.connect(offline_store.path)) as db, db:
        db.execute("DROP TRIGGER fail_index")
    status, doc = await grant(dl, token, device["device_id"])
    assert status == 201, doc


async def test_a_closed_store_is_a_clear_503(
    dl: TestClient, listener_token: Callable[..., str], offline_store: SQLiteOfflineStore
) -> None:
    token = listener_token("premium")
    _, device = await register(dl, token, new_device())
    offline_store.close()
    status, doc = await grant(dl, token, device["device_id"])
    assert status == 503, doc
    assert doc["error"] == "storage_error"


async def test_malformed_play_reports_are_400s_naming_the_field(
    dl: TestClient, licensed: tuple[str, str, str]
) -> None:
    token, device_id, licence_id = licensed
    bad_bodies: list[tuple[Any, str]] = [
        ({"plays": "x"}, "plays"),
        ({"plays": [{"play_id": "p1", "licence_id": licence_id, "events": 7}]}, "plays[0].events"),
        ({"plays": [{"play_id": "p 1", "licence_id": licence_id, "events": []}]}, "plays[0]"),
        (
            {"plays": [{"play_id": "p1", "licence_id": licence_id, "events": [{"type": "x"}]}]},
            "plays[0].events[0].type",
        ),
    ]
    for body, field in bad_bodies:
        response = await dl.post(f"/v1/devices/{device_id}/plays", json=body, headers=auth(token))
        doc = await response.json()
        assert (response.status, doc["error"]) == (400, "invalid_field"), (body, doc)
        assert doc["message"].startswith(field + ":"), doc


async def test_a_removed_device_still_reports_the_plays_it_made_before(
    dl: TestClient, licensed: tuple[str, str, str], clock: ManualClock
) -> None:
    token, device_id, licence_id = licensed
    clock.advance(DAY_S)
    removed_at = clock()
    response = await dl.delete(f"/v1/devices/{device_id}", headers=auth(token))
    assert response.status == 204
    clock.advance(DAY_S)
    status, doc = await _report(
        dl,
        token,
        device_id,
        play("before", licence_id, removed_at - 3600),
        play("after", licence_id, removed_at + 3600),
    )
    assert status == 200, doc
    assert [c["play_id"] for c in doc["counted"]] == ["before"]
    assert [r["reason"] for r in doc["refused"]] == ["licence_not_valid_at_play"]


async def test_another_listener_cannot_report_plays_on_a_licence(
    dl: TestClient,
    licensed: tuple[str, str, str],
    clock: ManualClock,
    listener_token: Callable[..., str],
) -> None:
    _, device_id, licence_id = licensed
    clock.advance(DAY_S)
    stranger = listener_token("premium", user="u2")
    status, doc = await _report(dl, stranger, device_id, play("p1", licence_id, START + 3600))
    assert (status, [r["reason"] for r in doc["refused"]]) == (200, ["licence_not_yours"])
