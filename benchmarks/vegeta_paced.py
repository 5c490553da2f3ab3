"""Real-time paced listeners driven by vegeta, a compiled load generator: issue 13's 20,000.

    python -m benchmarks.vegeta_paced --listeners 20000 --duration 180 [--workers 1]
        [--data-dir D] [--rendition aac_160] [--no-events] [--out DIR]

The Python paced mode (`benchmarks.listeners --mode paced`) spends about 0.9 of a core on
10,000 listeners, on a machine whose cores the server shares. Here vegeta sends the requests:

1. `streamer serve` (nginx, the edge, the shipper) on the track, as wrk_check starts it.
2. Every listener's session is opened first, in Python (not measured, timed); one media
   playlist is read, and every listener's URLs are built from it (vegeta_targets).
3. One attack at an even rate over the targets in step order: listener i's segment k at
   about k segment durations plus i / N of one, with its media playlist, init and key on the
   way; a second attack posts each listener's heartbeat every 30 s of audio.
4. vegeta's results are read per endpoint and per 5 s window (vegeta_results); the server's
   CPU per process, vegeta's own CPU and the shipper's lag are reported beside them.

vegeta v12.12.0 is built with `go install` on first use (benchmarks.vegeta_install).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.edge_setup import (
    DEFAULT_TRACK_ID,
    DEFAULT_TRACK_S,
    Track,
    describe_track,
    listener_tokens,
    prepare_track,
    scrape_telemetry,
    start_edge,
)
from benchmarks.player import session_token_of
from benchmarks.procstat import machine_busy_ticks
from benchmarks.servers import ServerProcess
from benchmarks.tier_usage import catch_up_s, server_ticks, shipper_lag_bytes
from benchmarks.vegeta_attack import encoded_results, start_attack, wait_attacks
from benchmarks.vegeta_install import VegetaUnavailable, ensure_vegeta
from benchmarks.vegeta_results import (
    P99_TARGET_MS,
    WINDOW_S,
    PacedTally,
    held_listeners,
    parse_hit,
)
from benchmarks.vegeta_targets import (
    Listener,
    heartbeat_targets,
    http_targets,
    media_playlist_url,
    paced_requests,
    paced_templates,
    steps_within,
    vegeta_rate,
)

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SETUP_CONCURRENCY = 64  # sessions opened at once: the edge's session path, not the load
SETUP_TIMEOUT_S = 30.0
ATTACK_GRACE_S = 120.0  # an attack this far past its schedule is interrupted
NGINX_LOG_FLUSH_S = 1.5  # the access log is buffered, flushed every second (nginx_tier config)
CATCH_UP_WAIT_S = 60.0
CODECS = ("mp4a.40.2", "opus")


# Sessions, opened before the measured phase.


async def _open_sessions(
    base_url: str, track_id: str, tokens: Sequence[str], rendition: str
) -> list[Listener]:
    out: list[Listener | None] = [None] * len(tokens)
    body = {"track_id": track_id, "device": {"codecs": list(CODECS)}}
    timeout = aiohttp.ClientTimeout(total=SETUP_TIMEOUT_S)
    connector = aiohttp.TCPConnector(limit=SETUP_CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        indexes = iter(range(len(tokens)))

        async def worker() -> None:
            for i in indexes:
                headers = {"Authorization": f"Bearer {tokens[i]}"}
                async with http.post(
                    f"{base_url}/v1/sessions", json=body, headers=headers
                ) as response:
                    if response.status != 201:
                        raise RuntimeError(
                            f"POST /v1/sessions for listener {i} answered {response.status}: "
                            f"{(await response.text())[:300]}"
                        )
                    doc = await response.json()
                if rendition not in doc["variants"]:
                    raise RuntimeError(
                        f"rendition {rendition} is not offered to listener {i}; offered: "
                        f"{doc['variants']}"
                    )
                token = session_token_of(doc["playlist_url"])
                out[i] = Listener(doc["session_id"], token, str(uuid.uuid4()))

        await asyncio.gather(*(worker() for _ in range(SETUP_CONCURRENCY)))
    return [listener for listener in out if listener is not None]


def _get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=SETUP_TIMEOUT_S) as response:
        return str(response.read().decode())


@dataclass(frozen=True)
class Recorded:
    """Where the attacks' results are, and what reading them needs."""

    started_wall_s: float  # Unix time the attacks were started
    phase_s: float
    intervals_s: dict[str, float]  # per attack, between two requests' due times
    files: list[Path]


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    count = 0
    with path.open("w") as f:
        for line in lines:
            f.write(line)
            count += 1
    return count


# The run.

Watch = Callable[[ServerProcess, Path, str], AbstractContextManager[object]]
"""Entered (with the server, its data directory and base URL) just before the attacks start,
left once they have ended: how the soak samples the server while the load runs."""


def _no_watch(
    server: ServerProcess, data_dir: Path, base_url: str
) -> AbstractContextManager[object]:
    return contextlib.nullcontext()


def add_paced_options(
    parser: argparse.ArgumentParser, listeners: int = 20_000, workers: int = 1
) -> None:
    """The options of a paced vegeta run that `run` reads, but its length and report."""
    parser.add_argument("--listeners", type=int, default=listeners)
    parser.add_argument("--workers", type=int, default=workers, help="edge and nginx workers")
    parser.add_argument("--data-dir", type=Path, help="kept and reused (default: temporary)")
    parser.add_argument("--rendition", default="aac_160")
    parser.add_argument("--no-events", action="store_true", help="no heartbeat attack")
    parser.add_argument("--no-cmcd", action="store_true", help="no CMCD query arguments")
    parser.add_argument(
        "--connections", type=int, default=1000, help="paced attack's most connections"
    )
    parser.add_argument("--event-connections", type=int, default=200)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.vegeta_paced", description=__doc__.splitlines()[0]
    )
    add_paced_options(parser)
    parser.add_argument("--duration", type=float, default=180.0, help="paced phase, seconds")
    parser.add_argument("--track-seconds", type=float, default=DEFAULT_TRACK_S)
    parser.add_argument("--out", type=Path, help="directory for vegeta_paced.json")
    args = parser.parse_args(argv)
    try:
        vegeta = ensure_vegeta()
    except VegetaUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    result = measure(args, vegeta)
    command = " ".join(sys.argv[1:] if argv is None else argv)
    result = {"command": f"python -m benchmarks.vegeta_paced {command}", **result}
    print_report(result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "vegeta_paced.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


def measure(
    args: argparse.Namespace,
    vegeta: Path,
    track_id: str = DEFAULT_TRACK_ID,
    watch: Watch = _no_watch,
    window_s: int = WINDOW_S,
    server_env: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole paced run of `args` (`add_paced_options`, `duration`, `track_seconds`): the
    track, the server (with `server_env` added to its settings), the attacks with `watch`
    around them, and their results per endpoint and per window of `window_s`."""
    with tempfile.TemporaryDirectory(prefix="vegeta-paced-") as scratch:
        work = Path(scratch)
        data_dir = args.data_dir or work / "data"
        track = prepare_track(data_dir, track_id, seconds=args.track_seconds)
        server, base_url = start_edge(data_dir, args.workers, work / "edge.log", env=server_env)
        try:
            result, recorded = run(args, vegeta, work, data_dir, track, server, base_url, watch)
        finally:
            server.stop()
        result["track"] = describe_track(track)
        result.update(read_results(vegeta, recorded, args.listeners, window_s))
    return result


def run(
    args: argparse.Namespace,
    vegeta: Path,
    work: Path,
    data_dir: Path,
    track: Track,
    server: ServerProcess,
    base_url: str,
    watch: Watch = _no_watch,
) -> tuple[dict[str, Any], Recorded]:
    n = args.listeners
    print(f"opening {n:,} sessions ...", file=sys.stderr, flush=True)
    began = time.monotonic()
    tokens = listener_tokens(data_dir, n)
    listeners = asyncio.run(_open_sessions(base_url, track.track_id, tokens, args.rendition))
    setup_s = time.monotonic() - began
    print(f"  {n:,} sessions in {setup_s:.1f} s", file=sys.stderr, flush=True)
    text = _get_text(media_playlist_url(base_url, listeners[0].session_token, args.rendition))
    templates = paced_templates(base_url, args.rendition, text, track.track_id, not args.no_cmcd)
    steps = steps_within(templates, args.duration)
    phase_s = templates.phase_s(steps)

    paced_file = work / "paced.targets"
    requests = _write_lines(paced_file, http_targets(paced_requests(templates, listeners, steps)))
    start_ms = int(time.time() * 1000)
    events_file = work / "events.targets"
    events = 0
    if not args.no_events:
        lines = heartbeat_targets(base_url, listeners, phase_s, start_ms)
        events = _write_lines(events_file, lines)

    dropped_before = scrape_telemetry(base_url)["dropped"]
    ticks_before = server_ticks(server)
    machine_before = machine_busy_ticks()
    rate = vegeta_rate(requests, phase_s)
    print(
        f"paced: {n:,} listeners, {steps} segments of {args.rendition} each, {requests:,} "
        f"requests at {rate} ({requests / phase_s:,.0f}/s) for {phase_s:.0f} s"
        + (f"; {events:,} heartbeats at {vegeta_rate(events, phase_s)}" if events else ""),
        file=sys.stderr,
        flush=True,
    )
    started_wall = time.time()
    started = time.monotonic()
    attacks = [start_attack(vegeta, "paced", paced_file, rate, args.connections, work)]
    if events:
        events_rate = vegeta_rate(events, phase_s)
        attacks.append(
            start_attack(
                vegeta, "events", events_file, events_rate, args.event_connections, work, True
            )
        )

    intervals = {"paced": phase_s / requests, **({"events": phase_s / events} if events else {})}

    def progress() -> None:
        print(f"  {time.monotonic() - started:.0f} / {phase_s:.0f} s", file=sys.stderr, flush=True)

    with watch(server, data_dir, base_url):  # the attacks have just started
        interrupted = wait_attacks(attacks, started + phase_s + ATTACK_GRACE_S, progress)
    elapsed = time.monotonic() - started
    ticks_after = server_ticks(server)
    machine_s = (machine_busy_ticks() - machine_before) / TICKS_PER_S
    time.sleep(NGINX_LOG_FLUSH_S)
    lag_end = shipper_lag_bytes(data_dir)
    caught_up = catch_up_s(data_dir, CATCH_UP_WAIT_S)
    dropped = scrape_telemetry(base_url)["dropped"] - dropped_before

    def cores(ticks: float) -> float:
        return round(ticks / TICKS_PER_S / elapsed, 3)

    server_cpu = {
        name: cores(ticks_after.get(name, 0) - ticks_before.get(name, 0))
        for name in sorted(set(ticks_after) | set(ticks_before))
    }
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "listeners": n,
        "workers": args.workers,
        "rendition": args.rendition,
        "events": not args.no_events,
        "cmcd": not args.no_cmcd,
        "setup": {"sessions": n, "seconds": round(setup_s, 1), "per_s": round(n / setup_s, 1)},
        "steps": steps,
        "phase_s": round(phase_s, 2),
        "attack_s": round(elapsed, 2),
        "attack_interrupted": interrupted,  # still running ATTACK_GRACE_S past its schedule
        "paced_requests": requests,
        "paced_rate_per_s": round(requests / phase_s, 1),
        "heartbeats": events,
        "server_cpu_cores": {**server_cpu, "total": round(sum(server_cpu.values()), 3)},
        "vegeta_cpu_cores": {a.name: round((a.cpu_s or 0) / elapsed, 3) for a in attacks},
        "machine_cpu_cores": round(machine_s / elapsed, 3),
        "shipper": {"lag_bytes_at_end": lag_end, "caught_up_after_s": caught_up},
        "edge_telemetry_dropped": dropped,
    }, Recorded(started_wall, phase_s, intervals, [a.results for a in attacks])


def read_results(
    vegeta: Path, recorded: Recorded, listeners: int, window_s: int = WINDOW_S
) -> dict[str, Any]:
    tally = PacedTally(recorded.started_wall_s, recorded.phase_s, recorded.intervals_s, window_s)
    for path in recorded.files:
        tally.add_all(parse_hit(line) for line in encoded_results(vegeta, path))
    windows = tally.window_rows(P99_TARGET_MS)
    return {
        "endpoints": tally.endpoint_summary(),
        "windows": windows,
        "target_p99_ms": P99_TARGET_MS,
        "vegeta_schedule_lag_ms": tally.schedule_lag(),
        **held_listeners(windows, listeners),
    }


def print_report(r: dict[str, Any]) -> None:
    print(
        f"\n{r['command']}\n{r['date']}: {r['listeners']:,} listeners of {r['rendition']}, "
        f"{r['steps']} segments each over {r['phase_s']:.0f} s (attack {r['attack_s']:.0f} s), "
        f"{r['paced_rate_per_s']:,.0f} paced req/s; sessions opened first: "
        f"{r['setup']['seconds']} s ({r['setup']['per_s']:,.0f}/s)\n"
    )
    print("| endpoint | requests | req/s | p50 ms | p99 ms | max ms | errors |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for name, e in r["endpoints"].items():
        lat = e["latency_ms"]
        errors = ", ".join(f"{k}: {v}" for k, v in e["errors_by_kind"].items()) or "0"
        print(
            f"| {name} | {e['requests']:,} | {e['requests_per_s']:,.0f} | {lat['p50']:.2f} "
            f"| {lat['p99']:.2f} | {lat['max']:.1f} | {errors} |"
        )
    worst = max(r["windows"], key=lambda w: w["segment_p99_ms"], default=None)
    held = r["held"]
    if r["held_all"]:
        verdict = f"held all {held:,} (every 5 s window: segment p99 < 100 ms, no error)"
    else:
        verdict = (
            f"not held: the window from {r['first_failing_window_s']} s failed with "
            f"{r['listeners_started_before_failure']:,} listeners started before it"
            + (f"; held {held:,} before then" if held else " (all start in the first step)")
        )
    if r["attack_interrupted"]:
        verdict += f"; an attack was still running {ATTACK_GRACE_S:.0f} s past its end: stopped"
    print(f"\n{verdict}")
    if worst is not None:
        print(
            f"worst window: {worst['from_s']} s, segment p99 {worst['segment_p99_ms']:.2f} ms, "
            f"{worst['errors']} errors"
        )
    cpu = r["server_cpu_cores"]
    print(
        "server cores: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items())
        + "; vegeta cores: " + ", ".join(f"{k} {v:.2f}" for k, v in r["vegeta_cpu_cores"].items())
        + f"; machine {r['machine_cpu_cores']:.2f} of {os.cpu_count()}"
    )  # fmt: skip
    lag = ", ".join(
        f"{k} p99 {v['p99_ms']:.1f} ms, max {v['max_ms']:.1f} ms"
        for k, v in r["vegeta_schedule_lag_ms"].items()
    )
    print(
        f"vegeta sent behind its schedule by: {lag} (latencies start when a request is sent: "
        "a late send is not in them)"
    )
    ship = r["shipper"]
    print(
        f"shipper: {ship['lag_bytes_at_end']:,} bytes behind at the end, caught up after "
        f"{ship['caught_up_after_s']} s; edge telemetry dropped {r['edge_telemetry_dropped']:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
