"""hls.js and ffmpeg play a long track through switches, seeks and every rendition, no 429.

A 7 min 20 s master (48 kHz, 24-bit WAV) is ingested with default settings: a key per 10
segments, so about eight key periods per tier. Each session is played in Chromium with a
forced level switch every 5 s and seeks across the whole track, the pattern that once ran a
session out of keys (429). Then the key requests are counted: a player that caches keys by
URI fetches each key of the session at most once.
"""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import free_port, run_streamer, streamer_env, streamer_process
from tests.e2e.test_browser import play_in_chromium, require_browser_tools
from tests.masters import make_master

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(300)]

MASTER_S = 440.0
TRACK_ID = "BROWSER-LONG"
SWITCH_EVERY_S = 5.0
SEEK_TO = (200.0, 90.0, 425.0)  # forward, back, and near the end: every tier's later keys
PLAY_AFTER_SEEK_S = 10.0  # two forced switches from each position
TIMEOUT_S = 60.0  # per wait: the first 6 s played, then each seek played


@dataclass(frozen=True)
class LongTrack:
    base_url: str
    tokens: dict[str, str]  # tier -> listener token
    record: dict[str, Any]  # the published track record


@pytest.fixture(scope="module")
def long_track(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LongTrack]:
    require_browser_tools()
    root = tmp_path_factory.mktemp("long")
    env = streamer_env(root / "data")  # default key rotation
    master = make_master(
        root / "master.wav", seconds=MASTER_S, rate=48_000, codec_args=("-c:a", "pcm_s24le")
    )
    run_streamer(["ingest", str(master), "--track-id", TRACK_ID, "--json"], env, timeout_s=240)
    current = json.loads((root / "data/objects/tracks" / TRACK_ID / "current.json").read_text())
    version = current["version"]
    record_path = root / "data/objects/tracks" / TRACK_ID / version / "track.json"
    record = json.loads(record_path.read_text())
    tokens = {
        tier: run_streamer(["token", "--tier", tier, "--user", f"long-{tier}"], env, 30).strip()
        for tier in ("free", "premium")
    }
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--segments", "nginx"]
    with streamer_process(serve, env, root / "serve.log", base_url):
        yield LongTrack(base_url, tokens, record)


def _refusals(base_url: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {
        m.group(1): float(m.group(2))
        for m in re.finditer(r'^edge_refusals_total\{reason="([^"]+)"\} (\S+)$', text, re.M)
    }


# Forced switches stay within one codec, as ABR does: MSE in Chromium cannot always switch
# between FLAC and a lossy codec in place (hls.js recovers by resetting the MediaSource, which
# is a media error, not what this test is about). The free session is Opus only (its device
# says so, and it must get no AAC); the premium one AAC only, whose 256 kbit/s level uses the
# premium keys and the others the free keys.
CASES = {"free": "opus", "premium": "mp4a.40.2"}
LEVEL_CODECS = {"free": {"opus"}, "premium": {"mp4a.40.2"}}


def test_hls_js_switches_and_seeks_through_a_long_track(long_track: LongTrack) -> None:
    cases = [
        {
            "name": tier,
            "url": f"{long_track.base_url}/?"
            + urlencode(
                {
                    "track": TRACK_ID,
                    "token": long_track.tokens[tier],
                    "codecs": codecs,
                    "muted": "1",
                }
            ),
        }
        for tier, codecs in CASES.items()
    ]
    report = play_in_chromium(
        cases,
        min_seconds=6.0,
        timeout_s=TIMEOUT_S,
        run_timeout_s=2 * TIMEOUT_S * (len(SEEK_TO) + 1) + 60,
        exercise={
            "switchEverySeconds": SWITCH_EVERY_S,
            "seekTo": list(SEEK_TO),
            "playAfterSeekSeconds": PLAY_AFTER_SEEK_S,
        },
    )
    summary = json.dumps(report, indent=1)[:8000]
    key_periods = {
        tier: len({k["period"] for k in long_track.record["keys"] if k["tier"] == tier})
        for tier in ("free", "premium")
    }
    assert key_periods["free"] >= 7, key_periods  # 440 s in 6 s segments, 10 per key
    for result in report["results"]:
        state = result["state"]
        assert result["outcome"] == "played", summary
        assert state["fatalError"] is None, summary
        assert result["failed"] == [], summary  # no 429, nor any other error status
        # hls.js aborts its own pending loads when a switch or seek makes them useless and
        # reports that as a recovered "aborted": not a request that failed.
        assert [e for e in state["errors"] if not e.endswith(" aborted")] == [], summary
        assert set(result["requests"]["segmentServers"]) == {"nginx"}, summary
        exercise = result["exercise"]
        assert len(exercise["switches"]) >= 4, summary
        assert len(set(state["levelSwitches"])) >= 2, summary  # it really played other levels
        assert len(state["levels"]) == 3, summary
        assert {state["codec"]} == LEVEL_CODECS[result["name"]], summary
        for position, reached in zip(SEEK_TO, exercise["seeks"], strict=True):
            assert reached >= position + PLAY_AFTER_SEEK_S - 0.5, summary
        # Each key of the session fetched at most once: its URI is the same in every playlist.
        entitled = ("free",) if result["name"] == "free" else ("free", "premium")
        assert 1 <= result["requests"]["keys"] <= sum(key_periods[t] for t in entitled), summary
    assert _refusals(long_track.base_url).get("rate_limited", 0) == 0


def _open_session(long_track: LongTrack, tier: str, codecs: list[str]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{long_track.base_url}/v1/sessions",
        data=json.dumps({"track_id": TRACK_ID, "device": {"codecs": codecs}}).encode(),
        headers={
            "Authorization": f"Bearer {long_track.tokens[tier]}",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        doc: dict[str, Any] = json.load(response)
    return doc


def test_ffmpeg_pulls_every_rendition_of_one_session(long_track: LongTrack, tmp_path: Path) -> None:
    # ffmpeg as an HLS client, one process per rendition, all of one premium session at once:
    # each fetches every key of its rendition, and every rendition must decode in full.
    doc = _open_session(long_track, "premium", ["mp4a.40.2", "opus", "fLaC"])
    base = doc["playlist_url"].rsplit("/", 1)[0]
    assert len(doc["variants"]) == 7
    pulls = {
        name: subprocess.Popen(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-i",
                f"{base}/{name}/playlist.m3u8",
                "-c",
                "copy",
                "-y",
                str(tmp_path / f"{name}.mkv"),
            ],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in doc["variants"]
    }
    for name, pull in pulls.items():
        _, stderr = pull.communicate(timeout=180)
        assert pull.returncode == 0 and "HTTP error" not in stderr, f"{name}: {stderr[-2000:]}"
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "format=duration",
                "-of",
                "csv=p=0",
                str(tmp_path / f"{name}.mkv"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        )
        assert float(probe.stdout) == pytest.approx(MASTER_S, abs=1.0), name
    assert _refusals(long_track.base_url).get("rate_limited", 0) == 0
