"""The offline download endpoints, driven over a socket with hostile bodies built around real
devices, licences and tokens (cdn_edge.handlers.downloads).

The property: never a 5xx, never an error logged, and every 4xx is JSON with an `error` code.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from cdn_edge.playback.offline_licences import b64url
from drm import KeyRing, new_device_keypair, new_kek
from streamer.objects.memory import InMemoryObjectStore
from streamer.offline.sqlite import SQLiteOfflineStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import load_settings
from streamer.token_secrets import derive_secrets
from tests.edge.builders import build_track, publish
from tests.fuzz.counting import SCALES, budget, tried
from tests.fuzz.strategies import JSON, SCALARS, mutated
from tests.security.raw_http import Reply, build_request, send
from tests.security.world import live_edge

EXAMPLES = 200


def _post(port: int, path: str, token: str, doc: Any) -> Reply:
    body = json.dumps(doc).encode()
    headers = [("Authorization", f"Bearer {token}"), ("Content-Type", "application/json")]
    return send("127.0.0.1", port, build_request("POST", path, headers, body))


@pytest.mark.parametrize("scale", SCALES)
def test_download_endpoints(tmp_path: Path, scale: int, caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(environ={}, data_dir=tmp_path / "data")
    kek = new_kek("kek-fuzz")
    ring = KeyRing(kek.kek_id, (kek,))
    objects = InMemoryObjectStore()
    publish(objects, build_track(ring, "trk1", "v1"))
    secrets = derive_secrets(b"fuzz-secret-" + b"x" * 32)
    now = time.time()
    premium = issue_listener_token(secrets.platform_key, "u1", "premium", "SE", 3600, now)
    free = issue_listener_token(secrets.platform_key, "u1", "free", "SE", 3600, now)

    def make_app() -> Any:
        return create_app(
            settings,
            objects,
            SQLiteSessionStore(tmp_path / "sessions.sqlite3"),
            ring,
            secrets=secrets,
            hls_dir=tmp_path / "hls",
            offline_store=SQLiteOfflineStore(tmp_path / "offline.sqlite3"),
        )

    with live_edge(make_app) as port, caplog.at_level(logging.ERROR):
        _, public = new_device_keypair()
        reply = _post(port, "/v1/devices", premium, {"public_key": b64url(public)})
        assert reply.status == 201, reply
        device_id = json.loads(reply.body)["device_id"]
        reply = _post(port, f"/v1/devices/{device_id}/licences", premium, {"track_id": "trk1"})
        assert reply.status == 201, reply
        issued = json.loads(reply.body)
        licence_id = issued["licence"]["licence_id"]
        valid_play = {
            "play_id": "p1",
            "licence_id": licence_id,
            "events": [
                {"event_id": "e0", "type": "play", "ts_ms": int(now * 1000), "position_s": 0},
                {"event_id": "e1", "type": "heartbeat", "ts_ms": int(now * 1000) + 40_000,
                 "position_s": 40, "offline": True},
            ],
        }  # fmt: skip
        routes: list[tuple[str, st.SearchStrategy[Any]]] = [
            ("/v1/devices", mutated(st.just({"public_key": b64url(public), "name": "x"})) | JSON),
            (f"/v1/devices/{device_id}/licences", mutated(st.just({"track_id": "trk1"})) | JSON),
            (
                f"/v1/devices/{device_id}/licences/{licence_id}/renew",
                mutated(st.just({"licence": issued["licence"], "signature": issued["signature"]}))
                | st.builds(
                    lambda lic: {"licence": lic, "signature": issued["signature"]},
                    mutated(st.just(issued["licence"])),
                ),
            ),
            (
                f"/v1/devices/{device_id}/plays",
                st.builds(
                    lambda plays: {"plays": plays},
                    st.lists(mutated(st.just(valid_play)), max_size=3),
                )
                | st.builds(
                    lambda events: {"plays": [dict(valid_play, events=events)]},
                    st.lists(mutated(st.just(valid_play["events"][1])) | SCALARS, max_size=4),
                )
                | JSON,
            ),
        ]  # fmt: skip

        tokens = st.sampled_from([premium, free])
        requests = st.one_of(*(st.tuples(st.just(path), body, tokens) for path, body in routes))

        @budget(EXAMPLES, scale)
        @given(requests)
        def property_(request: tuple[str, Any, str]) -> None:
            path, doc, token = request
            tried("offline download bodies (devices, licences, renewals, plays)")
            try:
                reply = _post(port, path, token, doc)
            except (TypeError, ValueError):  # a body json cannot encode: nothing to send
                return
            assert reply.status < 500, (path, doc, reply)
            if reply.status >= 400:
                assert "error" in json.loads(reply.body), (path, doc, reply)

        property_()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]
