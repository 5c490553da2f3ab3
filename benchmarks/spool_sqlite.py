"""The edge's telemetry spool against an SQLite WAL table: durable appends and replay.

    python -m benchmarks.spool_sqlite [--records 300] [--batches 1,50,500] [--threads 4]
                                      [--runs 3] [--dir DIR]

The spool (`streamer.telemetry.spool.TelemetrySpool`) keeps writer batches on disk while the
session store is down, one checksummed record per batch, fsync'd before `append` returns.
The alternative is one SQLite file per worker in WAL mode, one row per batch. Both store the
same bytes (`streamer.telemetry.codec.encode_items`, encoded inside the timed call in both),
in one process, in alternating order, on the same file system:

    spool           TelemetrySpool.append, then peek + ack until empty
    sqlite FULL     INSERT + COMMIT with journal_mode=WAL, synchronous=FULL (each commit
                    fsyncs the WAL: as durable as the spool), then SELECT oldest + DELETE +
                    COMMIT until empty
    sqlite NORMAL   the same with synchronous=NORMAL (commits survive a process crash, not a
                    power cut: less than the spool promises; shown for scale)

Appends run from one thread (`append x1`: the writer's steady state) and from `--threads`
threads at once (`append xN`: the spool commits the appends waiting on one fsync together;
SQLite serialises writers and fsyncs each commit). Replay drains what one append run left.
Reported per batch size: records/s and items/s (median of `--runs`, min and max), and the
fsyncs the spool made per record. Use a directory on the disk the edge's data lives on; a
tmpfs makes every fsync free.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamer.telemetry.codec import decode_items, encode_items
from streamer.telemetry.model import (
    CmcdSample,
    CmcdValue,
    PlayerEvent,
    SegmentDelivery,
    TelemetryItem,
)
from streamer.telemetry.spool import TelemetrySpool

CMCD_KEYS: dict[str, CmcdValue] = {
    "br": 160,
    "ot": "a",
    "sf": "h",
    "st": "v",
    "cid": "trk1",
    "mtp": 5400,
}
BUSY_TIMEOUT_MS = 60_000  # threads wait for SQLite's single writer rather than fail


def make_batch(size: int, seed: int) -> tuple[TelemetryItem, ...]:
    """A writer batch as the edge sends them: mostly CMCD samples, deliveries and events."""
    items: list[TelemetryItem] = []
    for n in range(size):
        session = f"s{(seed * 7919 + n) % 997:06d}"
        kind = n % 4
        if kind in (0, 1):
            items.append(
                CmcdSample(
                    session_id=session,
                    sample_id=f"{seed}-{n}",
                    received_ms=1_700_000_000_000 + n,
                    route="segment",
                    object=f"seg_{n % 40:05d}.m4s",
                    status=200,
                    keys={**CMCD_KEYS, "bl": 12000 + n, "sid": session},
                )
            )
        elif kind == 2:
            items.append(
                SegmentDelivery(
                    session_id=session,
                    track_id="trk1",
                    version="0123456789abcdef",
                    rendition="aac_160",
                    name=f"aac_160/seg_{n % 40:05d}.m4s",
                    start_s=6.0 * (n % 40),
                    duration_s=6.0,
                    delivered_ms=1_700_000_000_000 + n,
                )
            )
        else:
            items.append(
                PlayerEvent(
                    session_id=session,
                    event_id=f"e{seed}-{n}",
                    type="heartbeat",
                    track_id="trk1",
                    client_ms=1_700_000_000_000 + n,
                    received_ms=1_700_000_000_000 + n,
                    position_s=float(n % 200),
                    seq=n,
                )
            )
    return tuple(items)


class SQLiteSpool:
    """The alternative: one WAL table of encoded batches, oldest first."""

    def __init__(self, path: Path, synchronous: str) -> None:
        self.path = path
        self.synchronous = synchronous
        self._local = threading.local()
        with self._connect() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS spool (id INTEGER PRIMARY KEY, payload BLOB NOT NULL)"
            )

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        return db

    def _db(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def append(self, items: Sequence[TelemetryItem]) -> None:
        self._db().execute("INSERT INTO spool (payload) VALUES (?)", (encode_items(items),))

    def replay_one(self) -> bool:
        db = self._db()
        row = db.execute("SELECT id, payload FROM spool ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return False
        decode_items(row[1])
        db.execute("DELETE FROM spool WHERE id = ?", (row[0],))
        return True

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()


@dataclass
class Sample:
    append_1: float  # records/s, one thread
    append_n: float  # records/s, --threads threads
    replay: float  # records/s
    fsyncs_per_record: float | None  # the spool's group commits per record appended


def _timed(call: Callable[[], None]) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


Batch = tuple[TelemetryItem, ...]


def _append_all(append: Callable[[Sequence[TelemetryItem]], None], batches: list[Batch]) -> None:
    for batch in batches:
        append(batch)


def _append_threads(
    append: Callable[[Sequence[TelemetryItem]], None], batches: list[Batch], threads: int
) -> None:
    share = [batches[i::threads] for i in range(threads)]

    def work(mine: list[tuple[TelemetryItem, ...]]) -> None:
        for batch in mine:
            append(batch)

    workers = [threading.Thread(target=work, args=(mine,)) for mine in share]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def run_spool(root: Path, batches: list[tuple[TelemetryItem, ...]], threads: int) -> Sample:
    spool = TelemetrySpool(root / "spool-1", max_bytes=4 * 1024**3)
    spool.open()
    one = _timed(lambda: _append_all(spool.append, batches))

    def drain() -> None:
        while (batch := spool.peek()) is not None:
            spool.ack(batch)

    replay = _timed(drain)
    spool.close()
    many_spool = TelemetrySpool(root / "spool-n", max_bytes=4 * 1024**3)
    many_spool.open()
    many = _timed(lambda: _append_threads(many_spool.append, batches, threads))
    fsyncs = many_spool.fsyncs / len(batches)
    many_spool.close()
    n = len(batches)
    return Sample(n / one, n / many, n / replay, fsyncs)


def run_sqlite(
    root: Path, batches: list[tuple[TelemetryItem, ...]], threads: int, synchronous: str
) -> Sample:
    store = SQLiteSpool(root / "spool-1.sqlite3", synchronous)
    one = _timed(lambda: _append_all(store.append, batches))

    def drain() -> None:
        while store.replay_one():
            pass

    replay = _timed(drain)
    store.close()
    many_store = SQLiteSpool(root / "spool-n.sqlite3", synchronous)
    many = _timed(lambda: _append_threads(many_store.append, batches, threads))
    many_store.close()
    n = len(batches)
    return Sample(n / one, n / many, n / replay, None)


VARIANTS: dict[str, Callable[[Path, list[tuple[TelemetryItem, ...]], int], Sample]] = {
    "spool": run_spool,
    "sqlite FULL": lambda root, b, t: run_sqlite(root, b, t, "FULL"),
    "sqlite NORMAL": lambda root, b, t: run_sqlite(root, b, t, "NORMAL"),
}


def _cell(values: list[float], scale: float = 1.0) -> str:
    scaled = [v * scale for v in values]
    return f"{statistics.median(scaled):,.0f} ({min(scaled):,.0f}-{max(scaled):,.0f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=300, help="batches appended per run")
    parser.add_argument("--batches", default="1,50,500", help="items per batch, comma-separated")
    parser.add_argument("--threads", type=int, default=4, help="appending threads for xN")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, help="where the files go; default a temporary dir")
    args = parser.parse_args(argv)
    sizes = [int(size) for size in args.batches.split(",")]
    base = Path(tempfile.mkdtemp(prefix="spool-bench-", dir=args.dir))
    print(
        f"python {sys.version.split()[0]}; files under {base}; {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )
    print(f"{args.records} records per run, {args.threads} threads for xN, {args.runs} runs\n")
    xn = f"x{args.threads}"
    print(
        "| items/batch | variant | append x1 records/s | append x1 items/s "
        f"| append {xn} records/s | replay records/s | spool fsyncs/record ({xn}) |"
    )
    print("|---|---|---|---|---|---|---|")
    try:
        for size in sizes:
            batches = [make_batch(size, seed) for seed in range(args.records)]
            samples: dict[str, list[Sample]] = {name: [] for name in VARIANTS}
            for run in range(args.runs):
                order = list(VARIANTS) if run % 2 == 0 else list(reversed(VARIANTS))
                for name in order:
                    root = base / f"{size}-{run}-{name.replace(' ', '-')}"
                    root.mkdir()
                    samples[name].append(VARIANTS[name](root, batches, args.threads))
                    shutil.rmtree(root)
            for name, got in samples.items():
                fsyncs = [s.fsyncs_per_record for s in got if s.fsyncs_per_record is not None]
                print(
                    f"| {size} | {name} | {_cell([s.append_1 for s in got])} "
                    f"| {_cell([s.append_1 for s in got], size)} "
                    f"| {_cell([s.append_n for s in got])} | {_cell([s.replay for s in got])} "
                    f"| {f'{statistics.median(fsyncs):.2f}' if fsyncs else ''} |",
                    flush=True,
                )
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
