"""Maximum rate per endpoint: the edge's media playlists, keys and cached segments, and the same
load on the baselines (nginx for segments, the aiohttp HMAC server for playlists and keys).

Phases run one at a time, in alternating order from one run to the next so that drift in the
machine's load hits both sides of a ratio. Each phase reports throughput, latency, errors and
bytes, and the CPU and memory of the server, the load generator and the whole machine during
its measured window.

One module on purpose (about 440 lines): the phases and the run that alternates them share
the phase records and are read together.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import uvloop

from benchmarks.baselines import Baseline, HmacBaseline, start_hmac, start_nginx
from benchmarks.context import Bench, Target
from benchmarks.edge_setup import segment_files
from benchmarks.load_client import (
    CHECK_KEY,
    CHECK_PLAYLIST,
    Budget,
    ClientProcesses,
    EndpointSpec,
    run_endpoint,
)
from benchmarks.paced import DEFAULT_CODECS
from benchmarks.procstat import MACHINE
from benchmarks.recording import summarize_endpoint, time_line
from benchmarks.session_pool import SessionUrls, open_sessions
from benchmarks.stats import summarize
from cdn_edge.policy.key_budget import LISTENER_BUDGET, MIN_REFILL_S, SESSION_MARGIN

RATE_ENDPOINTS = ("playlist", "key", "segment")
KEY_RATE_GUESS = 6000.0  # req/s the key pool is sized for; --key-sessions overrides
SETUP_TIMEOUT_S = 300.0
LONGEST_TRACK_S = 4 * 3600.0  # with --url the track is not known: assume the slowest refill
START_DELAY_S = 1.5  # client processes import aiohttp before they start together


def key_budget(track_s: float) -> Budget:
    """What each key URL may be asked within the edge's key budgets (cdn_edge.policy.key_budget),
    mirrored by the client so that no key request is refused for asking too often.

    Every pool session has a listener of its own; the bucket mirrored is the smaller of the
    listener's and the least any session of a `track_s` track gets (its margin)."""
    return Budget(
        min(SESSION_MARGIN, LISTENER_BUDGET.capacity),
        min(LISTENER_BUDGET.refill_per_s, SESSION_MARGIN / max(track_s, MIN_REFILL_S)),
    )


def key_pool_size(seconds: float, budget: Budget) -> int:
    """Sessions enough for KEY_RATE_GUESS key requests/s over `seconds` within `budget`."""
    return math.ceil(KEY_RATE_GUESS * seconds / (budget.burst + budget.rate_per_s * seconds))


def in_step(sessions: Sequence[SessionUrls]) -> list[str]:
    """Every session's first segment, then every session's second, ...: listeners in step.

    Each (session, segment) is asked for once per pass, as players do, rather than a few
    sessions asking for the same segments over and over (which also piles up telemetry on
    a few sessions in a way no player does)."""
    longest = max((len(s.segment_urls) for s in sessions), default=0)
    return [
        s.segment_urls[index]
        for index in range(longest)
        for s in sessions
        if index < len(s.segment_urls)
    ]


def _query(url: str) -> str:
    """The query of an edge URL (its CMCD, if any), with its `?`."""
    _, sep, query = url.partition("?")
    return sep + query


def run_phase(
    bench: Bench,
    *,
    label: str,
    server: str,
    pids: Callable[[], list[int]],
    endpoint: str,
    urls: Sequence[str],
    run: int,
    budget: Budget | None = None,
    check: str | None = None,
    profile_pid: int | None = None,
) -> dict[str, Any]:
    """Drive one endpoint of one server; the phase's record for the report."""
    args = bench.args
    spec = EndpointSpec(
        endpoint=endpoint,
        urls=tuple(urls),
        connections=args.connections,
        duration_s=args.seconds,
        warmup_s=args.warmup,
        rate_per_s=args.rate,
        budget=budget,
        check=check,
    )
    bench.sampler.watch(server, pids)
    title = f"run {run}: {label} {endpoint}"
    total = args.warmup + args.seconds
    began = time.monotonic()

    def on_start(clients: ClientProcesses) -> None:
        bench.sampler.watch("client", clients.pids)

    def on_tick(clients: ClientProcesses) -> None:
        ok, errors, _ = clients.totals()
        elapsed = time.monotonic() - began - START_DELAY_S
        bench.progress.show(title, elapsed, total, ok, errors, 0)

    name = f"{server}-{endpoint}"
    profiler = (
        bench.start_profile(profile_pid, name, START_DELAY_S + total) if profile_pid else None
    )
    try:
        result = run_endpoint(
            spec, args.client_procs, on_start, on_tick, start_delay_s=START_DELAY_S
        )
    finally:
        bench.progress.clear()
        if profiler is not None:
            bench.end_profile(profiler, name)
    bench.sampler.sample()
    measured_from = result.recording.started + args.warmup
    window = (measured_from, measured_from + args.seconds)
    record = result.recording.endpoint(endpoint)
    phase = {
        "label": label,
        "server": server,
        "endpoint": endpoint,
        "run": run,
        "connections": args.connections,
        "rate_per_s": args.rate,
        "seconds": args.seconds,
        "urls": len(urls),
        "result": summarize_endpoint(record, args.seconds),
        "server_cpu": bench.sampler.summary(server, *window),
        "client_cpu": bench.sampler.summary("client", *window),
        "client_cpu_s_total": round(result.client_cpu_s, 2),
        "machine_cpu": bench.sampler.summary(MACHINE, *window),
        "counters": dict(result.recording.counters),
        "timeline": time_line(record),
    }
    # CPU per request: steadier than requests/s on a machine shared with other work.
    for group in ("server", "client"):
        cpu_s = phase[f"{group}_cpu"]["cpu_s"]
        ok = phase["result"]["ok"]
        phase[f"{group}_cpu_us_per_request"] = (
            round(cpu_s * 1e6 / ok, 1) if cpu_s is not None and ok else None
        )
    s = phase["result"]

    def cores(group: str) -> str:
        value = phase[f"{group}_cpu"]["cpu_cores_mean"]
        return "-" if value is None else f"{value:.2f}"

    print(
        f"  {title:44} {s['requests_per_s']:8.0f} req/s  p50 {s['latency_ms']['p50']:6.2f}  "
        f"p99 {s['latency_ms']['p99']:7.2f} ms  errors {s['errors']}  "
        f"cores: server {cores('server')}  client {cores('client')}  "
        f"machine {cores('machine')}",
        flush=True,
    )
    if result.recording.counters.get("budget_waits"):
        bench.notes.append(
            f"{label} {endpoint} run {run}: the key URL pool ran dry "
            f"{result.recording.counters['budget_waits']} times (the client mirrors the "
            "per-session key rate limit): the client limited this rate; raise --key-sessions"
        )
    return phase


def _median_of(
    phases: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]
) -> dict[str, Any] | None:
    values = [get(p) for p in phases]
    known = [v for v in values if v is not None]
    return vars(summarize(known)) if known else None


def _max_of(phases: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> Any:
    return max((v for p in phases if (v := get(p)) is not None), default=None)


def summarize_phases(phases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (server, endpoint): medians with min and max over runs."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for phase in phases:
        groups.setdefault((phase["label"], phase["endpoint"]), []).append(phase)
    rows = []
    for (label, endpoint), group in groups.items():
        errors: dict[str, int] = {}
        for p in group:
            for kind, n in p["result"]["errors_by_kind"].items():
                errors[kind] = errors.get(kind, 0) + n
        rows.append(
            {
                "label": label,
                "server": group[0]["server"],
                "endpoint": endpoint,
                "requests_per_s": _median_of(group, lambda p: p["result"]["requests_per_s"]),
                "p50_ms": _median_of(group, lambda p: p["result"]["latency_ms"]["p50"]),
                "p90_ms": _median_of(group, lambda p: p["result"]["latency_ms"]["p90"]),
                "p99_ms": _median_of(group, lambda p: p["result"]["latency_ms"]["p99"]),
                "max_ms": max(p["result"]["latency_ms"]["max"] for p in group),
                "mbit_per_s": _median_of(group, lambda p: p["result"]["mbit_per_s"]),
                "errors": sum(errors.values()),
                "errors_by_kind": errors,
                "server_cpu_cores": _median_of(group, lambda p: p["server_cpu"]["cpu_cores_mean"]),
                "server_rss_mib": _max_of(group, lambda p: p["server_cpu"]["rss_mib_max"]),
                "client_cpu_cores": _median_of(group, lambda p: p["client_cpu"]["cpu_cores_mean"]),
                "server_us_per_request": _median_of(
                    group, lambda p: p.get("server_cpu_us_per_request")
                ),
                "client_us_per_request": _median_of(
                    group, lambda p: p.get("client_cpu_us_per_request")
                ),
                "machine_cpu_cores": _median_of(
                    group, lambda p: p.get("machine_cpu", {}).get("cpu_cores_mean", 0.0)
                ),
            }
        )
    return rows


def find_row(rows: list[dict[str, Any]], server: str, endpoint: str) -> dict[str, Any] | None:
    return next((r for r in rows if r["server"] == server and r["endpoint"] == endpoint), None)


RATIO_PAIRS = (
    ("playlist issuance vs aiohttp HMAC", ("edge", "playlist"), ("hmac", "playlist")),
    ("key issuance vs aiohttp HMAC", ("edge", "key"), ("hmac", "playlist")),
    ("cached segment delivery vs nginx", ("edge", "segment"), ("nginx", "segment")),
)


def ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Our edge's median requests/s over each baseline's."""
    out = []
    for name, ours_at, base_at in RATIO_PAIRS:
        ours, base = find_row(rows, *ours_at), find_row(rows, *base_at)
        if ours is None or base is None or not ours["requests_per_s"]:
            continue
        if not base["requests_per_s"] or not base["requests_per_s"]["median"]:
            continue
        o, b = ours["requests_per_s"]["median"], base["requests_per_s"]["median"]
        out.append(
            {
                "name": f"{name} ({ours['label']} / {base['label']})",
                "key": name,
                "ours": o,
                "baseline": b,
                "ratio": o / b,
            }
        )
    return out


class RateRun:
    """The rate phases of one benchmark run: URL pools, baselines, phases in order."""

    def __init__(self, bench: Bench, target: Target, endpoints: list[str]) -> None:
        self.bench = bench
        self.target = target
        self.endpoints = endpoints
        self.args = bench.args
        self.phases: list[dict[str, Any]] = []
        self.nginx: Baseline | None = None
        self.hmac: HmacBaseline | None = None
        track_s = target.track.duration_s if target.track is not None else LONGEST_TRACK_S
        self.budget = key_budget(track_s)
        self.key_sessions = self.args.key_sessions or key_pool_size(
            self.args.warmup + self.args.seconds, self.budget
        )
        self.key_urls: list[str] = []

    def open_sessions(self, count: int) -> list[SessionUrls]:
        args = self.args
        print(f"opening {count} sessions for the URL pools ...", flush=True)
        pending = open_sessions(
            self.target, count, args.rendition, DEFAULT_CODECS, args.cmcd, self.bench.progress
        )
        return uvloop.run(asyncio.wait_for(pending, SETUP_TIMEOUT_S))

    def start_baselines(self) -> None:
        args, target = self.args, self.target
        if not args.baselines:
            return
        if target.track is None:
            self.bench.notes.append("baselines need the edge's local files: skipped with --url")
            return
        if "segment" in self.endpoints and "nginx" in args.baselines:
            track = target.track
            url_dir = f"/v1/seg/{track.track_id}/{track.version}/{args.rendition}"
            files = segment_files(track, args.rendition)
            self.nginx = start_nginx(files, url_dir, self.bench.work, args.nginx_workers)
        if {"playlist", "key"} & set(self.endpoints) and "hmac" in args.baselines:
            self.hmac = start_hmac(self.bench.work, args.hmac_processes)

    def stop_baselines(self) -> None:
        for baseline in (self.nginx, self.hmac):
            if baseline is not None:
                baseline.server.stop()

    def order(self, run: int) -> list[tuple[str, str]]:
        order: list[tuple[str, str]] = []
        for endpoint in self.endpoints:
            order.append(("edge", endpoint))
            if endpoint == "segment" and self.nginx is not None:
                order.append(("nginx", endpoint))
            if endpoint == "playlist" and self.hmac is not None:
                order.append(("hmac", endpoint))
        if "playlist" not in self.endpoints and self.hmac is not None:
            order.append(("hmac", "playlist"))  # the key ratio's baseline
        if run % 2 == 0:
            order.reverse()
        return order

    def run(self) -> dict[str, Any]:
        args, target = self.args, self.target
        sessions = self.open_sessions(max(args.sessions, args.segment_sessions))
        playlist_urls = [s.media_url for s in sessions[: args.sessions]]
        segment_urls = in_step(sessions[: args.segment_sessions])
        self.start_baselines()
        edge_label = f"edge ({target.workers} workers)" if target.workers else "edge"
        try:
            for run in range(1, args.runs + 1):
                for server, endpoint in self.order(run):
                    if server == "edge":
                        self._edge_phase(run, endpoint, edge_label, playlist_urls, segment_urls)
                    elif server == "nginx" and self.nginx is not None:
                        nginx = self.nginx
                        self.phases.append(
                            run_phase(
                                self.bench,
                                label=f"nginx ({args.nginx_workers} workers)",
                                server="nginx",
                                pids=nginx.server.pids,
                                endpoint="segment",
                                urls=[nginx.base_url + u[len(target.url) :] for u in segment_urls],
                                run=run,
                            )
                        )
                    elif server == "hmac" and self.hmac is not None:
                        hmac = self.hmac
                        # The edge's query (its CMCD) on each URL, so requests weigh the same.
                        urls = [
                            hmac.playlist_url(i) + _query(playlist_urls[i % len(playlist_urls)])
                            for i in range(args.sessions)
                        ]
                        self.phases.append(
                            run_phase(
                                self.bench,
                                label=f"aiohttp HMAC 1 KB ({args.hmac_processes} process)",
                                server="hmac",
                                pids=hmac.server.pids,
                                endpoint="playlist",
                                urls=urls,
                                run=run,
                                check=CHECK_PLAYLIST,
                            )
                        )
        finally:
            self.stop_baselines()
        return self.report(len(playlist_urls), len(segment_urls))

    def _edge_phase(
        self,
        run: int,
        endpoint: str,
        label: str,
        playlist_urls: list[str],
        segment_urls: list[str],
    ) -> None:
        target = self.target
        if endpoint == "key":
            # Sessions no phase used before: their rate-limit buckets are full.
            self.key_urls = [s.key_url for s in self.open_sessions(self.key_sessions)]
        urls = {"playlist": playlist_urls, "key": self.key_urls, "segment": segment_urls}

        def edge_pids() -> list[int]:
            return target.edge.pids() if target.edge else []

        profile = target.edge.pid if self.args.profile and run == 1 and target.edge else None
        self.phases.append(
            run_phase(
                self.bench,
                label=label,
                server="edge",
                pids=edge_pids,
                endpoint=endpoint,
                urls=urls[endpoint],
                run=run,
                budget=self.budget if endpoint == "key" else None,
                check={"playlist": CHECK_PLAYLIST, "key": CHECK_KEY}.get(endpoint),
                profile_pid=profile,
            )
        )

    def report(self, playlist_pool: int, segment_pool: int) -> dict[str, Any]:
        args = self.args
        rows = summarize_phases(self.phases)
        how = (
            f"closed loop, {args.connections} connections"
            if args.rate is None
            else f"open loop at {args.rate:.0f} req/s (latency from the due time), "
            f"{args.connections} connections"
        )
        return {
            "how": f"{how}, {args.seconds:.0f} s measured after {args.warmup:.0f} s warm-up, "
            f"{args.client_procs} client process(es)",
            "runs": args.runs,
            "pools": {
                "playlist_sessions": playlist_pool,
                "key_sessions": len(self.key_urls),
                "segment_urls": segment_pool,
                "rendition": args.rendition,
            },
            "phases": self.phases,
            "summary": rows,
            "ratios": ratios(rows),
            "notes": self.bench.notes,
        }


def run_rate(bench: Bench, target: Target) -> dict[str, Any]:
    endpoints = [e for e in bench.args.endpoints.split(",") if e]
    unknown = set(endpoints) - set(RATE_ENDPOINTS)
    if unknown:
        raise SystemExit(f"--endpoints: unknown {sorted(unknown)}; choose from {RATE_ENDPOINTS}")
    return RateRun(bench, target, endpoints).run()
