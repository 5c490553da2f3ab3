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
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from benchmarks.edge_setup import (
    DEFAULT_TRACK_S,
    Track,
    describe_track,
    listener_tokens,
    prepare_track,
    scrape_telemetry,
    start_edge,
)
from benchmarks.player import session_token_of
from benchmarks.procstat import cpu_ticks, machine_busy_ticks
from benchmarks.servers import ServerProcess
from benchmarks.vegeta_install import VegetaUnavailable, ensure_vegeta
from benchmarks.vegeta_results import P99_TARGET_MS, PacedTally, held_listeners, parse_hit
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
from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.process import default_state_path
from cdn_edge.nginx_tier.from_settings import tier_config
from streamer.settings import load_settings

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
SETUP_CONCURRENCY = 64  # sessions opened at once: the edge's session path, not the load
SETUP_TIMEOUT_S = 30.0
REQUEST_TIMEOUT = "10s"  # vegeta -timeout: connect to last byte
ATTACK_GRACE_S = 120.0  # an attack this far past its schedule is interrupted
POLL_S = 0.2
PROGRESS_EVERY_S = 10.0
NGINX_LOG_FLUSH_S = 1.5  # the access log is buffered, flushed every second (nginx_tier config)
CATCH_UP_WAIT_S = 60.0
CODECS = ("mp4a.40.2", "opus")


# Step 2: sessions, opened before the measured phase.


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


# Step 3: the attacks.


@dataclass
class Attack:
    name: str
    process: subprocess.Popen[bytes]
    results: Path
    cpu_s: float | None = None  # vegeta's utime + stime, once it has exited


def _write_lines(path: Path, lines: Iterable[str]) -> int:
    count = 0
    with path.open("w") as f:
        for line in lines:
            f.write(line)
            count += 1
    return count


def start_attack(
    vegeta: Path,
    name: str,
    targets: Path,
    rate: str,
    connections: int,
    work: Path,
    json_format: bool = False,
) -> Attack:
    results = work / f"{name}.results.bin"
    argv = [
        str(vegeta), "attack", "-name", name, "-targets", str(targets),
        "-format", "json" if json_format else "http",
        "-lazy",  # read as sent: the targets file of 20,000 listeners is ~200 MB
        "-rate", rate, "-duration", "0",  # to the end of the targets file
        "-timeout", REQUEST_TIMEOUT, "-keepalive=true", "-max-body", "0",
        # An idle pool as large as the most connections, so none is closed and reopened;
        # workers grow as answers slow down (vegeta adds one whenever all are busy), up to
        # one per connection, past which requests would wait for a worker off the schedule.
        "-connections", str(connections), "-max-connections", str(connections),
        "-workers", str(min(64, connections)), "-max-workers", str(connections),
        "-output", str(results),
    ]  # fmt: skip
    log = (work / f"{name}.vegeta.log").open("wb")
    process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    log.close()
    return Attack(name, process, results)


def wait_attacks(attacks: list[Attack], deadline_s: float, progress: Any) -> None:
    """Reap the attacks (their CPU from wait4), interrupting any still running at the deadline."""
    interrupted = False
    next_progress = time.monotonic() + PROGRESS_EVERY_S
    while any(a.cpu_s is None for a in attacks):
        for attack in attacks:
            if attack.cpu_s is not None:
                continue
            pid, status, usage = os.wait4(attack.process.pid, os.WNOHANG)
            if pid:
                attack.process.returncode = os.waitstatus_to_exitcode(status)
                attack.cpu_s = usage.ru_utime + usage.ru_stime
        now = time.monotonic()
        if now >= deadline_s and not interrupted:
            for attack in attacks:
                if attack.cpu_s is None:  # SIGINT: vegeta stops and flushes its results
                    attack.process.send_signal(signal.SIGINT)
            interrupted = True
            deadline_s = now + 30.0
        elif interrupted and now >= deadline_s:
            for attack in attacks:
                if attack.cpu_s is None:
                    attack.process.kill()
        if now >= next_progress:
            progress()
            next_progress = now + PROGRESS_EVERY_S
        time.sleep(POLL_S)
    for attack in attacks:
        if attack.process.returncode != 0:
            raise RuntimeError(
                f"vegeta attack {attack.name} exited with status {attack.process.returncode}; "
                f"see {attack.results.parent / (attack.name + '.vegeta.log')}"
            )


def encoded_results(vegeta: Path, results: Path) -> Iterator[str]:
    """The results file as JSON lines, streamed from `vegeta encode`."""
    process = subprocess.Popen(
        [str(vegeta), "encode", "--to", "json", str(results)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    try:
        yield from process.stdout
    finally:
        process.stdout.close()
        if process.wait(timeout=60) != 0:
            raise RuntimeError(f"vegeta encode {results} exited with {process.returncode}")


# Step 4: what the server spent, and the shipper's lag.


def _stat_fields(pid: int) -> list[str] | None:
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return data[data.rindex(b")") + 2 :].decode().split()


def process_class(cmdline: str, comm: str) -> str:
    """Which part of the delivery tier a process of `streamer serve` is."""
    if comm == "nginx":
        return "nginx"
    if " logship " in f" {cmdline} ":
        return "logship"
    if "--segments" in cmdline:  # the supervisor starts the edge with `--segments python`
        return "edge"
    return "supervisor"


def server_ticks(server: ServerProcess) -> dict[str, int]:
    """utime + stime per part of the tier; a worker counts with the process that started it."""
    pids = server.pids()
    parent: dict[int, int] = {}
    own: dict[int, str] = {}
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        parent[pid] = int(fields[1])
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        own[pid] = process_class(cmdline, comm)
    totals: dict[str, int] = {}
    for pid in own:
        name, up = own[pid], pid
        while name == "supervisor" and up != server.pid and parent.get(up) in own:
            up = parent[up]
            name = own[up]
        totals[name] = totals.get(name, 0) + (cpu_ticks(pid) or 0)
    return totals


def shipper_lag_bytes(data_dir: Path) -> int:
    """Bytes of nginx's access log the shipper has not shipped (its position file)."""
    settings = load_settings(environ={}, data_dir=data_dir)
    log = tier_config(settings, "127.0.0.1:1").access_log
    try:
        size = log.stat()
    except FileNotFoundError:
        return 0
    position = OffsetFile(default_state_path(settings, log)).load()  # read only, no lock
    if position is None or (position.device, position.inode) != (size.st_dev, size.st_ino):
        return size.st_size
    return max(0, size.st_size - position.offset)


def catch_up_s(data_dir: Path, timeout_s: float) -> float | None:
    """Seconds until the shipper reached the log's end, None if not within `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if shipper_lag_bytes(data_dir) == 0:
            return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


# The run.


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.vegeta_paced", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--listeners", type=int, default=20_000)
    parser.add_argument("--duration", type=float, default=180.0, help="paced phase, seconds")
    parser.add_argument("--workers", type=int, default=1, help="edge and nginx workers")
    parser.add_argument("--data-dir", type=Path, help="kept and reused (default: temporary)")
    parser.add_argument("--track-seconds", type=float, default=DEFAULT_TRACK_S)
    parser.add_argument("--rendition", default="aac_160")
    parser.add_argument("--no-events", action="store_true", help="no heartbeat attack")
    parser.add_argument("--no-cmcd", action="store_true", help="no CMCD query arguments")
    parser.add_argument(
        "--connections", type=int, default=1000, help="paced attack's most connections"
    )
    parser.add_argument("--event-connections", type=int, default=200)
    parser.add_argument("--out", type=Path, help="directory for vegeta_paced.json")
    args = parser.parse_args(argv)
    try:
        vegeta = ensure_vegeta()
    except VegetaUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="vegeta-paced-") as scratch:
        work = Path(scratch)
        data_dir = args.data_dir or work / "data"
        track = prepare_track(data_dir, seconds=args.track_seconds)
        server, base_url = start_edge(data_dir, args.workers, work / "edge.log")
        try:
            result = run(args, vegeta, work, data_dir, track, server, base_url)
        finally:
            server.stop()
        result["track"] = describe_track(track)
        result.update(read_results(vegeta, result.pop("_attacks"), result))
    print_report(result)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "vegeta_paced.json").write_text(json.dumps(result, indent=1) + "\n")
    return 0


def run(
    args: argparse.Namespace,
    vegeta: Path,
    work: Path,
    data_dir: Path,
    track: Track,
    server: ServerProcess,
    base_url: str,
) -> dict[str, Any]:
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

    def progress() -> None:
        print(f"  {time.monotonic() - started:.0f} / {phase_s:.0f} s", file=sys.stderr, flush=True)

    wait_attacks(attacks, started + phase_s + ATTACK_GRACE_S, progress)
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
        "command": "python -m benchmarks.vegeta_paced " + " ".join(sys.argv[1:]),
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
        "paced_requests": requests,
        "paced_rate_per_s": round(requests / phase_s, 1),
        "heartbeats": events,
        "server_cpu_cores": {**server_cpu, "total": round(sum(server_cpu.values()), 3)},
        "vegeta_cpu_cores": {a.name: round((a.cpu_s or 0) / elapsed, 3) for a in attacks},
        "machine_cpu_cores": round(machine_s / elapsed, 3),
        "shipper": {"lag_bytes_at_end": lag_end, "caught_up_after_s": caught_up},
        "edge_telemetry_dropped": dropped,
        "_attacks": (started_wall, phase_s, [a.results for a in attacks]),
    }


def read_results(vegeta: Path, attacks: Any, result: dict[str, Any]) -> dict[str, Any]:
    started_wall, phase_s, files = attacks
    tally = PacedTally(started_wall, phase_s)
    for path in files:
        tally.add_all(parse_hit(line) for line in encoded_results(vegeta, path))
    windows = tally.window_rows(P99_TARGET_MS)
    return {
        "endpoints": tally.endpoint_summary(),
        "windows": windows,
        "target_p99_ms": P99_TARGET_MS,
        **held_listeners(windows, result["listeners"]),
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
    ship = r["shipper"]
    print(
        f"shipper: {ship['lag_bytes_at_end']:,} bytes behind at the end, caught up after "
        f"{ship['caught_up_after_s']} s; edge telemetry dropped {r['edge_telemetry_dropped']:.0f}"
    )


if __name__ == "__main__":
    sys.exit(main())
