"""Edge memory under a soak's load, in one process, on a manual clock: RSS and tracemalloc per
simulated minute, to find what grows (the soak only shows that something does).

    python -m benchmarks.edge_memory --data-dir D [--sessions 1500] [--minutes 12]
        [--trace-from 6] [--top 12]

One edge app (`create_app`, SQLite session store) on a loopback port, over a data directory
with a published track (the soak's: `--track soak-1860s`, ingested by `benchmarks.soak`). Each
of `--sessions` listeners opens a session, reads its media playlist and fetches its first six
segments (36 s delivered: enough for a play); then every simulated minute each posts two
heartbeats (one per 30 s of audio, as the soak's players) and fetches one key (one per ten
segments). The clock moves 30 s per round, so an hour of a worker's soak share runs in a few
minutes. Tracing starts at `--trace-from` (tracemalloc slows every allocation); from then on
each minute prints the allocation sites that grew most since, after a full collection.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import re
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from cdn_edge.app import create_app
from cdn_edge.listener_auth import issue_listener_token
from cdn_edge.web.access_log import AccessLog
from streamer.keyring_file import load_or_create_keyring
from streamer.objects.local import LocalObjectStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import load_settings
from streamer.token_secrets import load_token_secrets

RENDITION = "aac_160"
SEGMENTS_FETCHED = 6  # 36 s of a 6 s ladder: past the 30 s play threshold
HEARTBEAT_S = 30.0  # as benchmarks.vegeta_targets
CONCURRENCY = 64
START = 1_800_000_000.0


class ManualClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.edge_memory", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--track", default="soak-1860s")
    parser.add_argument("--sessions", type=int, default=1500)
    parser.add_argument("--minutes", type=int, default=12)
    parser.add_argument("--trace-from", type=int, default=6)
    parser.add_argument("--top", type=int, default=12)
    return parser.parse_args(argv)


class Listener:
    def __init__(self, session_id: str, token: str, base: str, keys: list[str]) -> None:
        self.session_id = session_id
        self.token = token
        self.base = base
        self.keys = keys
        self.beats = 0


async def run(args: argparse.Namespace) -> None:
    settings = load_settings(environ={}, data_dir=args.data_dir)
    secrets = load_token_secrets(settings)
    ring = load_or_create_keyring(settings.kek_path)
    clock = ManualClock(START)
    with tempfile.TemporaryDirectory(prefix="edge-memory-") as tmp:
        app = create_app(
            settings,
            LocalObjectStore(args.data_dir / "objects"),
            SQLiteSessionStore(Path(tmp) / "sessions.sqlite3"),
            ring,
            clock=clock,
            secrets=secrets,
            hls_dir=Path(tmp),
            access_log=AccessLog(None),
        )
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector) as http:
            try:
                await _load(http, args, secrets.platform_key, clock)
            finally:
                await runner.cleanup()


async def _load(
    http: aiohttp.ClientSession, args: argparse.Namespace, platform_key: bytes, clock: ManualClock
) -> None:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def get(path: str) -> int:
        async with gate, http.get(path) as response:
            await response.read()
            return response.status

    async def open_one(n: int) -> Listener:
        token = issue_listener_token(platform_key, f"user{n}", "premium", "SE", 86_400, clock())
        async with (
            gate,
            http.post(
                "/v1/sessions",
                json={"track_id": args.track, "device": {"codecs": ["mp4a.40.2"]}},
                headers={"Authorization": f"Bearer {token}"},
            ) as response,
        ):
            doc = await response.json()
            assert response.status == 201, doc
        path = "/" + doc["playlist_url"].split("/", 3)[3]
        base = path.rsplit("/", 1)[0]
        async with gate, http.get(f"{base}/{RENDITION}/playlist.m3u8") as response:
            body = await response.text()
            assert response.status == 200, body
        for segment in re.findall(r"^(seg_\d+\.m4s)$", body, re.M)[:SEGMENTS_FETCHED]:
            assert await get(f"{base}/{RENDITION}/{segment}") == 200
        keys = [f"{base}/keys/{k}" for k in re.findall(r'URI="\.\./keys/([^"]+)"', body)]
        session_token = base.split("/")[3]
        return Listener(doc["session_id"], session_token, base, keys)

    async def heartbeat(listener: Listener) -> int:
        listener.beats += 1
        event = {
            "event_id": uuid.uuid4().hex,
            "type": "heartbeat",
            "ts_ms": int(clock() * 1000),
            "position_s": listener.beats * HEARTBEAT_S,
            "seq": listener.beats,
        }
        async with (
            gate,
            http.post(
                f"/v1/sessions/{listener.session_id}/events",
                json={"events": [event]},
                headers={"Authorization": f"Bearer {listener.token}"},
            ) as response,
        ):
            await response.read()
            return response.status

    listeners = await asyncio.gather(*(open_one(n) for n in range(args.sessions)))
    print(f"{len(listeners)} sessions open; RSS {rss_mib():.1f} MiB", flush=True)
    baseline: tracemalloc.Snapshot | None = None
    started = time.monotonic()
    for minute in range(1, args.minutes + 1):
        statuses: dict[str, int] = {}
        for _ in range(2):
            clock.now += HEARTBEAT_S
            for status in await asyncio.gather(*(heartbeat(x) for x in listeners)):
                statuses[f"events {status}"] = statuses.get(f"events {status}", 0) + 1
        key_index = min(minute, len(listeners[0].keys) - 1)
        for status in await asyncio.gather(*(get(x.keys[key_index]) for x in listeners)):
            statuses[f"keys {status}"] = statuses.get(f"keys {status}", 0) + 1
        gc.collect()
        wall = time.monotonic() - started
        print(f"minute {minute}: RSS {rss_mib():.1f} MiB ({wall:.0f} s) {statuses}", flush=True)
        if minute == args.trace_from:
            tracemalloc.start()
        if not tracemalloc.is_tracing():
            continue
        snapshot = tracemalloc.take_snapshot().filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        if baseline is None:
            baseline = snapshot
            continue
        traced = sum(s.size for s in snapshot.statistics("filename")) / 2**20
        print(f"  traced {traced:.1f} MiB; grew most since minute {args.trace_from}:")
        for stat in snapshot.compare_to(baseline, "lineno")[: args.top]:
            print(f"    {stat}")


def main(argv: Sequence[str] | None = None) -> int:
    asyncio.run(run(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
