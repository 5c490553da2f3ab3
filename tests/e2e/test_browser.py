"""hls.js in headless Chromium plays encrypted sessions from a real `streamer serve`.

A 25 s master is ingested with `streamer ingest` into the server's own data directory; the
server runs as a subprocess on a free loopback port; tests/e2e/play.mjs drives Debian's
Chromium through playwright-core to the player page, once per codec, all at once, and reports
`window.playerState` with the requests it saw. Chromium reaches nothing but that port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import (
    REPO,
    WEB_DIR,
    free_port,
    run_streamer,
    streamer_env,
    streamer_process,
)
from tests.masters import make_master

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(120)]

CHROMIUM = Path("/usr/bin/chromium")
DRIVER = REPO / "tests" / "e2e" / "play.mjs"
MASTER_S = 25.0
TRACK_ID = "BROWSER-E2E"
MIN_PLAYED_S = 10.0
NGINX_LOG_FLUSH_WAIT_S = 3.0  # the tier's access log is flushed at least every second
PLAY_TIMEOUT_S = 45.0  # per case, from page load to 10 s played; they run side by side


@dataclass(frozen=True)
class Case:
    name: str
    tier: str
    codecs: str  # the page's ?codecs=, the device codec list of the session
    variant: str  # the rendition hls.js must play
    codec: str  # its CODECS string as hls.js reports it
    pin: bool = False  # ?variant=: FLAC is never the start variant, so pin it


CASES = (
    Case("aac", "free", "mp4a.40.2", "aac_160", "mp4a.40.2"),
    Case("opus", "free", "opus", "opus_160", "opus"),
    Case("flac", "premium", "fLaC", "flac", "fLaC", pin=True),
)


@dataclass(frozen=True)
class Server:
    base_url: str
    data_dir: Path
    tokens: dict[str, str]  # tier -> listener token


def _missing_tools() -> str | None:
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is not installed (apt-get install chromium; ./dev test does)"
    if shutil.which("node") is None:
        return "node is not installed"
    if not (WEB_DIR / "node_modules" / "playwright-core").is_dir():
        return "web/node_modules has no playwright-core (./dev setup runs npm ci)"
    return None


def require_browser_tools() -> None:
    """Skip where the browser tools are missing, except under ./dev test (CI), where it fails."""
    missing = _missing_tools()
    if missing and os.environ.get("STREAMER_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test cannot run: {missing}", pytrace=False)
    if missing:
        pytest.skip(missing)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser_tools()
    root = tmp_path_factory.mktemp("browser")
    data_dir = root / "data"
    # A key per two segments: 25 s of audio in 6 s segments play through three keys.
    env = streamer_env(data_dir, key_rotation_segments="2")
    master = make_master(root / "master.flac", seconds=MASTER_S)
    metadata = root / "metadata.json"
    metadata.write_text(json.dumps({"title": "Browser test tones"}))
    run_streamer(
        ["ingest", str(master), "--track-id", TRACK_ID, "--metadata", str(metadata), "--json"],
        env,
        timeout_s=90,
    )
    tokens = {
        tier: run_streamer(["token", "--tier", tier, "--user", f"browser-{tier}"], env, 30).strip()
        for tier in ("free", "premium")
    }
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    # Segments through the nginx tier, as `streamer serve` runs it wherever nginx is installed.
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--segments", "nginx"]
    with streamer_process(serve, env, root / "serve.log", base_url):
        yield Server(base_url, data_dir, tokens)


def play_in_chromium(
    cases: list[dict[str, str]],
    *,
    min_seconds: float = MIN_PLAYED_S,
    timeout_s: float = PLAY_TIMEOUT_S,
    run_timeout_s: float | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Run tests/e2e/play.mjs on `cases`; `options` are its other PLAY_CONFIG keys."""
    config = {
        "cases": cases,
        "minSeconds": min_seconds,
        "timeoutMs": int(timeout_s * 1000),
        "chromium": str(CHROMIUM),
        **options,
    }
    done = subprocess.run(
        ["node", str(DRIVER)],
        cwd=WEB_DIR,
        env={**os.environ, "PLAY_CONFIG": json.dumps(config)},
        capture_output=True,
        text=True,
        timeout=run_timeout_s or timeout_s + 40,
    )
    assert done.returncode == 0, f"play.mjs exited {done.returncode}: {done.stderr[-3000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _keys_issued(server: Server) -> float:
    """Keys handed out: by the edge (its counter) and by the nginx gate (its access log's key
    deliveries, docs/decisions/0010-keys-in-the-gate.md)."""
    with urllib.request.urlopen(f"{server.base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    by_edge = sum(
        float(m.group(1))
        for m in re.finditer(r"^edge_keys_issued_total\{[^}]*\} (\S+)$", text, re.MULTILINE)
    )
    by_gate = 0
    for log in (server.data_dir / "nginx" / "logs").glob("access*.log"):
        for line in log.read_text().splitlines():
            record = json.loads(line)
            by_gate += record.get("route") == "key" and record["status"] == 200
    return by_edge + by_gate


def _keys_issued_at_least(server: Server, wanted: float) -> float:
    """`_keys_issued` once it reaches `wanted` (nginx flushes its log every second), or after
    NGINX_LOG_FLUSH_WAIT_S."""
    deadline = time.monotonic() + NGINX_LOG_FLUSH_WAIT_S
    issued = _keys_issued(server)
    while issued < wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        issued = _keys_issued(server)
    return issued


def test_hls_js_plays_aac_opus_and_flac_sessions(server: Server) -> None:
    request = urllib.request.Request(
        f"{server.base_url}/v1/tracks",
        headers={"Authorization": f"Bearer {server.tokens['free']}"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        listed = {t["track_id"]: t for t in json.load(response)["tracks"]}
    gain_db = listed[TRACK_ID]["loudness"]["gain_db"]
    assert listed[TRACK_ID]["title"] == "Browser test tones"

    def page_url(case: Case) -> str:
        params = {"track": TRACK_ID, "token": server.tokens[case.tier], "codecs": case.codecs}
        if case.pin:
            params["variant"] = case.variant
        return f"{server.base_url}/?{urlencode(params)}"

    keys_before = _keys_issued_at_least(server, float("inf"))  # every earlier line flushed
    report = play_in_chromium([{"name": c.name, "url": page_url(c)} for c in CASES])
    results = {r["name"]: r for r in report["results"]}
    summary = json.dumps(report, indent=1)[:6000]

    for case in CASES:
        result = results[case.name]
        state = result["state"]
        assert result["outcome"] == "played", f"{case.name}: {summary}"
        assert state["fatalError"] is None, f"{case.name}: {summary}"
        assert state["currentTime"] >= MIN_PLAYED_S
        assert state["variant"] == case.variant and state["codec"] == case.codec, summary
        assert state["mseCodec"].lower() == case.codec.lower(), summary
        assert state["levelSwitches"][0] == case.variant, summary
        assert set(state["levelSwitches"]) <= set(state["variants"])
        # Every rendition of this session is encrypted: at least two keys were needed for 10 s
        # with a key per 12 s of audio, since hls.js buffers ahead of the playhead.
        assert state["keyLoads"] >= 2 and result["requests"]["keys"] >= state["keyLoads"]
        assert result["requests"]["segments"] >= 3
        assert set(result["requests"]["segmentServers"]) == {"nginx"}, summary
        # The loudness gain is applied in a Web Audio GainNode (it may amplify).
        assert state["gainDb"] == pytest.approx(gain_db)
        assert state["gainMode"] == "Web Audio gain"
        assert result["failed"] == [] and result["pageErrors"] == [], summary
        assert result["blocked"] == [], f"{case.name} reached beyond loopback: {summary}"
    loaded = sum(results[c.name]["state"]["keyLoads"] for c in CASES)
    assert _keys_issued_at_least(server, keys_before + loaded) - keys_before >= loaded
