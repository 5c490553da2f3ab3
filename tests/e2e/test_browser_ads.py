"""hls.js in headless Chromium plays a free session through its ad breaks; premium gets none.

A 25 s track and a 4 s ad spot are ingested (`streamer ingest`, `--kind ad`), a campaign added
(`streamer ads campaign`), and `streamer serve --segments nginx` runs with ads on: a break slot
every 8 s of track and a break due after 8 s of listening, so the free session's playlist
offers breaks at 0 s (pre-roll), 12 s and 18 s of the track, the edge serves the first two and
skips the third (6 s after the second). hls.js must play the pre-roll, the mid-roll and the
track on past the mid-roll; a premium session on the same server makes no ad request at all.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import free_port, run_streamer, streamer_env, streamer_process
from tests.e2e.test_browser import play_in_chromium, require_browser_tools
from tests.masters import make_master

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(150)]

TRACK_ID = "ADS-E2E"
AD_ID = "spot-e2e"
MASTER_S = 25.0
AD_S = 4.0
PLAYED_S = 15.0  # past the mid-roll at 12 s


@dataclass(frozen=True)
class Server:
    base_url: str
    tokens: dict[str, str]
    env: dict[str, str]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser_tools()
    root = tmp_path_factory.mktemp("ads")
    env = streamer_env(root / "data", ads="true", ad_slot_s="8", ad_break_every_s="8")
    master = make_master(root / "master.flac", seconds=MASTER_S)
    run_streamer(["ingest", str(master), "--track-id", TRACK_ID], env, timeout_s=90)
    raw = make_master(root / "raw-spot.wav", seconds=AD_S)
    spot = root / "spot.wav"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-i", str(raw), "-af", "volume=-10dB", str(spot)],
        check=True,
        timeout=60,
    )
    run_streamer(["ingest", str(spot), "--kind", "ad", "--track-id", AD_ID], env, timeout_s=90)
    campaign = root / "campaign.json"
    campaign.write_text(
        json.dumps({"campaign_id": "e2e", "ad_id": AD_ID, "daily_goal": 1000, "frequency_cap": 10})
    )
    run_streamer(["ads", "campaign", str(campaign)], env, timeout_s=30)
    tokens = {
        tier: run_streamer(["token", "--tier", tier, "--user", f"ads-{tier}"], env, 30).strip()
        for tier in ("free", "premium")
    }
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--segments", "nginx"]
    with streamer_process(serve, env, root / "serve.log", base_url):
        yield Server(base_url, tokens, env)


def _metric(base_url: str, series: str) -> float:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith(series + " "):
                return float(line.split()[-1])
    return 0.0


def test_hls_js_plays_a_free_session_through_a_pre_roll_and_a_mid_roll(server: Server) -> None:
    def page(tier: str) -> str:
        params = {"track": TRACK_ID, "token": server.tokens[tier], "codecs": "mp4a.40.2"}
        return f"{server.base_url}/?{urlencode(params)}"

    report = play_in_chromium(
        [{"name": "free", "url": page("free")}, {"name": "premium", "url": page("premium")}],
        min_seconds=PLAYED_S,
        timeout_s=70,
    )
    results = {r["name"]: r for r in report["results"]}
    summary = json.dumps(report, indent=1)[:8000]
    free, premium = results["free"], results["premium"]
    assert free["outcome"] == "played", summary
    assert free["state"]["fatalError"] is None, summary
    ads = free["state"]["ads"]
    # The pre-roll and the mid-roll at 12 s were played (the 18 s break came too soon after).
    assert ads["started"][:2] == ["ad-break-0", "ad-break-1"], summary
    assert ads["served"] >= 2 and ads["ended"] >= 2, summary
    assert free["requests"]["adLists"] >= 2 and free["requests"]["adSegments"] >= 4, summary
    assert free["state"]["currentTime"] >= PLAYED_S  # the track went on after the mid-roll
    assert free["failed"] == [] and free["pageErrors"] == [], summary

    assert premium["outcome"] == "played", summary
    assert premium["requests"]["adLists"] == 0 and premium["requests"]["adSegments"] == 0
    assert premium["state"]["ads"]["started"] == [], summary
    assert _metric(server.base_url, 'edge_ad_breaks_total{outcome="served"}') >= 2


def _breaks_decided(base_url: str) -> float:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("edge_ad_breaks_total{")
    )


def test_ffmpeg_plays_a_free_session_whole_and_without_a_break(
    server: Server, tmp_path: Path
) -> None:
    # A player without HLS interstitials ignores the breaks' date ranges (RFC 8216 4.3.2.7):
    # it gets the whole track, no ad, and asks for no decision.
    request = urllib.request.Request(
        f"{server.base_url}/v1/sessions",
        data=json.dumps({"track_id": TRACK_ID, "device": {"codecs": ["mp4a.40.2"]}}).encode(),
        headers={
            "Authorization": f"Bearer {server.tokens['free']}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        doc = json.load(response)
    media = doc["playlist_url"].replace("main.m3u8", f"{doc['variants'][0]}/playlist.m3u8")
    with urllib.request.urlopen(media, timeout=10) as response:
        assert "com.apple.hls.interstitial" in response.read().decode()  # the breaks are there
    before = _breaks_decided(server.base_url)
    out = tmp_path / "free.mkv"
    pull = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", media, "-c", "copy", "-y", str(out)],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert pull.returncode == 0 and "HTTP error" not in pull.stderr, pull.stderr[-2000:]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(out)],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert float(probe.stdout) == pytest.approx(MASTER_S, abs=1.0)  # the track, and no ad in it
    assert _breaks_decided(server.base_url) == before
