"""Ad segments from the edge against track segments from nginx, in the same run.

    python -m benchmarks.ad_segments [--runs 3] [--concurrency 16] [--listeners 200]
                                     [--data-dir DIR] [--json out.json]

Decides where ad segments should be served (docs/decisions/0011). One `streamer serve
--segments nginx --workers 1` (ads on, the embedded stores) over the benchmark track and a 5 s
ad, one campaign. Each round opens `--listeners` free sessions, decides each one's pre-roll
(its asset list), then asks, with `--concurrency` requests in flight:

- **ad_segments**: every session's ad init and segments, through nginx's `location /` to the
  edge, which checks the token and the break's recorded decision, reads the object and counts
  the impression and quartiles (cdn_edge.handlers.ads);
- **track_segments**: as many of the sessions' track segments, served by nginx from the files
  after the Lua gate's token check (the baseline: how a track segment is delivered).

Reported per kind: p50, p99, max, requests per second (median over rounds, with min and max),
and the ratios ad/track of p99 and of rate. Both kinds are small files of one session's
rendition (aac_160: about 40 KB per 2 s ad segment, 120 KB per 6 s track segment).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

from benchmarks.ad_decisions import (
    REQUEST_TIMEOUT_S,
    ads_edge,
    drive,
    ingest_ad,
    print_round,
    spread,
    summarise,
)
from benchmarks.edge_setup import listener_tokens, prepare_track
from benchmarks.http_client import HttpClient


def _media_uris(playlist: str) -> list[str]:
    uris = []
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-MAP:"):
            uris.append(line.split('URI="')[1].split('"')[0])
        elif line and not line.startswith("#"):
            uris.append(line)
    return uris


async def _get(client: HttpClient, url: str, headers: dict[str, str] | None = None) -> bytes:
    response = await client.request("GET", url, headers=headers, timeout_s=REQUEST_TIMEOUT_S)
    if response.status != 200:
        raise RuntimeError(f"GET {url[-80:]}: {response.status} {response.body[:200]!r}")
    return response.body


async def _targets(base: str, tokens: list[str], client: HttpClient) -> dict[str, list[str]]:
    ads: list[str] = []
    tracks: list[str] = []
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
        media = doc["playlist_url"].replace("main.m3u8", f"{doc['variants'][0]}/playlist.m3u8")
        assets = json.loads(await _get(client, urljoin(media, "../ads/breaks/0.json")))["ASSETS"]
        ad_playlist = assets[0]["URI"]
        ad_uris = [
            urljoin(ad_playlist, u) for u in _media_uris((await _get(client, ad_playlist)).decode())
        ]
        ads += ad_uris
        track_uris = _media_uris((await _get(client, media)).decode())
        tracks += [urljoin(media, u) for u in track_uris[: len(ad_uris)]]
    random.shuffle(ads)
    random.shuffle(tracks)
    return {"ad_segments": ads, "track_segments": tracks}


async def _round(
    base: str, tokens: list[str], concurrency: int, order: list[str]
) -> dict[str, Any]:
    client = HttpClient(concurrency)
    targets = await _targets(base, tokens, client)
    return {name: await drive(client, targets[name], concurrency) for name in order}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--listeners", type=int, default=200)
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-adseg-"))
    prepare_track(data_dir)
    ingest_ad(data_dir)
    names = ["ad_segments", "track_segments"]
    rounds = []
    for run in range(args.runs):
        with ads_edge(data_dir, "nginx", "bench-adseg-edge.log") as base:
            tokens = listener_tokens(data_dir, args.listeners, tier="free")
            order = names if run % 2 == 0 else list(reversed(names))
            result = asyncio.run(_round(base, tokens, args.concurrency, order))
        rounds.append(result)
        print_round(run, result)
    summary = summarise(rounds, names)
    for field in ("p99_ms", "rate"):
        summary[f"ad_over_track_{field}"] = spread(
            [r["ad_segments"][field] / r["track_segments"][field] for r in rounds]
        )
    print(json.dumps(summary, indent=1))
    if args.json:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
