"""Cross-check of the rate mode with wrk, a C load generator that costs the servers' cores far
less than the Python one: each endpoint's req/s, latency and server CPU per request.

    python -m benchmarks.wrk_check [--workers 1] [--runs 3] [--seconds 8] [--connections 16]
                                   [--breakdown]

Needs Debian's wrk (`apt-get install -y wrk`) and, for the nginx baseline, nginx-light. Starts
`streamer serve --workers N` on the data directory (as `benchmarks.listeners` does), the HMAC
baseline with as many processes and nginx with as many workers, opens `--sessions` sessions,
and drives each endpoint in turn for `--seconds` with wrk cycling through its URL pool (a Lua
script), CMCD in the query as hls.js sends it. Server CPU per request is the servers'
utime + stime over the phase (all their processes) divided by the responses; it is the steadier
number on a shared machine. Phases alternate order between runs; medians with min and max.

For the edge's phases the telemetry items it dropped (`edge_telemetry_dropped_total`, from
/metrics: CMCD samples and segment deliveries its writer had no room for) are counted too: an
edge that keeps up by dropping play evidence has not kept up.

With the nginx tier, each tier phase also reports the log shipper's lag when the load stops
(lines nginx wrote that the shipper's saved position is still behind), and the phase with the
shipper paused measures how fast the shipper drains: the backlog the phase left, in lines,
over the seconds from SIGCONT until its saved position reaches the log's end (nginx idle by
then). That is the shipper's lines/s on the same cores, the figure issue 13 compares with 1.5x
the segment rate.

`--breakdown` adds phases that leave out what the client controls, to show what each costs
the edge per request: playlists without gzip (no Accept-Encoding), playlists and segments
without CMCD (no sample row, no buffer-starvation and throughput parsing), and, with the nginx
tier, segments with the log shipper stopped for the phase (nginx alone; the shipper ships the
backlog afterwards).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

from benchmarks.baselines import start_hmac, start_nginx
from benchmarks.edge_setup import (
    listener_tokens,
    prepare_track,
    scrape_telemetry,
    segment_files,
    start_edge,
)
from benchmarks.procstat import cpu_ticks
from benchmarks.servers import ServerProcess

TICKS_PER_S = 100  # USER_HZ on Linux
NGINX_LOG_FLUSH_S = 1.2  # the tier's access log buffer is flushed at least every second
DRAIN_TIMEOUT_S = 120.0
DRAIN_POLL_S = 0.05
REQUEST_TIMEOUT_S = 10
_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if match is None:
        raise ValueError(f"not a wrk latency: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def parse_wrk(output: str) -> WrkResult:
    """The numbers of one `wrk --latency` run from its text output."""
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", output)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if done is None or rps is None:
        raise ValueError(f"wrk output without a summary:\n{output}")
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+(\S+)$", output, flags=re.M))
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    seconds = float(done.group(2)) / (1000 if done.group(3) == "ms" else 1)
    return WrkResult(
        requests=int(done.group(1)),
        seconds=seconds,
        rps=float(rps.group(1)),
        p50_ms=_ms(percentiles["50"]),
        p99_ms=_ms(percentiles["99"]),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(map(int, errors.groups())) if errors else 0,
    )


GZIP = {"Accept-Encoding": "gzip"}  # as every player sends


def rotation_script(paths: Sequence[str], headers: dict[str, str] = GZIP) -> str:
    """wrk Lua that requests `paths` in turn (each thread from its own start) with `headers`."""
    items = ",\n".join(json.dumps(p) for p in paths)
    fields = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in headers.items())
    return (
        f"local paths = {{\n{items}\n}}\n"
        f"local headers = {{{fields}}}\n"
        "local i = 0\n"
        "request = function()\n"
        "  i = i % #paths + 1\n"
        "  return wrk.format('GET', paths[i], headers)\n"
        "end\n"
    )


def without_cmcd(path: str) -> str:
    """`path` without its CMCD query parameter (the pools put it last)."""
    return path.partition("CMCD=")[0].rstrip("?&")


def _cmcd(session_id: str, object_type: str, extra: str = "") -> str:
    text = f'{extra}br=160,ot={object_type},sf=h,sid="{session_id}",st=v'
    return "CMCD=" + quote(text, safe="")


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _open_session(base_url: str, token: str) -> tuple[str, str, str]:
    """(session id, media playlist URL, media playlist text) of a new aac_160 session."""
    body = json.dumps({"track_id": "bench-track", "device": {"codecs": ["mp4a.40.2", "opus"]}})
    request = urllib.request.Request(
        f"{base_url}/v1/sessions",
        data=body.encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
        doc = json.load(response)
    media_url = doc["playlist_url"].replace("main.m3u8", "aac_160/playlist.m3u8")
    with urllib.request.urlopen(media_url, timeout=REQUEST_TIMEOUT_S) as response:
        return doc["session_id"], media_url, response.read().decode()


def edge_pools(base_url: str, tokens: Sequence[str], sessions: int) -> dict[str, list[str]]:
    """Paths per edge endpoint: media playlists and segments of the first `sessions`
    sessions, keys of all (the per-session key rate limit needs many sessions)."""
    pools: dict[str, list[str]] = {"playlist": [], "key": [], "segment": []}
    for index, token in enumerate(tokens):
        session_id, media_url, text = _open_session(base_url, token)
        keys = dict.fromkeys(re.findall(r'URI="(\.\./keys/[^"]*)"', text))
        for key_uri in keys:
            key_url = urljoin(media_url, key_uri)
            pools["key"].append(f"{_path(key_url)}?{_cmcd(session_id, 'k')}")
        if index >= sessions:
            continue
        pools["playlist"].append(f"{_path(media_url)}?{_cmcd(session_id, 'm')}")
        for line in text.splitlines():
            if line.startswith("seg_"):
                path = _path(urljoin(media_url, line))
                pools["segment"].append(f"{path}?{_cmcd(session_id, 'a', 'bl=21300,')}")
    return pools


def _server_ticks(server: ServerProcess) -> int:
    return sum(cpu_ticks(pid) or 0 for pid in server.pids())


def _shippers(server: ServerProcess) -> list[int]:
    """The `streamer logship` processes below `server`."""
    return list(_shipper_files(server))


def _shipper_files(server: ServerProcess) -> dict[int, tuple[Path, Path]]:
    """Each `streamer logship` process below `server`: (its --log, its --state)."""
    found = {}
    for pid in server.pids():
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"logship" in args and b"--log" in args and b"--state" in args:
            log = Path(args[args.index(b"--log") + 1].decode())
            state = Path(args[args.index(b"--state") + 1].decode())
            found[pid] = (log, state)
    return found


def _saved_offset(state: Path) -> int:
    try:
        return int(json.loads(state.read_text())["offset"])
    except (OSError, ValueError, KeyError):
        return 0


def _lines_between(log: Path, start: int, end: int) -> int:
    count = 0
    with log.open("rb") as f:
        f.seek(start)
        left = end - start
        while left > 0:
            chunk = f.read(min(left, 1 << 22))
            if not chunk:
                break
            count += chunk.count(b"\n")
            left -= len(chunk)
    return count


def shipper_lag_lines(server: ServerProcess) -> int:
    """Lines written to the tier's access log(s) that the shippers' saved positions are behind."""
    lag = 0
    for log, state in _shipper_files(server).values():
        if log.exists():
            lag += _lines_between(log, _saved_offset(state), log.stat().st_size)
    return lag


def drain_lines_per_s(server: ServerProcess, resume: Callable[[], None]) -> tuple[int, float]:
    """Resume the paused shippers (`resume`) and time them through the backlog: (lines, s)."""
    time.sleep(NGINX_LOG_FLUSH_S)  # nginx's buffered lines reach the file first
    files = list(_shipper_files(server).values())
    ends = {log: log.stat().st_size for log, _ in files if log.exists()}
    backlog = sum(_lines_between(log, _saved_offset(state), ends[log]) for log, state in files)
    started = time.monotonic()
    resume()
    while time.monotonic() - started < DRAIN_TIMEOUT_S:
        if all(_saved_offset(state) >= ends[log] for log, state in files if log in ends):
            break
        time.sleep(DRAIN_POLL_S)
    return backlog, time.monotonic() - started


@dataclass(frozen=True)
class Phase:
    name: str
    server: ServerProcess
    base_url: str
    paths: list[str]
    headers: dict[str, str] = field(default_factory=lambda: dict(GZIP))
    # Stop the tier's log shipper for the phase (it ships the backlog after): what nginx
    # alone costs, apart from the shipper sharing its cores.
    pause_shipper: bool = False

    @property
    def is_edge(self) -> bool:
        return self.name.startswith("edge")


def run_phase(phase: Phase, work: Path, seconds: float, connections: int) -> dict[str, float]:
    script = work / f"{phase.name.replace(' ', '_')}.lua"
    script.write_text(rotation_script(phase.paths, phase.headers))
    paused = _shippers(phase.server) if phase.pause_shipper else []
    for pid in paused:
        os.kill(pid, signal.SIGSTOP)
    resumed = False

    def resume() -> None:
        nonlocal resumed
        for pid in paused:
            os.kill(pid, signal.SIGCONT)
        resumed = True

    try:
        before = _server_ticks(phase.server)
        dropped_before = scrape_telemetry(phase.base_url)["dropped"] if phase.is_edge else 0.0
        output = subprocess.run(
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
             phase.base_url],
            check=True, capture_output=True, text=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
        ticks = _server_ticks(phase.server) - before
        shipper: dict[str, float] = {}
        if phase.is_edge and not paused:
            shipper["shipper_lag_lines"] = shipper_lag_lines(phase.server)
        if paused:
            backlog, drain_s = drain_lines_per_s(phase.server, resume)
            shipper["shipper_backlog_lines"] = backlog
            shipper["shipper_lines_per_s"] = backlog / drain_s if drain_s > 0 else 0.0
    finally:
        if not resumed:
            resume()
    dropped = scrape_telemetry(phase.base_url)["dropped"] - dropped_before if phase.is_edge else 0.0
    result = parse_wrk(output)
    ok = max(1, result.requests - result.non_2xx)
    return {
        "rps": ok / result.seconds,  # successful responses only
        "refused": result.non_2xx,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
        "errors": result.socket_errors,
        "server_us_per_request": ticks / TICKS_PER_S / ok * 1e6,
        "telemetry_dropped": dropped,
        **shipper,
    }


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="kept and reused (default: temporary)")
    parser.add_argument(
        "--workers", type=int, default=1, help="edge workers, HMAC processes, nginx workers"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--sessions", type=int, default=300, help="playlist and segment pool")
    parser.add_argument(
        "--key-sessions",
        type=int,
        # At ~28,000 keys/s, 3 runs of 8 s fetch each key of 2,500 sessions ~30 times, past
        # its session's budget (the 429s then hide the rate); 20,000 stay inside it.
        default=20000,
        help="key pool: sessions whose keys are fetched (each within its session's key budget)",
    )
    parser.add_argument(
        "--segments",
        choices=("auto", "nginx", "python"),
        default="auto",
        help="who serves segments behind the edge's port (streamer serve --segments)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="also playlists without gzip, playlists and segments without CMCD",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="wrk-check-") as scratch:
        work = Path(scratch)
        data_dir = args.data_dir or work / "data"
        track = prepare_track(data_dir)
        edge, edge_url = start_edge(
            data_dir, args.workers, work / "edge.log", segments=args.segments
        )
        hmac = start_hmac(work, args.workers)
        nginx = start_nginx(segment_files(track, "aac_160"), "seg", work, args.workers)
        servers = [edge, hmac.server, nginx.server]
        try:
            count = max(args.sessions, args.key_sessions)
            pools = edge_pools(edge_url, listener_tokens(data_dir, count), args.sessions)
            files = segment_files(track, "aac_160")
            phases = [
                Phase("edge playlist", edge, edge_url, pools["playlist"]),
                Phase("edge key", edge, edge_url, pools["key"]),
                Phase("edge segment", edge, edge_url, pools["segment"]),
                Phase("hmac playlist", hmac.server, hmac.base_url,
                      [_path(hmac.playlist_url(i)) for i in range(args.sessions)]),
                Phase("nginx segment", nginx.server, nginx.base_url,
                      [f"/seg/{f.name}" for f in files if f.suffix == ".m4s"]),
            ]  # fmt: skip
            if args.breakdown:
                phases += [
                    Phase("edge playlist, no gzip", edge, edge_url, pools["playlist"], {}),
                    Phase("edge playlist, no CMCD", edge, edge_url,
                          [without_cmcd(p) for p in pools["playlist"]]),
                    Phase("edge segment, no CMCD", edge, edge_url,
                          [without_cmcd(p) for p in pools["segment"]]),
                    Phase("edge segment, shipper paused", edge, edge_url, pools["segment"],
                          pause_shipper=True),
                ]  # fmt: skip
            results: dict[str, list[dict[str, float]]] = {p.name: [] for p in phases}
            for run in range(args.runs):
                for phase in phases if run % 2 == 0 else reversed(phases):
                    results[phase.name].append(
                        run_phase(phase, work, args.seconds, args.connections)
                    )
                    rps = results[phase.name][-1]["rps"]
                    print(f"run {run + 1}: {phase.name:22s} {rps:9,.0f} req/s", file=sys.stderr)
        finally:
            for server in servers:
                server.stop()
    report(results, args)
    return 0


def report(results: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> None:
    def column(name: str, key: str) -> list[float]:
        return [r[key] for r in results[name]]

    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"\nwrk -t1 -c{args.connections}, {args.seconds:g} s per phase, {args.runs} runs, "
        f"{args.workers} process(es) per server, streamer serve --segments {args.segments}, "
        f"{when}\n"
    )
    print(
        "| phase | req/s (2xx) | p50 ms | p99 ms | server µs/req | refused | socket errors "
        "| telemetry dropped |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in results:
        print(
            f"| {name} | {_summary(column(name, 'rps'))} "
            f"| {statistics.median(column(name, 'p50_ms')):.2f} "
            f"| {statistics.median(column(name, 'p99_ms')):.2f} "
            f"| {_summary(column(name, 'server_us_per_request'))} "
            f"| {sum(column(name, 'refused')):.0f} | {sum(column(name, 'errors')):.0f} "
            f"| {sum(column(name, 'telemetry_dropped')):.0f} |"
        )

    def ratio(ours: str, baseline: str) -> float:
        return statistics.median(column(ours, "rps")) / statistics.median(column(baseline, "rps"))

    print(
        f"\nratios: playlist / HMAC {ratio('edge playlist', 'hmac playlist'):.2f}, "
        f"key / HMAC {ratio('edge key', 'hmac playlist'):.2f}, "
        f"segment / nginx {ratio('edge segment', 'nginx segment'):.2f}"
    )
    lags = {
        n: column(n, "shipper_lag_lines") for n in results if "shipper_lag_lines" in results[n][0]
    }
    if lags:
        print(
            "shipper lag when each phase's load stopped, lines (median): "
            + ", ".join(f"{n} {statistics.median(v):,.0f}" for n, v in lags.items())
        )
    paused = "edge segment, shipper paused"
    if paused in results and "shipper_lines_per_s" in results[paused][0]:
        drain = column(paused, "shipper_lines_per_s")
        segment = statistics.median(column("edge segment", "rps"))
        nginx = statistics.median(column("nginx segment", "rps"))
        print(
            f"shipper drain: {_summary(drain)} lines/s (backlogs of "
            f"{_summary(column(paused, 'shipper_backlog_lines'))} lines); "
            f"x tier segment req/s {statistics.median(drain) / segment:.2f}, "
            f"x bare nginx segment req/s {statistics.median(drain) / nginx:.2f} "
            f"(target 1.5)"
        )


if __name__ == "__main__":
    sys.exit(main())
