"""hls.js in headless Chromium: Content Steering failover and CMCD, against real `streamer serve`.

Edge A serves the player page, sessions, keys and steering; edge B, over the same data
directory (same objects, same secrets), is A's CDN pathway "cdn-b" and comes first for the
session's region. hls.js plays through B's media playlists and segments; B is killed mid-play,
and playback must go on through A ("edge") while A's steering moves "cdn-b" last. The second
test plays with hls.js's CMCD on and checks what the edge filed under the session: CMCD
samples and the player's events, summed up as QoE.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from streamer.sessions.port import SESSION_STORE_FILE
from streamer.sessions.sqlite import SQLiteSessionStore
from tests.e2e.conftest import (
    WEB_DIR,
    free_port,
    get_json,
    run_streamer,
    streamer_env,
    streamer_process,
)
from tests.e2e.test_browser import CHROMIUM, DRIVER, require_browser_tools
from tests.masters import make_master

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(90)]

MASTER_S = 36.0  # 6 s segments: enough left after the failover to play 8 s more
TRACK_ID = "STEERING-E2E"
STEERING_TTL_S = 2
BUFFER_S = 6  # the page's ?buffer=: hls.js holds a segment or so ahead, not the whole track
BEFORE_STOP_S = 2.0  # played from B before it is killed
AFTER_STOP_S = 12.0  # at least 8 s, and past what hls.js had buffered from B (two segments)
CMCD_PLAYED_S = 10.0
PLAY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Library:
    root: Path
    data_dir: Path
    token: str  # a free-tier listener in region SE (the `streamer token` default)


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Library:
    require_browser_tools()
    root = tmp_path_factory.mktemp("browser-steering")
    data_dir = root / "data"
    env = streamer_env(data_dir)
    master = make_master(root / "master.flac", seconds=MASTER_S)
    run_streamer(["ingest", str(master), "--track-id", TRACK_ID, "--json"], env, timeout_s=90)
    token = run_streamer(["token", "--tier", "free", "--user", "steering"], env, 30).strip()
    return Library(root, data_dir, token)


def _page(base_url: str, token: str, **extra: str) -> str:
    params = {"track": TRACK_ID, "token": token, "codecs": "mp4a.40.2", **extra}
    return f"{base_url}/?{urlencode(params)}"


def _driver(config: dict[str, Any], **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["node", str(DRIVER)],
        cwd=WEB_DIR,
        env={**os.environ, "PLAY_CONFIG": json.dumps({"chromium": str(CHROMIUM), **config})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def _result(driver: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    out, err = driver.communicate(timeout=timeout_s)
    assert driver.returncode == 0, f"play.mjs exited {driver.returncode}: {err[-3000:]}"
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])["results"][0]
    return result


def _steering_priority(steering_url: str, pathway: str) -> list[str]:
    query = urlencode({"_HLS_pathway": pathway, "_HLS_throughput": "2400000"})
    doc = get_json(f"{steering_url.split('?')[0]}?{query}")
    assert isinstance(doc, dict)
    return list(doc["PATHWAY-PRIORITY"])


@dataclass(frozen=True)
class TwoEdges:
    a: str
    b: str
    b_process: subprocess.Popen[bytes]


@pytest.fixture
def two_edges(library: Library) -> Iterator[TwoEdges]:
    port_a, port_b = free_port(), free_port()
    a, b = f"http://127.0.0.1:{port_a}", f"http://127.0.0.1:{port_b}"
    # As tests/steering/test_two_edges.py: each the other's pathway; B is Sweden's CDN.
    env_a = streamer_env(
        library.data_dir,
        public_url=a,
        pathways=json.dumps([{"id": "cdn-b", "base_url": b, "regions": ["SE"]}]),
        steering_ttl_s=str(STEERING_TTL_S),
    )
    env_b = streamer_env(
        library.data_dir,
        public_url=b,
        pathways=json.dumps([{"id": "cdn-a", "base_url": a}]),
        steering_ttl_s=str(STEERING_TTL_S),
    )
    serve = ["serve", "--host", "127.0.0.1", "--port"]
    with (
        streamer_process([*serve, str(port_b)], env_b, library.root / "serve-b.log", b) as bp,
        streamer_process([*serve, str(port_a)], env_a, library.root / "serve-a.log", a),
    ):
        yield TwoEdges(a, b, bp)


def test_hls_js_fails_over_when_the_steered_pathway_dies(
    library: Library, two_edges: TwoEdges
) -> None:
    a, b = two_edges.a, two_edges.b
    config = {
        "cases": [{"name": "steer", "url": _page(a, library.token, buffer=str(BUFFER_S))}],
        "allowOrigins": [b],
        "minSeconds": BEFORE_STOP_S,
        "afterSignalSeconds": AFTER_STOP_S,
        "timeoutMs": int(PLAY_TIMEOUT_S * 1000),
    }
    driver = _driver(config, stdin=subprocess.PIPE)
    try:
        assert driver.stdout is not None and driver.stdin is not None
        line = driver.stdout.readline()  # play.mjs's watchdog bounds the wait
        assert line, (
            f"play.mjs ended early: {driver.stderr.read()[-3000:] if driver.stderr else ''}"
        )
        reached = json.loads(line)
        assert "reached" in reached, line
        state, requests = reached["state"], reached["requests"]
        assert state["fatalError"] is None, line
        # The session starts on B: its segments came from B's origin, keys from A.
        assert state["pathway"] == "cdn-b", line
        assert requests["segmentsByOrigin"].get(b, 0) >= 1, line
        steering_url = requests["steeringUrl"]
        assert steering_url.startswith(f"{a}/v1/steer/")
        assert _steering_priority(steering_url, "cdn-b") == ["cdn-b", "edge"]

        two_edges.b_process.kill()  # B dies at once, mid-play
        two_edges.b_process.wait(timeout=5)
        stopped = time.monotonic()
        driver.stdin.write("stopped\n")
        driver.stdin.flush()
        result = _result(driver, PLAY_TIMEOUT_S + 30)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    summary = json.dumps(result, indent=1)[:6000]
    state, signal = result["state"], result["signal"]
    assert result["outcome"] == "played", summary
    assert state["fatalError"] is None, summary
    assert state["currentTime"] >= signal["currentTime"] + AFTER_STOP_S, summary
    # ... beyond all that was buffered from B when it died: audio from A has played too.
    assert state["currentTime"] > signal["bufferedEnd"], summary
    # After B died, segments came from A, the "edge" pathway, and nothing from B succeeded.
    by_origin_before = signal["requests"]["segmentsByOrigin"]
    by_origin = result["requests"]["segmentsByOrigin"]
    assert by_origin.get(a, 0) > by_origin_before.get(a, 0), summary
    assert state["pathway"] == "edge", summary
    assert result["failed"] == [] and result["blocked"] == [], summary
    unexpected = [e for e in result["pageErrors"] if "ERR_CONNECTION_REFUSED" not in e]
    assert unexpected == [], summary

    # A's probes found B dead: its steering lists "cdn-b" last, whatever the player reports.
    deadline = stopped + 3 * STEERING_TTL_S
    while (priority := _steering_priority(steering_url, "edge")) != ["edge", "cdn-b"]:
        assert time.monotonic() < deadline, priority
        time.sleep(0.2)
    assert _steering_priority(steering_url, "cdn-b") == ["edge", "cdn-b"]


@pytest.fixture
def one_edge(library: Library) -> Iterator[str]:
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = streamer_env(library.data_dir, public_url=base_url)
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    with streamer_process(serve, env, library.root / "serve-cmcd.log", base_url):
        yield base_url


def test_hls_js_cmcd_and_player_events_reach_the_session(library: Library, one_edge: str) -> None:
    config = {
        "cases": [{"name": "cmcd", "url": _page(one_edge, library.token, cmcd="1")}],
        "minSeconds": CMCD_PLAYED_S,
        "endPlayback": True,
        "timeoutMs": int(PLAY_TIMEOUT_S * 1000),
    }
    result = _result(_driver(config), PLAY_TIMEOUT_S + 40)
    summary = json.dumps(result, indent=1)[:6000]
    state = result["state"]
    assert result["outcome"] == "played", summary
    assert state["fatalError"] is None and state["currentTime"] >= CMCD_PLAYED_S, summary
    assert state["status"] == "ended" and state["eventErrors"] == [], summary
    assert state["eventsSent"] >= 3, summary  # play, a heartbeat at 10 s, end
    assert result["failed"] == [] and result["pageErrors"] == [], summary
    session_id = state["sessionId"]
    session_token = urlsplit(result["requests"]["playlistUrl"]).path.split("/")[3]

    # Telemetry is written behind the requests: wait for the end event to be stored.
    qoe_url = f"{one_edge}/v1/sessions/{session_id}/qoe"
    deadline = time.monotonic() + 10
    while True:
        request = urllib.request.Request(
            qoe_url, headers={"Authorization": f"Bearer {session_token}"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            report = json.load(response)
        if report["qoe"]["ended"] and report["cmcd_samples"] > 0:
            break
        assert time.monotonic() < deadline, report
        time.sleep(0.2)
    qoe = report["qoe"]
    assert report["events"] >= 3 and report["segments_delivered"] >= 2, report
    assert qoe["played_s"] >= CMCD_PLAYED_S - 1, report
    assert qoe["startup_s"] is not None and qoe["fatal_errors"] == 0, report
    assert qoe["average_bitrate_kbps"] is not None, report

    # The samples themselves, in the store's file: hls.js's CMCD keys, for this session.
    telemetry = SQLiteSessionStore(library.data_dir / SESSION_STORE_FILE).session_telemetry(
        session_id
    )
    assert len(telemetry.cmcd) == report["cmcd_samples"]
    routes = {sample.route for sample in telemetry.cmcd}
    assert {"playlist", "segment"} <= routes, routes
    segments = [s for s in telemetry.cmcd if s.route == "segment"]
    for sample in segments:
        assert sample.keys.get("sid") == session_id, sample
        assert sample.keys.get("cid") == TRACK_ID, sample
        assert sample.keys.get("sf") == "h" and sample.keys.get("ot") in ("i", "a"), sample
        assert sample.status == 200, sample
    media = [s for s in segments if s.keys.get("ot") == "a"]
    assert len(media) >= 2 and all(isinstance(s.keys.get("br"), int) for s in media), segments
    assert any(isinstance(s.keys.get("bl"), int) for s in media), media
    assert {e.type for e in telemetry.events} >= {"play", "heartbeat", "end"}
