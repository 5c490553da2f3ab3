"""POST /v1/sessions over HTTP: auth, validation, negotiation, recording, CORS."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import jwt
import pytest

from cdn_edge.listener_auth import LISTENER_AUDIENCE
from cdn_edge.state import METRICS, SESSIONS
from streamer.errors import StorageError
from streamer.sessions.port import PlaybackSession
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings
from tests.edge.conftest import ALL_CODECS, Client, ManualClock, path_of

OpenSession = Callable[..., Awaitable[dict[str, Any]]]


async def test_session_created(
    client: Client,
    open_session: OpenSession,
    settings: Settings,
    session_store: SQLiteSessionStore,
    clock: ManualClock,
) -> None:
    doc = await open_session("premium", codecs=["mp4a.40.2"])
    assert doc["playlist_url"].startswith(f"{settings.base_url}/v1/s/")
    assert doc["playlist_url"].endswith("/main.m3u8")
    assert doc["variants"] == ["aac_256", "aac_160", "aac_96"]
    assert doc["start_variant"]["rendition"] == "aac_256"
    assert doc["start_variant"]["codecs"] == "mp4a.40.2"
    assert doc["loudness"]["gain_db"] == -4.5
    assert doc["loudness"]["target_lufs"] == -14.0
    assert doc["loudness"]["gain_linear"] == pytest.approx(10 ** (-4.5 / 20))
    assert doc["track"] == {"track_id": "trk1", "version": "v1", "duration_s": 24.0}
    assert doc["expires_in_s"] > 4 * 3600
    assert doc["expires_at"].endswith("Z")
    await client.app[SESSIONS].drain()  # recorded behind the response
    recorded = session_store.get_session(doc["session_id"])
    assert recorded is not None
    assert (recorded.user_id, recorded.tier, recorded.track_id) == ("u1", "premium", "trk1")
    assert recorded.variants == ("aac_256", "aac_160", "aac_96")
    assert recorded.device == {"codecs": ["mp4a.40.2"]}
    assert recorded.created_at == int(clock())
    response = await client.get(path_of(settings, doc["playlist_url"]))
    assert response.status == 200


async def test_cellular_session_is_capped(open_session: OpenSession) -> None:
    doc = await open_session("premium", network="cellular")
    assert doc["variants"] == ["opus_96", "opus_32", "aac_96"]
    assert doc["start_variant"]["rendition"] == "opus_96"


def _jwt(key: bytes, now: float, **overrides: Any) -> str:
    claims: dict[str, Any] = {"sub": "u1", "tier": "free", "region": "SE", "aud": LISTENER_AUDIENCE}
    claims["exp"] = int(now) + 600
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, key, algorithm="HS256")


@pytest.mark.parametrize(
    "case", ["missing", "expired", "forged", "wrong_audience", "no_tier", "basic", "garbage"]
)
async def test_bad_listener_tokens_get_401_json(
    client: Client, edge_secrets: Any, clock: ManualClock, case: str
) -> None:
    key = edge_secrets.platform_key
    headers = {
        "missing": {},
        "expired": {"Authorization": f"Bearer {_jwt(key, clock() - 7200)}"},
        "forged": {"Authorization": f"Bearer {_jwt(b'f' * 32, clock())}"},
        "wrong_audience": {"Authorization": f"Bearer {_jwt(key, clock(), aud='billing')}"},
        "no_tier": {"Authorization": f"Bearer {_jwt(key, clock(), tier=None)}"},
        "basic": {"Authorization": "Basic dXNlcjpwYXNz"},
        "garbage": {"Authorization": "Bearer e30.e30.e30"},
    }[case]
    response = await client.post(
        "/v1/sessions", json={"track_id": "trk1", "device": {"codecs": ALL_CODECS}}, headers=headers
    )
    assert response.status == 401
    assert response.content_type == "application/json"
    body = await response.json()
    assert body["error"] == "unauthorized"
    assert "playlist_url" not in body
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.headers["Access-Control-Allow-Origin"] == "*"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body"),
        (b"[1, 2]", "body"),
        (b"{}", "track_id"),
        (b'{"track_id": 7, "device": {"codecs": ["opus"]}}', "track_id"),
        (b'{"track_id": "../etc", "device": {"codecs": ["opus"]}}', "track_id"),
        (b'{"track_id": "trk1"}', "device"),
        (b'{"track_id": "trk1", "device": []}', "device"),
        (b'{"track_id": "trk1", "device": {}}', "device.codecs"),
        (b'{"track_id": "trk1", "device": {"codecs": []}}', "device.codecs"),
        (b'{"track_id": "trk1", "device": {"codecs": "opus"}}', "device.codecs"),
        (b'{"track_id": "trk1", "device": {"codecs": [1]}}', "device.codecs"),
        (
            b'{"track_id": "trk1", "device": {"codecs": ["opus"], "max_bitrate_kbps": 0}}',
            "device.max_bitrate_kbps",
        ),
        (
            b'{"track_id": "trk1", "device": {"codecs": ["opus"], "max_bitrate_kbps": true}}',
            "device.max_bitrate_kbps",
        ),
        (
            b'{"track_id": "trk1", "device": {"codecs": ["opus"], "network": "5g"}}',
            "device.network",
        ),
        (
            b'{"track_id": "trk1", "device": {"codecs": ["opus"], "save_data": "yes"}}',
            "device.save_data",
        ),
    ],
)
async def test_malformed_bodies_name_the_field(
    client: Client, listener_token: Callable[..., str], body: bytes, field: str
) -> None:
    response = await client.post(
        "/v1/sessions",
        data=body,
        headers={"Authorization": f"Bearer {listener_token()}", "Content-Type": "application/json"},
    )
    assert response.status == 400
    doc = await response.json()
    assert doc["error"] == "invalid_field"
    assert doc["message"].startswith(f"{field}:")


async def test_oversized_body(client: Client, listener_token: Callable[..., str]) -> None:
    response = await client.post(
        "/v1/sessions",
        data=b"{" + b" " * 20_000 + b"}",
        headers={"Authorization": f"Bearer {listener_token()}"},
    )
    assert response.status == 413
    assert (await response.json())["error"] == "payload_too_large"


async def test_unknown_track_is_404(client: Client, listener_token: Callable[..., str]) -> None:
    response = await client.post(
        "/v1/sessions",
        json={"track_id": "nope", "device": {"codecs": ["opus"]}},
        headers={"Authorization": f"Bearer {listener_token()}"},
    )
    assert response.status == 404
    assert (await response.json())["error"] == "track_not_found"


async def test_session_store_failure_does_not_fail_playback(
    client: Client,
    open_session: OpenSession,
    session_store: SQLiteSessionStore,
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
) -> None:
    def broken(session: object) -> None:
        raise StorageError("database is locked")

    monkeypatch.setattr(session_store, "record_session", broken)
    doc = await open_session("free")
    assert (await client.get(path_of(settings, doc["playlist_url"]))).status == 200
    await client.app[SESSIONS].drain()
    assert session_store.get_session(doc["session_id"]) is None
    metrics = client.app[METRICS]
    assert metrics.session_store_failures._value.get() == 1


async def test_cors_preflight(client: Client) -> None:
    response = await client.options(
        "/v1/sessions",
        headers={
            "Origin": "https://player.example.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status == 204
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed and "range" in allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0


async def test_cors_headers_on_success(open_session: OpenSession, client: Client) -> None:
    response = await client.post("/v1/sessions", headers={"Origin": "https://a.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "X-Request-Id" in response.headers["Access-Control-Expose-Headers"]


async def test_slow_session_store_does_not_hold_playback(
    client: Client,
    open_session: OpenSession,
    session_store: SQLiteSessionStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    import cdn_edge.telemetry.session_recorder

    release = threading.Event()

    def hung(session: object) -> None:
        release.wait(timeout=5)

    monkeypatch.setattr(cdn_edge.telemetry.session_recorder, "RECORD_TIMEOUT_S", 0.2)
    monkeypatch.setattr(session_store, "record_session", hung)
    try:
        started = time.monotonic()
        doc = await open_session("free")  # answered while the store hangs
        assert time.monotonic() - started < 0.2
        assert doc["session_id"]
        metrics = client.app[METRICS]
        assert metrics.session_store_failures._value.get() == 0
        await client.app[SESSIONS].drain()
        assert metrics.session_store_failures._value.get() == 1  # timed out, counted
    finally:
        release.set()


async def test_session_records_queue_is_bounded(
    client: Client,
    open_session: OpenSession,
    session_store: SQLiteSessionStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import threading

    release = threading.Event()
    written: list[str] = []

    def slow(session: PlaybackSession) -> None:
        release.wait(timeout=5)
        written.append(session.session_id)

    monkeypatch.setattr(session_store, "record_session", slow)
    monkeypatch.setattr(client.app[SESSIONS], "_queue_limit", 2)
    docs = [await open_session("free") for _ in range(4)]  # one being written, two queued
    metrics = client.app[METRICS]
    assert metrics.session_store_failures._value.get() == 1  # the fourth: dropped, counted
    release.set()
    await client.app[SESSIONS].drain()
    assert written == [doc["session_id"] for doc in docs[:3]]
