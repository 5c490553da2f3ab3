"""Offline licence grants against session opens, on the same edge in the same run.

    python -m benchmarks.offline_licences [--runs 3] [--seconds 10] [--concurrency 8]

`streamer serve --segments python --workers 1` over a data directory with one ingested 3.5-minute
track. Each round drives, for `--seconds` each and in alternating order, `POST /v1/sessions`
(the baseline: a token, a negotiation, a queued session record) and
`POST /v1/devices/{id}/licences` (a licence: every premium key unwrapped and wrapped for the
device with X25519, an Ed25519 signature, a synchronous store write), from `--concurrency`
listeners with one device each. Prints requests/s per endpoint as median (min, max) over the
runs and the ratio licences / sessions.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp

from benchmarks.edge_setup import listener_tokens, prepare_track, start_edge
from benchmarks.stats import summarize
from cdn_edge.playback.offline_licences import b64url
from drm import new_device_keypair

REQUEST_TIMEOUT_S = 10.0


async def _drive(
    seconds: float, concurrency: int, request: Callable[[aiohttp.ClientSession, int], object]
) -> float:
    """Requests/s of `request` from `concurrency` workers for `seconds`."""
    done = 0
    deadline = time.monotonic() + seconds
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def worker(n: int) -> None:
            nonlocal done
            while time.monotonic() < deadline:
                await request(http, n)  # type: ignore[misc]
                done += 1

        started = time.monotonic()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        return done / (time.monotonic() - started)


async def _round(
    base: str, tokens: list[str], devices: list[str], track_id: str, seconds: float
) -> tuple[float, float]:
    async def session(http: aiohttp.ClientSession, n: int) -> None:
        body = {"track_id": track_id, "device": {"codecs": ["mp4a.40.2", "opus", "fLaC"]}}
        headers = {"Authorization": f"Bearer {tokens[n]}"}
        async with http.post(f"{base}/v1/sessions", json=body, headers=headers) as response:
            assert response.status == 201, await response.text()
            await response.read()

    async def licence(http: aiohttp.ClientSession, n: int) -> None:
        url = f"{base}/v1/devices/{devices[n]}/licences"
        headers = {"Authorization": f"Bearer {tokens[n]}"}
        async with http.post(url, json={"track_id": track_id}, headers=headers) as response:
            assert response.status == 201, await response.text()
            await response.read()

    sessions = await _drive(seconds, len(tokens), session)
    licences = await _drive(seconds, len(tokens), licence)
    return sessions, licences


async def _register(base: str, tokens: list[str]) -> list[str]:
    devices = []
    async with aiohttp.ClientSession() as http:
        for token in tokens:
            _, public = new_device_keypair()
            async with http.post(
                f"{base}/v1/devices",
                json={"public_key": b64url(public)},
                headers={"Authorization": f"Bearer {token}"},
            ) as response:
                assert response.status == 201, await response.text()
                devices.append((await response.json())["device_id"])
    return devices


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data-dir", type=Path, help="kept between runs (the ingest is reused)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        track = prepare_track(data_dir)
        server, base = start_edge(data_dir, 1, Path(scratch) / "edge.log", segments="python")
        try:
            tokens = listener_tokens(data_dir, args.concurrency)
            devices = asyncio.run(_register(base, tokens))
            rates = [
                asyncio.run(_round(base, tokens, devices, track.track_id, args.seconds))
                for _ in range(args.runs)
            ]
        finally:
            server.stop()
    sessions = summarize([s for s, _ in rates])
    licences = summarize([lic for _, lic in rates])
    ratio = summarize([lic / s for s, lic in rates])
    print(f"track {track.track_id}: {track.duration_s:.0f} s, concurrency {args.concurrency}")
    print(f"POST /v1/sessions            req/s {sessions}")
    print(f"POST /v1/devices/…/licences  req/s {licences}")
    print(f"ratio licences / sessions          {ratio}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
