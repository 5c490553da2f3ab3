"""Ad decision latency under load, against endpoints of the same edge in the same run.

    python -m benchmarks.ad_decisions [--runs 3] [--concurrency 16] [--listeners 300]
                                      [--data-dir DIR] [--json out.json]

One edge (`streamer serve --segments python --workers 1`, ads on, the embedded SQLite stores)
over a 3.5-minute track and a 5 s ad, one campaign. Each round opens `--listeners` free sessions
(new listeners each round) and asks, with `--concurrency` requests in flight:

- **ads**: every break's asset list of every session once (`/v1/s/{t}/ads/breaks/{n}.json`),
  each a fresh decision: a store read of the listener's day, the pure decision, the record
  queued for the store, the creative (cached), the JSON; breaks are due every time
  (STREAMER_AD_BREAK_EVERY_S=0), so every one is served: the most expensive path;
- **static**: `/healthz`, a static JSON body through the same middleware (the baseline);
- **playlist**: the session's media playlist, a token check and a cached body (a second
  baseline: what every playback request costs).

Endpoints alternate order between rounds. The client is the lean keep-alive client of
benchmarks.http_client; latency is from the request written to the response read, as the
client sees it. Reported: p50, p99 and max per endpoint (median over rounds, with min and
max), the ratio of the ads' p99 to the static p99, and the edge's own decision histogram
(`edge_ad_decision_seconds`). Goal (issue 16): decision p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from benchmarks.edge_setup import edge_env, empty_session_store, listener_tokens, prepare_track
from benchmarks.http_client import HttpClient, HttpFailure
from benchmarks.servers import ServerProcess, free_port
from streamer.ads.campaigns import Campaign
from streamer.ads.port import AD_STORE_FILE
from streamer.ads.sqlite import SQLiteAdStore
from transcoder.sample_master import write_sample_master

AD_ID = "bench-ad"
AD_SLOT_S = 30  # a 210 s track: 7 breaks per session, the pre-roll included
REQUEST_TIMEOUT_S = 10.0
GOAL_P99_S = 0.050


def ingest_ad(data_dir: Path) -> None:
    spot = data_dir / "bench-ad.flac"
    if not spot.exists():
        write_sample_master(spot, seconds=5.0)
    subprocess.run(
        [sys.executable, "-m", "streamer_app.cli", "--data-dir", str(data_dir),
         "ingest", str(spot), "--kind", "ad", "--track-id", AD_ID, "--json"],
        check=True, timeout=300, stdout=subprocess.DEVNULL, env=edge_env(data_dir),
    )  # fmt: skip


def reset_ads(data_dir: Path) -> None:
    for path in data_dir.glob(f"{AD_STORE_FILE}*"):
        path.unlink()
    store = SQLiteAdStore(data_dir / AD_STORE_FILE)
    store.put_campaign(Campaign("bench", AD_ID, daily_goal=1_000_000_000, frequency_cap=1000))
    store.close()


@contextmanager
def ads_edge(
    data_dir: Path, segments: str, log_name: str, env: Mapping[str, str] | None = None
) -> Iterator[str]:
    """`streamer serve --workers 1` with ads on and every break due, on fresh ad and session
    stores (one campaign): its base URL, while the block runs."""
    reset_ads(data_dir)
    empty_session_store(data_dir)
    port = free_port()
    server_env = edge_env(data_dir) | {"STREAMER_ADS": "true", "STREAMER_AD_BREAK_EVERY_S": "0"}
    argv = [
        sys.executable, "-m", "streamer_app.cli", "--data-dir", str(data_dir), "serve",
        "--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--segments", segments,
    ]  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    with ServerProcess("edge", argv, data_dir / log_name, env=server_env | dict(env or {})) as edge:
        edge.wait_ready(f"{base}/healthz")
        yield base


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min and max over the rounds."""
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise(rounds: Sequence[dict[str, dict[str, Any]]], names: Sequence[str]) -> dict[str, Any]:
    """Each kind's p50, p99, max and rate over the rounds."""
    return {
        f"{name}_{field}": spread([r[name][field] for r in rounds])
        for name in names
        for field in ("p50_ms", "p99_ms", "max_ms", "rate")
    }


def print_round(run: int, result: dict[str, dict[str, Any]]) -> None:
    kinds = ", ".join(
        f"{name} p50 {r['p50_ms']:.2f} ms p99 {r['p99_ms']:.2f} ms ({r['rate']:.0f}/s, "
        f"{r['requests']} requests, failures {r['failures'] or 0})"
        for name, r in result.items()
    )
    print(f"round {run + 1}: {kinds}", flush=True)


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def drive(client: HttpClient, urls: list[str], concurrency: int) -> dict[str, Any]:
    queue = list(reversed(urls))
    latencies: list[float] = []
    failures: dict[str, int] = {}
    started = time.perf_counter()

    async def worker() -> None:
        while queue:
            url = queue.pop()
            begun = time.perf_counter()
            try:
                response = await client.request("GET", url, timeout_s=REQUEST_TIMEOUT_S)
            except HttpFailure as exc:
                failures[exc.kind] = failures.get(exc.kind, 0) + 1
                continue
            if response.status != 200:
                failures[str(response.status)] = failures.get(str(response.status), 0) + 1
                continue
            latencies.append(time.perf_counter() - begun)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {
        "requests": len(latencies),
        "failures": failures,
        "rate": len(latencies) / wall,
        "p50_ms": 1000 * _percentile(latencies, 0.5),
        "p99_ms": 1000 * _percentile(latencies, 0.99),
        "max_ms": 1000 * max(latencies),
    }


async def _round(
    base: str, tokens: list[str], concurrency: int, order: list[str]
) -> dict[str, dict[str, Any]]:
    client = HttpClient(concurrency)
    sessions: list[str] = []
    for token in tokens:
        body = json.dumps({"track_id": "bench-track", "device": {"codecs": ["mp4a.40.2"]}})
        response = await client.request(
            "POST",
            f"{base}/v1/sessions",
            body=body.encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            timeout_s=REQUEST_TIMEOUT_S,
        )
        if response.status != 201:
            raise RuntimeError(f"session refused: {response.status} {response.body[:200]!r}")
        doc = json.loads(response.body)
        sessions.append(doc["playlist_url"].rsplit("/", 1)[0] + f"|{doc['variants'][0]}")
    breaks = [
        f"{s.split('|')[0]}/ads/breaks/{n}.json" for s in sessions for n in range(210 // AD_SLOT_S)
    ]
    random.shuffle(breaks)
    count = len(breaks)
    targets = {
        "ads": breaks,
        "static": [f"{base}/healthz"] * count,
        "playlist": [
            f"{s.split('|')[0]}/{s.split('|')[1]}/playlist.m3u8"
            for s in (sessions * (count // len(sessions) + 1))[:count]
        ],
    }
    return {name: await drive(client, targets[name], concurrency) for name in order}


def _decision_histogram(base: str) -> dict[str, float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
        text = response.read().decode()
    buckets: dict[str, float] = {}
    outcomes: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("edge_ad_decision_seconds_bucket"):
            le = line.split('le="')[1].split('"')[0]
            buckets[le] = float(line.split()[-1])
        elif line.startswith("edge_ad_breaks_total"):
            outcomes[line.split('outcome="')[1].split('"')[0]] = float(line.split()[-1])
    total = buckets.get("+Inf", 0.0)
    p99_le = next((le for le, n in buckets.items() if total and n >= 0.99 * total), "+Inf")
    return {
        "decisions": total,
        "p99_bucket_le_s": float(p99_le),
        **{f"breaks_{k}": v for k, v in outcomes.items()},
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--listeners", type=int, default=300)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-ads-"))
    prepare_track(data_dir)
    ingest_ad(data_dir)
    rounds: list[dict[str, dict[str, Any]]] = []
    histograms = []
    names = ["ads", "static", "playlist"]
    for run in range(args.runs):
        with ads_edge(
            data_dir, "python", "bench-ads-edge.log", {"STREAMER_AD_SLOT_S": str(AD_SLOT_S)}
        ) as base:
            tokens = listener_tokens(data_dir, args.listeners, tier="free")
            order = names if run % 2 == 0 else list(reversed(names))
            result = asyncio.run(_round(base, tokens, args.concurrency, order))
            histograms.append(_decision_histogram(base))
        rounds.append(result)
        print_round(run, result)
    summary = summarise(rounds, names)
    summary["ads_over_static_p99"] = spread(
        [r["ads"]["p99_ms"] / r["static"]["p99_ms"] for r in rounds]
    )
    summary["edge_decision_histograms"] = histograms
    summary["goal_met"] = summary["ads_p99_ms"]["median"] <= GOAL_P99_S * 1000
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
