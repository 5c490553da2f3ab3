"""Real-time paced listeners against the edge: how many it holds within the latency target.

Listeners (see `benchmarks.paced`) arrive evenly over the ramp and keep playing to the end of
the run. The run is cut into windows; the edge holds the most listeners that were active
before the first window with a segment p99 at or over the target, or any error on any
endpoint, or listeners but no segments at all.
"""

from __future__ import annotations

import math
import time
from typing import Any

from benchmarks.context import Bench, Target
from benchmarks.histogram import LogHistogram
from benchmarks.load_client import ClientProcesses
from benchmarks.paced import PacedSpec, paced_main
from benchmarks.procstat import MACHINE
from benchmarks.recording import Recording, summarize_endpoint, time_line

PACED_P99_MS_TARGET = 100.0
START_DELAY_S = 2.0  # client processes import aiohttp and build listeners first
ENDPOINTS = ("session", "multivariant", "playlist", "key", "init", "segment", "events", "listener")
PLOTTED = ("segment", "playlist", "key")


def held_listeners(
    recording: Recording, window_s: int, p99_ms: float, duration_s: float
) -> tuple[int, bool, list[dict[str, Any]]]:
    """(listeners held, whether every window met the target, the windows)."""
    segment = recording.endpoints.get("segment")
    windows = []
    held, failed = 0, False
    for w in range(math.ceil(duration_s / window_s)):
        seconds = range(w * window_s, (w + 1) * window_s)
        hist = LogHistogram()
        if segment is not None:
            for s in seconds:
                if s in segment.by_second:
                    hist.merge(segment.by_second[s])
        errors = sum(
            r.errors_by_second.get(s, 0) for r in recording.endpoints.values() for s in seconds
        )
        active = max((recording.active_by_second.get(s, 0) for s in seconds), default=0)
        p99 = hist.percentile(99) / 1000
        ok = errors == 0 and p99 < p99_ms and not (active and hist.count == 0)
        windows.append(
            {
                "from_s": w * window_s,
                "listeners": active,
                "segments": hist.count,
                "p99_ms": p99,
                "errors": errors,
                "ok": ok,
            }
        )
        failed = failed or not ok
        if not failed:
            held = max(held, active)
    return held, not failed, windows


def listener_specs(target: Target, args: Any, tokens: list[str]) -> list[PacedSpec]:
    """Listener i arrives at i * ramp / n and plays in client process i mod processes."""
    procs, n = args.client_procs, len(tokens)
    offsets = [i * args.ramp / n for i in range(n)]
    return [
        PacedSpec(
            base_url=target.url,
            track_id=target.track_id,
            tokens=tuple(tokens[p::procs]),
            offsets_s=tuple(offsets[p::procs]),
            duration_s=args.duration,
            speed=args.speed,
            buffer_s=args.buffer_s,
            heartbeat_s=args.heartbeat_s,
            events=not args.no_events,
            rendition=args.paced_rendition,
            connections=max(1, args.paced_connections // procs),
            cmcd=args.cmcd,
        )
        for p in range(procs)
    ]


def run_paced(bench: Bench, target: Target) -> dict[str, Any]:
    args = bench.args
    n = args.listeners
    print(f"minting {n} listener tokens ...", flush=True)
    specs = listener_specs(target, args, target.tokens(n))
    if target.edge is not None:
        bench.sampler.watch("edge", target.edge.pids)
    clients = ClientProcesses(args.client_procs)
    bench.sampler.watch("client", clients.pids)
    started = time.monotonic() + START_DELAY_S
    end = started + args.duration
    title = f"paced: {n} listeners x{args.speed:g}"

    def tick() -> None:
        ok, errors, active = clients.totals()
        bench.progress.show(title, time.monotonic() - started, args.duration, ok, errors, active)

    profiler = (
        bench.start_profile(target.edge.pid, "edge-paced", START_DELAY_S + args.duration)
        if args.profile and target.edge
        else None
    )
    try:
        result = clients.run(paced_main, specs, started, end, on_tick=tick)
    finally:
        bench.progress.clear()
        if profiler is not None:
            bench.end_profile(profiler, "edge-paced")
    bench.sampler.sample()
    recording = result.recording
    endpoints = {
        name: summarize_endpoint(recording.endpoints[name], args.duration)
        for name in ENDPOINTS
        if name in recording.endpoints
    }
    held, held_all, windows = held_listeners(
        recording, args.window_s, PACED_P99_MS_TARGET, args.duration
    )
    window = (started, end)
    paced = {
        "listeners": n,
        "ramp_s": args.ramp,
        "duration_s": args.duration,
        "speed": args.speed,
        "buffer_s": args.buffer_s,
        "heartbeat_s": args.heartbeat_s,
        "events": not args.no_events,
        "cmcd": args.cmcd,
        "client_processes": args.client_procs,
        "connections": args.paced_connections,
        "window_s": args.window_s,
        "target_p99_ms": PACED_P99_MS_TARGET,
        "held_listeners": held,
        "held_all": held_all,
        "equivalent_listeners": round(held * args.speed),
        "late_segments": recording.counters.get("late_segments", 0),
        "endpoints": endpoints,
        "windows": windows,
        "server_cpu": bench.sampler.summary("edge", *window),
        "client_cpu": bench.sampler.summary("client", *window),
        "machine_cpu": bench.sampler.summary(MACHINE, *window),
        "generator_cpu_s": round(result.client_cpu_s, 2),
        "timeline": {
            name: time_line(recording.endpoints[name]) if name in recording.endpoints else []
            for name in PLOTTED
        },
        "active": [
            {"second": s, "listeners": c} for s, c in sorted(recording.active_by_second.items())
        ],
    }
    seg = endpoints.get("segment")
    print(
        f"  paced: held {'>= ' if held_all else ''}{held} listeners (x{args.speed:g}); "
        f"segments p99 {seg['latency_ms']['p99'] if seg else float('nan'):.2f} ms, "
        f"errors {sum(e['errors'] for e in endpoints.values())}, "
        f"late segments {paced['late_segments']}",
        flush=True,
    )
    return paced
