"""Soak: real-time listeners for half an hour at a fixed share of capacity; nothing may grow.

    python -m benchmarks.soak [--minutes 30] [--listeners 6000] [--workers 2] [--sample-s 60]
        [--warmup-s 300] [--data-dir D] [--out DIR] [--check] [--no-pretouch]
    streamer bench soak ...                          (the same)

The load is `benchmarks.vegeta_paced`'s, for `--minutes`: `streamer serve` (nginx, the edge,
the log shipper) on one track long enough to play for the whole soak, every listener asking
for one segment per segment duration with CMCD, and its heartbeat every 30 s of audio. The
default 6,000 listeners with 2 edge workers is half of the 12,000 the tier held with 2 workers
on the 2-core benchmark machine (benchmarks/README.md, "Delivery tier").

Every `--sample-s` (60) seconds, from the process tree of `streamer serve`: RSS (and its
private and shared parts) and open file descriptors, sockets apart, of every process
(supervisor, nginx master and workers, edge and its workers, shipper); the telemetry spool's
bytes on disk (`<data>/spool/`), nginx's caches (everything under `<data>/nginx/` but its
logs), the shipper's lag behind the access log, the stores' sizes (each SQLite file, WAL
apart; the access log), and the nginx gate's status (each worker's Lua heap, each zone's free
bytes) from its loopback status listener. From vegeta's results, per window of the same
length: the segment p99, segments and errors.

Judged after `--warmup-s` (300) seconds (benchmarks.soak_judge): each RSS, private RSS, open
files (not sockets), spool, nginx cache and shipper lag series is flat when no sample after its
first post-warm-up value v0 exceeds v0 + max(10 % of v0, floor), its process being the same
one throughout (floors, the noise of each quantity, in benchmarks.soak_report: 1 MiB for RSS,
spool and cache, 10 open files, 8 MiB of shipper lag); segment p99 is judged against the
100 ms target instead of its start (every window from the warm-up on: p99 < 100 ms, no error,
some segments). Reported, not judged: shared RSS, the Lua heaps and the zones' free bytes; the
stores, which grow by design; and sockets, which follow the load generator's connections
(vegeta keeps every connection it opens, up to `--connections`), not the server's age.

Writes soak.json, soak.md (a table per sample) and a PNG per quantity (matplotlib, from the
`bench` extra) to `--out`. `--check` exits 1 when anything judged is not flat.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.report import machine_info, write_json
from benchmarks.servers import free_port
from benchmarks.soak_judge import judge_all, overall
from benchmarks.soak_report import render_markdown, rows_of, series_of, verdict_table, write_plots
from benchmarks.soak_sampler import SoakSampler
from benchmarks.vegeta_install import VegetaUnavailable, ensure_vegeta
from benchmarks.vegeta_paced import add_paced_options, measure
from benchmarks.vegeta_results import P99_TARGET_MS

DEFAULT_LISTENERS = 6_000  # half of the 12,000 held with 2 edge workers (benchmarks/README.md)
DEFAULT_WORKERS = 2
DEFAULT_MINUTES = 30.0  # issue 15
DEFAULT_SAMPLE_S = 60
DEFAULT_WARMUP_S = 300
TRACK_MARGIN_S = 60.0  # the track outlasts the soak: every listener plays to the end of it
RESULTS_DIR = Path("benchmarks/results")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.splitlines()[0]
    )
    add_paced_options(parser, listeners=DEFAULT_LISTENERS, workers=DEFAULT_WORKERS)
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    parser.add_argument("--sample-s", type=int, default=DEFAULT_SAMPLE_S)
    parser.add_argument("--warmup-s", type=int, default=DEFAULT_WARMUP_S)
    parser.add_argument("--out", type=Path, help="default benchmarks/results/soak-<time>/")
    parser.add_argument("--check", action="store_true", help="exit 1 when not flat")
    parser.add_argument(
        "--no-pretouch",
        action="store_true",
        help="leave nginx's zones to be touched as used (the server before run G)",
    )
    args = parser.parse_args(argv)
    if args.sample_s < 1:
        parser.error(f"--sample-s must be at least 1 s, got {args.sample_s}")
    if not 0 <= args.warmup_s <= args.minutes * 60 - 2 * args.sample_s:
        parser.error(
            f"--warmup-s {args.warmup_s} leaves fewer than two samples of --sample-s "
            f"{args.sample_s} in {args.minutes:g} minutes"
        )
    # What vegeta_paced.measure reads.
    args.duration = args.minutes * 60
    args.track_seconds = args.duration + TRACK_MARGIN_S
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        vegeta = ensure_vegeta()
    except VegetaUnavailable as exc:
        print(exc, file=sys.stderr)
        return 2
    command = " ".join(sys.argv[1:] if argv is None else argv)
    out = args.out or RESULTS_DIR / time.strftime("soak-%Y%m%d-%H%M%S", time.gmtime())
    load_start = _load()
    began = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    # The nginx gate's status listener, read with every sample: its workers' Lua heaps and
    # zones' free space (reported, not judged).
    status_port = free_port()
    sampler = SoakSampler(args.sample_s, status_port=status_port)
    track_id = f"soak-{args.track_seconds:.0f}s"
    paced = measure(
        args, vegeta, track_id, sampler.watching, args.sample_s,
        server_env={
            "STREAMER_NGINX_STATUS_PORT": str(status_port),
            "STREAMER_NGINX_PRETOUCH_ZONES": "false" if args.no_pretouch else "true",
        },
    )  # fmt: skip
    windows = paced.pop("windows")
    series = series_of(sampler.samples)
    verdicts = judge_all(series, windows, args.sample_s, args.warmup_s, P99_TARGET_MS)
    flat = overall(verdicts)
    doc: dict[str, Any] = {
        "command": f"python -m benchmarks.soak {command}".strip(),
        "date": began,
        "machine": machine_info(),
        "load_average": {"start": load_start, "end": _load()},
        "listeners": args.listeners,
        "workers": args.workers,
        "minutes": args.minutes,
        "sample_s": args.sample_s,
        "warmup_s": args.warmup_s,
        "flat": flat,
        "verdicts": [dataclasses.asdict(v) for v in verdicts],
        "rows": rows_of(sampler.samples, windows, args.sample_s),
        "windows": windows,
        "paced": paced,
    }
    out.mkdir(parents=True, exist_ok=True)
    written = [write_json(out / "soak.json", doc)]
    (out / "soak.md").write_text(render_markdown(doc))
    written.append(out / "soak.md")
    plots = write_plots(series, verdicts, windows, args.warmup_s, out)
    print("\n".join(["", doc["command"], *verdict_table(verdicts), ""]))
    if plots is None:
        print("no plots: matplotlib is not installed (pip install -e '.[bench]')", file=sys.stderr)
    else:
        written += plots
    print("wrote " + ", ".join(str(p) for p in written))
    return 1 if args.check and flat is False else 0


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
