"""Listener load on the edge, with nginx and a minimal aiohttp server as baselines in the run.

    python -m benchmarks.listeners --mode rate  [--seconds 10] [--connections 64] [--runs 3]
    python -m benchmarks.listeners --mode paced [--listeners 10000] [--ramp 60] [--duration 180]

Sets up a data directory (or reuses `--data-dir`), ingests a sample master, starts
`streamer serve --workers N` on a free loopback port (or targets `--url`), and drives it:

    rate    each endpoint (media playlist, key, cached segment) at its maximum rate: closed
            loop with C connections, or open loop at `--rate` requests/s; the same load on
            nginx serving the same stored segment bytes and on a minimal aiohttp server that
            verifies one HMAC and answers 1 KB; our edge as a ratio to each.
    paced   listeners playing in real time (or `--speed` times faster), arriving over a ramp;
            how many the edge holds with p99 segment latency under 100 ms and no errors.

Writes JSON, Markdown and a PNG plot to `--out` and prints the targets with pass/fail.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.context import Bench, Target
from benchmarks.edge_setup import (
    DEFAULT_TRACK_ID,
    DEFAULT_TRACK_S,
    listener_tokens,
    prepare_track,
    scrape_telemetry,
    start_edge,
)
from benchmarks.paced import HEARTBEAT_S, HLSJS_BUFFER_S
from benchmarks.paced_mode import run_paced
from benchmarks.procstat import ProcessSampler
from benchmarks.progress import ProgressLine
from benchmarks.rate_mode import KEY_RATE_GUESS, RATE_ENDPOINTS, run_rate
from benchmarks.report import FAIL, machine_info, write_reports
from benchmarks.servers import ServerProcess, descendants
from benchmarks.targets import evaluate_targets

RESULTS_DIR = Path(__file__).resolve().parent / "results"  # ignored by git
EDGE_LOG_TAIL_BYTES = 256 * 1024  # of the edge's log, kept with the report
EDGE_WARNINGS_MAX = 10_000  # warning and error lines of the whole log, kept with the report
TELEMETRY_SETTLE_S = 2.0  # the writers' last batches (every 0.25 s) land before the count


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamer bench listeners", description=__doc__.splitlines()[0]
    )
    p.add_argument("--mode", choices=("rate", "paced", "both"), default="rate")
    where = p.add_argument_group("the edge under test")
    where.add_argument(
        "--data-dir",
        type=Path,
        help="data directory to use and keep "
        "(default: a temporary one); its track is reused if published",
    )
    where.add_argument("--master", type=Path, help="master to ingest instead of a sample")
    where.add_argument("--track-id", default=DEFAULT_TRACK_ID)
    where.add_argument(
        "--track-seconds",
        type=float,
        default=DEFAULT_TRACK_S,
        help="length of the generated sample master",
    )
    where.add_argument("--workers", type=int, default=2, help="streamer serve --workers")
    where.add_argument("--url", help="drive this running edge instead (needs --token)")
    where.add_argument("--token", help="listener token for --url (e.g. from `streamer token`)")
    load = p.add_argument_group("load generator")
    load.add_argument("--client-procs", type=int, default=2, help="load generator processes")
    load.add_argument("--runs", type=int, default=1, help="repeat rate phases (median, min, max)")
    load.add_argument("--out", type=Path, help="report directory (default benchmarks/results/)")
    load.add_argument("--check", action="store_true", help="exit 1 if any target fails")
    load.add_argument(
        "--no-cmcd",
        dest="cmcd",
        action="store_false",
        help="send no CMCD (to measure what the edge's CMCD handling costs)",
    )
    load.add_argument(
        "--profile",
        action="store_true",
        help="py-spy flame graph of the edge during each first-run phase",
    )
    rate = p.add_argument_group("rate mode")
    rate.add_argument("--endpoints", default=",".join(RATE_ENDPOINTS))
    rate.add_argument("--connections", type=int, default=64)
    rate.add_argument("--rate", type=float, help="open loop at this many req/s (default closed)")
    rate.add_argument("--seconds", type=float, default=10.0, help="measured seconds per phase")
    rate.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds first")
    rate.add_argument("--sessions", type=int, default=1000, help="sessions in the playlist pool")
    rate.add_argument(
        "--key-sessions",
        type=int,
        help="sessions in the key pool (default sized for "
        f"{KEY_RATE_GUESS:.0f} req/s within the per-session key rate limit)",
    )
    rate.add_argument(
        "--segment-sessions",
        type=int,
        default=1000,
        help="sessions whose segment URLs make the segment pool",
    )
    rate.add_argument("--rendition", default="aac_160", help="rendition of playlists and segments")
    rate.add_argument(
        "--baselines", default="nginx,hmac", help="comma list of nginx, hmac; empty for none"
    )
    rate.add_argument("--nginx-workers", type=int, default=2)
    rate.add_argument("--hmac-processes", type=int, default=1)
    paced = p.add_argument_group("paced mode")
    paced.add_argument("--listeners", type=int, default=10_000)
    paced.add_argument("--ramp", type=float, default=60.0, help="seconds over which they arrive")
    paced.add_argument("--duration", type=float, default=180.0, help="whole run, ramp included")
    paced.add_argument("--speed", type=float, default=1.0, help="play this many times faster")
    paced.add_argument("--buffer-s", type=float, default=HLSJS_BUFFER_S)
    paced.add_argument("--heartbeat-s", type=float, default=HEARTBEAT_S, help="0: none")
    paced.add_argument("--no-events", action="store_true", help="post no player events")
    paced.add_argument("--paced-rendition", help="default: the session's start variant")
    paced.add_argument("--paced-connections", type=int, default=1000)
    paced.add_argument("--window-s", type=int, default=5, help="window of the held-listener test")
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    if args.url and not args.token:
        parser.error("--url needs --token (a listener token the edge accepts)")
    for name in ("client_procs", "runs", "connections", "listeners", "workers", "window_s"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("seconds", "duration", "speed"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be above 0")
    if args.ramp < 0 or args.warmup < 0:
        parser.error("--ramp and --warmup must be >= 0")
    args.baselines = {b for b in args.baselines.split(",") if b}
    if args.baselines - {"nginx", "hmac"}:
        parser.error("--baselines takes nginx and/or hmac")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or RESULTS_DIR / f"listeners-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    progress = ProgressLine()
    command = "python -m benchmarks.listeners " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    with tempfile.TemporaryDirectory(prefix="bench-listeners-") as tmp:
        work = Path(tmp)
        data_dir = args.data_dir or work / "data"
        target: Target
        edge: ServerProcess | None = None
        try:
            if args.url:
                token = args.token
                target = Target(args.url.rstrip("/"), args.track_id, lambda n: [token] * n)
            else:
                print(f"preparing track {args.track_id} in {data_dir} ...", flush=True)
                track = prepare_track(data_dir, args.track_id, args.master, args.track_seconds)
                # The full log (an access-log line per request) stays in the temporary
                # directory; its tail is kept with the report.
                edge, url = start_edge(data_dir, args.workers, work / "edge.log")
                target = Target(
                    url,
                    track.track_id,
                    lambda n: listener_tokens(data_dir, n),
                    edge,
                    track,
                    args.workers,
                )
                print(f"edge: {url}, {args.workers} worker(s), pids {descendants(edge.pid)}")
            with ProcessSampler() as sampler:
                sampler.watch("generator", lambda: [os.getpid()])
                bench = Bench(args, sampler, progress, out_dir, work)
                doc: dict[str, Any] = {
                    "benchmark": "listeners",
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "command": command,
                    "machine": machine_info(),
                    "edge": {
                        "url": target.url,
                        "workers": args.workers if edge else None,
                        "track_id": target.track_id,
                    },
                }
                if args.mode in ("rate", "both"):
                    doc["rate"] = run_rate(bench, target)
                if args.mode in ("paced", "both"):
                    doc["paced"] = run_paced(bench, target)
                if edge is not None:  # what its writer kept up with: nothing dropped is the aim
                    time.sleep(TELEMETRY_SETTLE_S)
                    doc["edge"]["telemetry"] = scrape_telemetry(target.url)
        finally:
            if edge is not None:
                status = edge.stop()
                (out_dir / "edge.log").write_text(edge.log_tail(EDGE_LOG_TAIL_BYTES))
                warnings = edge.log_lines(("warning", "error", "critical"), EDGE_WARNINGS_MAX)
                (out_dir / "edge-warnings.log").write_text("".join(warnings))
                if warnings:
                    print(f"note: the edge logged {len(warnings)} warning(s) or error(s); see "
                          f"{out_dir / 'edge-warnings.log'}")  # fmt: skip
                if status not in (0, None, -15):
                    print(f"note: the edge exited with status {status}; see {out_dir / 'edge.log'}")
    doc["targets"] = evaluate_targets(doc, args)
    written = write_reports(doc, out_dir)
    print()
    for t in doc["targets"]:
        print(f"{t['result']:>16}  {t['name']}: {t['measured']} (target {t['threshold']})")
    print("\nreport: " + ", ".join(str(p) for p in written))
    failed = any(str(t["result"]).startswith(FAIL) for t in doc["targets"])
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
