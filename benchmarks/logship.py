"""How fast `streamer logship` ships nginx access-log lines into the session store.

    python -m benchmarks.logship [--lines 200000] [--store sqlite|scylla|both]

Generates a realistic log (listeners playing 4-minute tracks in real time, one segment
request each 6 s, CMCD in the query for most and in headers for some, init segments, a few
refused requests) and, for 60 % of the sessions, the player events that make a play. Then
ships the whole log as a backlog (`Shipper.run(once=True)`, in process) and reports lines/s,
the lag at the start and at the end, and where the time went: parsing and building the items
alone, play checks (store reads) and the store writes. The issue's target is lines/s at
least 1.5 times nginx's measured segment rate (`--nginx-rps`, benchmarks/README.md).

Scylla runs need `scripts/services up cassandra`; a keyspace of its own is created and
dropped.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks.telemetry import bench_settings, new_keyspace_name
from cdn_edge.logship.line_telemetry import line_telemetry, wants_timing
from cdn_edge.logship.log_line import parse_line
from cdn_edge.logship.offsets import OffsetFile
from cdn_edge.logship.shipper import Shipper
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
from streamer.cql import open_cql_session
from streamer.cql_schema import migrate
from streamer.local_object_store import LocalObjectStore
from streamer.scylla_session_store import ScyllaSessionStore
from streamer.sessions import SessionStore
from streamer.sqlite_session_store import SqliteSessionStore
from streamer.telemetry import PlayerEvent, TelemetryBatch

NGINX_SEGMENT_RPS = 26_553  # nginx, 2 workers, static segments (benchmarks/README.md)
TARGET_RATIO = 1.5
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
        "connection_requests": str(seg or 0),
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
            kind = "play" if n == 0 else "heartbeat"
            batch.append(
                PlayerEvent(sid, f"e{n}", kind, track, at + position * 1000,  # type: ignore[arg-type]
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
    """A SessionStore wrapper timing writes and play-check reads."""

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

    def events_of(self, ids: Sequence[str]) -> Any:
        return self._time("read", self.inner.events_of, ids)

    def deliveries_of(self, ids: Sequence[str]) -> Any:
        return self._time("read", self.inner.deliveries_of, ids)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def run(store: SessionStore, name: str, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    objects = LocalObjectStore(work / "objects")
    for t in range(TRACKS):
        record = _record(f"trk{t}")
        objects.put(version_record_key(record.track_id, "v1"), encode_track_record(record), "a/j")
    blob, sessions = generate(args.lines, args.seed)
    played = write_events(store, sessions)
    log = work / f"{name}.access.log"
    log.write_bytes(blob)
    convert_s = parse_only(blob, TrackTimelines(objects))
    timed = _Timed(store)
    positions = OffsetFile(work / f"{name}.position.json")
    shipper = Shipper(
        LogTailer(log), positions, timed, TrackTimelines(objects),  # type: ignore[arg-type]
        batch_lines=args.batch_lines,
    )  # fmt: skip
    before = shipper.stats()
    started = time.perf_counter()
    shipper.run(once=True)
    elapsed = time.perf_counter() - started
    stats = shipper.stats()
    shipper.close()
    lines = stats.lines
    return {
        "store": name,
        "lines": lines,
        "bytes": len(blob),
        "sessions": sessions,
        "sessions_with_events": played,
        "batch_lines": args.batch_lines or store.telemetry_batch_items,
        "seconds": round(elapsed, 2),
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
        "stats": {k: v for k, v in asdict(stats).items() if k in ("deliveries", "cmcd_samples",
                                                                    "plays_counted", "unverified")},
    }  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.logship", description=__doc__)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--batch-lines", type=int, help="default: the store's batch size")
    parser.add_argument("--store", choices=("sqlite", "scylla", "both"), default="both")
    parser.add_argument("--nginx-rps", type=float, default=NGINX_SEGMENT_RPS)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--cql-hosts")
    parser.add_argument("--cql-port", type=int)
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="logship-bench-") as tmp:
        work = Path(tmp)
        if args.store in ("sqlite", "both"):
            store = SqliteSessionStore(work / "sessions.sqlite3")
            try:
                results.append(run(store, "sqlite", args, work))
            finally:
                store.close()
            print(json.dumps(results[-1]), flush=True)
        if args.store in ("scylla", "both"):
            settings = bench_settings(args, new_keyspace_name(time.time()))
            migrate(settings)
            try:
                scylla = ScyllaSessionStore.from_settings(settings)
                try:
                    results.append(run(scylla, "scylla", args, work))
                finally:
                    scylla.close()
                print(json.dumps(results[-1]), flush=True)
            finally:
                with open_cql_session(settings, use_keyspace=False) as admin:
                    drop = f"DROP KEYSPACE IF EXISTS {settings.cql_keyspace}"
                    admin.execute_schema(drop, action="drop the benchmark keyspace")
    for r in results:
        share = r["time_share"]
        print(
            f"{r['store']:7} {r['lines']:>8} lines in {r['seconds']:>6.2f} s = "
            f"{r['lines_per_s']:>7,} lines/s ({r['ratio_to_nginx_segment_rps']:.2f}x nginx "
            f"segment req/s; target {TARGET_RATIO}x = {r['target_lines_per_s']:,}); "
            f"lag {r['lag_bytes_at_start']:,} -> {r['lag_bytes_at_end']} bytes; time: parse "
            f"{share['parse_and_items']:.0%}, play reads {share['play_check_reads']:.0%}, "
            f"writes {share['store_writes']:.0%}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
