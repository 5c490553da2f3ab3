"""How fast `streamer logship` ships nginx access-log lines into the session store.

    python -m benchmarks.logship [--lines 200000] [--store sqlite|scylla|both]
                                 [--shards 2] [--paced-rate 40000 --paced-s 20]

Generates a realistic log (listeners playing 4-minute tracks in real time, one segment
request each 6 s, CMCD in the query for most and in headers for some, init segments, a few
refused requests) and, for 60 % of the sessions, the player events that make a play. Then
ships the whole log as a backlog (`Shipper.run(once=True)`, in process) and reports lines/s,
the lag at the start and at the end, and where the time went: parsing and building the items
alone, play checks (store reads) and the store writes. The issue's target is lines/s at
least 1.5 times nginx's measured segment rate (`--nginx-rps`, benchmarks/README.md).

With `--shards N` (N > 1) the same log is also split into N files by a hash of the session
id (the request id without one), as nginx's `log_shards` writes it, and shipped as
`streamer logship --log 'access.*.log'` does: one process per file
(cdn_edge.logship.shards), into a fresh store; lines/s there is the wall time from starting
the processes to the last one ending, process start included.

With `--paced-rate R`, the log is instead appended to the N files at R lines/s for
`--paced-s` seconds while the shards run, and the lag (lines written and not yet under a
saved position) is sampled every 0.5 s: a shipper that keeps up has a bounded lag.

Each scenario gets a store of its own (a fresh SQLite file, a fresh keyspace), so none
replays another's lines. Scylla runs need `scripts/services up cassandra`; the keyspaces
are created and dropped.

One module on purpose (about 540 lines): a benchmark program reads top to bottom, from the
generated log through its three scenarios to the report.
"""

from __future__ import annotations

import argparse
import bisect
import dataclasses
import json
import logging
import os
import random
import re
import resource
import signal
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.telemetry import bench_settings, new_keyspace_name
from cdn_edge.logship.line_telemetry import line_telemetry, wants_timing
from cdn_edge.logship.log_line import parse_line
from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.process import default_state_path, ship_log
from cdn_edge.logship.shards import ShardJob, run_shards
from cdn_edge.logship.shipper import DEFAULT_BATCH_LINES, Shipper
from cdn_edge.logship.tailer import LogTailer
from cdn_edge.logship.timelines import TrackTimelines
from streamer.catalog import (
    Loudness,
    RenditionRecord,
    SegmentRecord,
    SourceInfo,
    TrackRecord,
    encode_track_record,
    version_record_key,
)
from streamer.cql.connection import open_cql_session
from streamer.cql.schema import migrate
from streamer.objects.local import LocalObjectStore
from streamer.sessions.port import SESSION_STORE_FILE, SessionStore
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.settings import Settings, load_settings
from streamer.telemetry.model import EventType, PlayClaim, PlayerEvent, TelemetryBatch

NGINX_SEGMENT_RPS = 26_553  # nginx, 2 workers, static segments (benchmarks/README.md)
TARGET_RATIO = 1.5
PACED_WARMUP_S = 2.0  # the shard processes start and open their stores before nginx writes
STAT_KEYS = ("deliveries", "cmcd_samples", "plays_counted", "unverified", "batches")
TRACKS = 50
SEGMENTS = 40  # 4 minutes of 6 s segments
SEGMENT_S = 6.0
RENDITIONS = ("aac_96", "aac_160", "opus_96")
T0 = 1_733_500_000.0


def _record(track_id: str) -> TrackRecord:
    renditions = tuple(
        RenditionRecord(
            name=name, codec="aac" if name.startswith("aac") else "opus", codecs="mp4a.40.2",
            bitrate_kbps=96, sample_rate=48_000, channels=2, tier="free",
            init_key=f"{name}/init.mp4", init_size=600, init_sha256="0" * 64,
            playlist_key=f"{name}/index.m3u8", bandwidth=100_000, average_bandwidth=96_000,
            target_duration_s=6,
            segments=tuple(
                SegmentRecord(f"{name}/seg_{i:05d}.m4s", SEGMENT_S, 72_000, "0" * 64, "k", "0" * 32)
                for i in range(SEGMENTS)
            ),
        )
        for name in RENDITIONS
    )  # fmt: skip
    return TrackRecord(
        track_id=track_id, version="v1", master_sha256="0" * 64, content_sha256="1" * 64,
        duration_s=SEGMENTS * SEGMENT_S,
        source=SourceInfo("flac", "flac", 44_100, 2, 16, SEGMENTS * SEGMENT_S, 1),
        loudness=Loudness(-9.5, 6.0, -0.4, -4.5), silent=False, renditions=renditions,
        keys=(), created_at="2024-12-06T00:00:00Z",
    )  # fmt: skip


def _line(rng: random.Random, n: int, session: int, ts: float, seg: int | None) -> dict[str, Any]:
    track = f"trk{session % TRACKS}"
    rendition = RENDITIONS[session % len(RENDITIONS)]
    obj = "init.mp4" if seg is None else f"seg_{seg:05d}.m4s"
    fields = {
        "ts": f"{ts:.3f}", "status": "200", "bytes": "72000", "request_time": "0.001",
        "method": "GET", "uri": f"/v1/s/-/{rendition}/{obj}", "session_id": f"sess{session:07d}",
        "track_id": track, "version": "v1", "tier": "free", "rendition": rendition,
        "object": obj, "cmcd_query": "", "cmcd_object": "", "cmcd_request": "",
        "cmcd_session": "", "cmcd_status": "", "range": "", "request_id": f"{n:032x}",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) hls.js/1.5", "connection": str(session),
        "connection_requests": str(seg or 0), "route": "segment", "key_tier": "",
    }  # fmt: skip
    cmcd = (
        f"bl={rng.randint(0, 30000)},br=96,d=6000,mtp={rng.randint(500, 50000)},"
        f'nor="seg_{(seg or 0) + 1:05d}.m4s",ot={"i" if seg is None else "a"},'
        f'sf=h,sid="{fields["session_id"]}",st=v,tb=160'
    )
    if session % 10 == 0:  # hls.js with cmcd.useHeaders
        parts = cmcd.split(",")
        fields["cmcd_object"] = ",".join(p for p in parts if p[:2] in ("br", "d=", "ot", "tb"))
        fields["cmcd_request"] = ",".join(p for p in parts if p[:2] in ("bl", "mt", "no"))
        fields["cmcd_session"] = ",".join(p for p in parts if p[:2] in ("sf", "si", "st"))
    else:
        fields["cmcd_query"] = cmcd.replace("=", "%3D").replace(",", "%2C").replace('"', "%22")
    if rng.random() < 0.02:  # a refused token
        fields.update(status="403", session_id="", track_id="", version="", rendition="")
    return fields


def generate(lines: int, seed: int) -> tuple[bytes, int]:
    """About `lines` log lines in time order, and the number of sessions they belong to."""
    rng = random.Random(seed)
    sessions = max(1, lines // (SEGMENTS + 1))
    records: list[tuple[float, int, int | None]] = []
    for session in range(sessions):
        start = T0 + rng.uniform(0, 600)
        records.append((start, session, None))
        records += [(start + seg * SEGMENT_S / 4, session, seg) for seg in range(SEGMENTS)]
    records.sort(key=lambda r: (r[0], r[1]))
    out = [
        json.dumps(_line(rng, n, s, ts, seg), separators=(",", ":"))
        for n, (ts, s, seg) in enumerate(records[:lines])
    ]
    return ("\n".join(out) + "\n").encode(), sessions


def write_events(store: SessionStore, sessions: int) -> int:
    """60 s of listening, with a heartbeat every 10 s, for 60 % of the sessions."""
    played = 0
    batch: list[PlayerEvent] = []
    for session in range(sessions):
        if session % 5 >= 3:
            continue
        played += 1
        sid, track = f"sess{session:07d}", f"trk{session % TRACKS}"
        at = int(T0 * 1000)
        for n, position in enumerate(range(0, 61, 10)):
            kind: EventType = "play" if n == 0 else "heartbeat"
            batch.append(
                PlayerEvent(sid, f"e{n}", kind, track, at + position * 1000,
                            at + position * 1000, float(position), seq=n)
            )  # fmt: skip
        if len(batch) >= 2000:
            store.write_telemetry(TelemetryBatch(events=tuple(batch)))
            batch = []
    if batch:
        store.write_telemetry(TelemetryBatch(events=tuple(batch)))
    return played


def parse_only(blob: bytes, timelines: TrackTimelines) -> float:
    """Seconds to parse every line and build its items, without a store."""
    started = time.perf_counter()
    for raw in blob.split(b"\n")[:-1]:
        line = parse_line(raw)
        timing = None
        if wants_timing(line):
            timing = timelines.timing(line.track_id, line.version, line.object_key)
        line_telemetry(line, timing)
    return time.perf_counter() - started


class _Timed:
    """A session store wrapper timing writes (telemetry and claims) and play-check reads."""

    def __init__(self, inner: SessionStore) -> None:
        self.inner = inner
        self.telemetry_batch_items = inner.telemetry_batch_items
        self.seconds = {"write": 0.0, "read": 0.0}

    def _time(self, kind: str, call: Any, *args: Any) -> Any:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.seconds[kind] += time.perf_counter() - started

    def write_telemetry(self, batch: TelemetryBatch) -> Any:
        return self._time("write", self.inner.write_telemetry, batch)

    def claim_plays(self, plays: Sequence[PlayClaim]) -> Any:
        return self._time("write", self.inner.claim_plays, plays)

    def events_of(self, ids: Sequence[str]) -> Any:
        return self._time("read", self.inner.events_of, ids)

    def deliveries_of(self, ids: Sequence[str]) -> Any:
        return self._time("read", self.inner.deliveries_of, ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def publish_records(data_dir: Path) -> LocalObjectStore:
    objects = LocalObjectStore(data_dir / "objects")
    for t in range(TRACKS):
        record = _record(f"trk{t}")
        objects.put(version_record_key(record.track_id, "v1"), encode_track_record(record), "a/j")
    return objects


def run(store: SessionStore, name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One shipper in this process, the whole log as a backlog."""
    objects = publish_records(work)
    blob, sessions = generate(args.lines, args.seed)
    played = write_events(store, sessions)
    log = work / f"{name}.access.log"
    log.write_bytes(blob)
    convert_s = parse_only(blob, TrackTimelines(objects))
    timed = _Timed(store)
    positions = OffsetFile(work / f"{name}.position.json")
    shipper = Shipper(
        LogTailer(log), positions, timed, timed, TrackTimelines(objects),
        batch_lines=args.batch_lines,
    )  # fmt: skip
    before = shipper.stats()
    started, cpu, busy = time.perf_counter(), time.process_time(), _machine_busy_s()
    shipper.run(once=True)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    busy = _machine_busy_s() - busy
    stats = shipper.stats()
    shipper.close()
    lines = stats.lines
    return {
        "store": name,
        "mode": "1 process",
        "lines": lines,
        "bytes": len(blob),
        "sessions": sessions,
        "sessions_with_events": played,
        "batch_lines": args.batch_lines or max(DEFAULT_BATCH_LINES, store.telemetry_batch_items),
        "seconds": round(elapsed, 2),
        "cores_used": round(cpu / elapsed, 2),
        "other_processes_cores": round(max(0.0, busy - cpu) / elapsed, 2),
        "lines_per_s": round(lines / elapsed),
        "target_lines_per_s": round(TARGET_RATIO * args.nginx_rps),
        "ratio_to_nginx_segment_rps": round(lines / elapsed / args.nginx_rps, 2),
        "lag_bytes_at_start": before.bytes_behind,
        "lag_bytes_at_end": stats.bytes_behind,
        "time_share": {
            "parse_and_items": round(convert_s / elapsed, 2),
            "play_check_reads": round(timed.seconds["read"] / elapsed, 2),
            "store_writes": round(timed.seconds["write"] / elapsed, 2),
        },
        "stats": {k: v for k, v in asdict(stats).items() if k in STAT_KEYS},
    }  # fmt: skip


_SESSION_ID = re.compile(rb'"session_id":"([^"]*)"')
_REQUEST_ID = re.compile(rb'"request_id":"([0-9a-f]{32})"')


def split_shards(blob: bytes, shards: int) -> list[list[bytes]]:
    """The lines of `blob` by shard, as nginx's `log_shards` spreads them: by a hash of the
    session id, or of the request id for a line without a session."""
    out: list[list[bytes]] = [[] for _ in range(shards)]
    for raw in blob.split(b"\n")[:-1]:
        session, request = _SESSION_ID.search(raw), _REQUEST_ID.search(raw)
        assert session is not None and request is not None
        key = session.group(1) or request.group(1)
        out[zlib.crc32(key) % shards].append(raw + b"\n")
    return out


def _jobs(
    settings: Settings, paths: list[Path], args: argparse.Namespace, once: bool
) -> list[ShardJob]:
    kwargs = {
        "settings": settings, "once": once, "batch_lines": args.batch_lines,
        "parent_pid": os.getpid(),
    }  # fmt: skip
    return [ShardJob(path, dict(kwargs), logging.WARNING) for path in paths]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # processes ended and waited for
    return float(usage.ru_utime + usage.ru_stime)


def _machine_busy_s() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat): with our own CPU time, what
    other processes on this shared machine took during a run."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_sharded(
    settings: Settings, store: SessionStore, name: str, args: argparse.Namespace
) -> dict[str, Any]:
    """`streamer logship --log 'access.*.log' --once` on the log split in `--shards` files."""
    data = settings.data_dir
    publish_records(data)
    blob, sessions = generate(args.lines, args.seed)
    write_events(store, sessions)
    paths = [data / f"access.{k}.log" for k in range(args.shards)]
    for path, lines in zip(paths, split_shards(blob, args.shards), strict=True):
        path.write_bytes(b"".join(lines))
    started, cpu, busy = time.perf_counter(), _children_cpu_s(), _machine_busy_s()
    stats = run_shards(ship_log, _jobs(settings, paths, args, once=True))
    elapsed, cpu = time.perf_counter() - started, _children_cpu_s() - cpu
    busy = _machine_busy_s() - busy
    return {
        "store": name,
        "mode": f"{args.shards} shards",
        "lines": stats.lines,
        "seconds": round(elapsed, 2),
        "cores_used": round(cpu / elapsed, 2),
        "other_processes_cores": round(max(0.0, busy - cpu) / elapsed, 2),
        "lines_per_s": round(stats.lines / elapsed),
        "ratio_to_nginx_segment_rps": round(stats.lines / elapsed / args.nginx_rps, 2),
        "lag_bytes_at_start": len(blob),
        "lag_bytes_at_end": stats.bytes_behind,
        "stats": {k: v for k, v in asdict(stats).items() if k in STAT_KEYS},
    }  # fmt: skip


def _shipped_lines(settings: Settings, path: Path, ends: list[int]) -> int:
    """Lines of `path` under its saved position (the position trails the store by < 0.5 s)."""
    try:
        offset = json.loads(default_state_path(settings, path).read_text())["offset"]
    except (FileNotFoundError, ValueError):
        return 0
    return bisect.bisect_right(ends, offset)


def run_paced(
    settings: Settings, store: SessionStore, name: str, args: argparse.Namespace
) -> dict[str, Any]:
    """nginx appending `--paced-rate` lines/s to the shards while the shippers follow."""
    data = settings.data_dir
    publish_records(data)
    blob, sessions = generate(int(args.paced_rate * args.paced_s), args.seed)
    write_events(store, sessions)
    parts = split_shards(blob, args.shards)
    total = sum(map(len, parts))
    paths = [data / f"access.{k}.log" for k in range(args.shards)]
    ends = []
    for path, lines in zip(paths, parts, strict=True):
        path.touch()
        at, offsets = 0, []
        for raw in lines:
            at += len(raw)
            offsets.append(at)
        ends.append(offsets)
    samples: list[tuple[float, int]] = []  # (seconds since the start, lines behind)
    done: dict[str, float] = {}

    def nginx_and_sampler() -> None:
        written = [0] * len(paths)
        files = [path.open("ab") for path in paths]
        time.sleep(PACED_WARMUP_S)
        start = time.monotonic()
        next_sample = 0.5
        try:
            while True:
                now = time.monotonic() - start
                share = min(1.0, now / args.paced_s)
                for k, lines in enumerate(parts):
                    upto = int(len(lines) * share)
                    if upto > written[k]:
                        files[k].write(b"".join(lines[written[k] : upto]))
                        files[k].flush()
                        written[k] = upto
                if share >= 1.0 and "writer_s" not in done:
                    done["writer_s"] = now
                if now >= next_sample:
                    next_sample += 0.5
                    pairs = zip(paths, ends, strict=True)
                    shipped = [_shipped_lines(settings, p, e) for p, e in pairs]
                    samples.append((now, sum(written) - sum(shipped)))
                    if share >= 1.0 and sum(shipped) == total:
                        done["drained_s"] = now
                        return
                    if share >= 1.0 and now > args.paced_s + 120:
                        return  # not drained two minutes after the writer stopped
                time.sleep(0.02)
        finally:
            for f in files:
                f.close()
            os.kill(os.getpid(), signal.SIGTERM)  # stops run_shards in the main thread

    thread = threading.Thread(target=nginx_and_sampler, name="nginx-writer")
    cpu, own, busy = _children_cpu_s(), time.process_time(), _machine_busy_s()
    cpu_started = time.monotonic()
    thread.start()
    stats = run_shards(ship_log, _jobs(settings, paths, args, once=False))
    thread.join()
    cpu, own = _children_cpu_s() - cpu, time.process_time() - own
    busy = _machine_busy_s() - busy
    cpu_wall = time.monotonic() - cpu_started
    behind = [n for at, n in samples if at <= args.paced_s]
    wall = done.get("drained_s", samples[-1][0] if samples else 0.0)
    return {
        "store": name,
        "mode": f"{args.shards} shards, paced",
        "rate_lines_per_s": args.paced_rate,
        "lines": total,
        "seconds_writing": round(done.get("writer_s", 0.0), 2),
        "drained_after_s": round(wall - done.get("writer_s", 0.0), 2)
        if "drained_s" in done else None,
        "cores_used": round(cpu / cpu_wall, 2),  # warm-up included: a small understatement
        "writer_cores": round(own / cpu_wall, 2),
        "other_processes_cores": round(max(0.0, busy - cpu - own) / cpu_wall, 2),
        "lag_lines_max": max(behind, default=0),
        "lag_s_max": round(max(behind, default=0) / args.paced_rate, 2),
        "lag_lines_last_5s": [n for at, n in samples if args.paced_s - 5 < at <= args.paced_s],
        "lines_shipped": stats.lines,
    }  # fmt: skip


@contextmanager
def fresh_store(
    kind: str, args: argparse.Namespace, data_dir: Path
) -> Iterator[tuple[Settings, SessionStore]]:
    """A store of its own for one scenario, and settings that open the same store."""
    data_dir.mkdir(parents=True)
    if kind == "sqlite":
        settings = load_settings(environ={}, data_dir=data_dir)
        store: SessionStore = SQLiteSessionStore(data_dir / SESSION_STORE_FILE)
        try:
            yield settings, store
        finally:
            store.close()
        return
    settings = dataclasses.replace(
        bench_settings(args, new_keyspace_name(time.time())),
        data_dir=data_dir, object_store="local", session_store="scylla",
    )  # fmt: skip
    migrate(settings)
    try:
        store = ScyllaSessionStore.from_settings(settings)
        try:
            yield settings, store
        finally:
            store.close()
    finally:
        with open_cql_session(settings, use_keyspace=False) as admin:
            drop = f"DROP KEYSPACE IF EXISTS {settings.cql_keyspace}"
            admin.execute_schema(drop, action="drop the benchmark keyspace")


def _summary(r: dict[str, Any]) -> str:
    head = f"{r['store']:7} {r['mode']:>16}: "
    if "rate_lines_per_s" in r:
        drained = r["drained_after_s"]
        return head + (
            f"{r['rate_lines_per_s']:,} lines/s appended for {r['seconds_writing']} s: lag max "
            f"{r['lag_lines_max']:,} lines ({r['lag_s_max']} s), last 5 s "
            f"{r['lag_lines_last_5s']}; "
            + (f"drained {drained} s after the writer stopped" if drained is not None
               else "NOT drained within 2 min")
            + f"; shippers {r['cores_used']} cores, writer {r['writer_cores']}, "
            f"other processes {r['other_processes_cores']}"
        )  # fmt: skip
    text = head + (
        f"{r['lines']:>8} lines in {r['seconds']:>6.2f} s = {r['lines_per_s']:>7,} lines/s "
        f"({r['ratio_to_nginx_segment_rps']:.2f}x nginx segment req/s; target "
        f"{TARGET_RATIO}x = {round(TARGET_RATIO * NGINX_SEGMENT_RPS):,}); lag "
        f"{r['lag_bytes_at_start']:,} -> {r['lag_bytes_at_end']} bytes; {r['cores_used']} cores"
        f" (other processes {r['other_processes_cores']})"
    )
    if "time_share" in r:
        share = r["time_share"]
        text += (
            f"; time: parse {share['parse_and_items']:.0%}, play reads "
            f"{share['play_check_reads']:.0%}, writes {share['store_writes']:.0%}"
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.logship", description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch-lines", type=int, help="default: the shipper's default")
    parser.add_argument("--store", choices=("sqlite", "scylla", "both"), default="both")
    parser.add_argument("--shards", type=int, default=2, help="1: the single process only")
    parser.add_argument("--no-single", action="store_true", help="skip the 1-process run")
    parser.add_argument("--paced-rate", type=float, help="lines/s appended while shipping")
    parser.add_argument("--paced-s", type=float, default=20.0)
    parser.add_argument("--nginx-rps", type=float, default=NGINX_SEGMENT_RPS)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cql-hosts")
    parser.add_argument("--cql-port", type=int)
    args = parser.parse_args(argv)
    kinds = ("sqlite", "scylla") if args.store == "both" else (args.store,)
    scenarios: list[tuple[str, Callable[..., dict[str, Any]]]] = []
    if not args.no_single:
        scenarios.append(("single", lambda settings, store, kind: run(
            store, kind, args, settings.data_dir)))  # fmt: skip
    if args.shards > 1 and not args.paced_rate:
        scenarios.append(("sharded", lambda settings, store, kind: run_sharded(
            settings, store, kind, args)))  # fmt: skip
    if args.paced_rate:
        scenarios.append(("paced", lambda settings, store, kind: run_paced(
            settings, store, kind, args)))  # fmt: skip
    results = []
    with tempfile.TemporaryDirectory(prefix="logship-bench-") as tmp:
        for kind in kinds:
            for label, scenario in scenarios:
                with fresh_store(kind, args, Path(tmp) / f"{kind}-{label}") as (settings, store):
                    results.append(scenario(settings, store, kind))
                print(json.dumps(results[-1]), flush=True)
    for r in results:
        print(_summary(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
