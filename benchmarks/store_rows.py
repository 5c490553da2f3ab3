"""Telemetry rows in the embedded session store: CPU per CMCD sample as its table grows.

    python -m benchmarks.store_rows [--sessions 20000] [--rows 300000] [--batch 500] [--runs 3]

The edge writes a CMCD sample for every playlist, key and segment request. This measures what
one costs the embedded (SQLite) session store, away from the edge's other work. Each run, in
alternating order:

    store        `--rows` samples of `--sessions` sessions, taking turns as many players at
                 once do, through SQLiteSessionStore.write_telemetry in batches of `--batch`,
                 into a fresh store;
    append-only  the same rows, as the same JSON (encoded before the clock starts), into a
                 table of the same columns with no index: what SQLite alone charges to append
                 them, the floor.

CPU is this process's (SQLite runs in it). Reported per row over the second half of the rows,
when the table holds `--rows`/2 or more, as the median (min, max) of the runs, with the ratio
store / append-only. Every row is counted back after each run.
"""

from __future__ import annotations

import argparse
import contextlib
import random
import sqlite3
import statistics
import string
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamer.sessions.sqlite import SQLiteSessionStore
from streamer.sessions.table_spec import json_rows
from streamer.sessions.tables import CMCD_SAMPLES
from streamer.telemetry.model import CmcdSample, CmcdValue, TelemetryBatch

_ID_ALPHABET = string.ascii_letters + string.digits + "-_"
KEYS: dict[str, CmcdValue] = {"br": 160, "ot": "m", "sf": "h", "st": "v"}  # hls.js, a playlist
# The store's own table declaration, row encoding and statement, so the append-only table
# differs from the store by its indexes alone.
_APPEND_ONLY_SCHEMA = CMCD_SAMPLES.sqlite_ddl("samples", primary_key=False)
_APPEND_ONLY_INSERT = CMCD_SAMPLES.sqlite_insert_json("samples")


@dataclass(frozen=True)
class RowCost:
    store_us: float  # CPU per row through the store, second half
    append_only_us: float  # CPU per row appended to a table without index, second half
    rows_stored: int
    rows_appended: int


def session_ids(count: int, seed: int = 0) -> list[str]:
    """Random ids like the edge's (16 URL-safe characters): spread over the key space as real
    ones are, where sequential ids would land each batch on a few neighbouring index pages."""
    rng = random.Random(seed)
    return ["".join(rng.choices(_ID_ALPHABET, k=16)) for _ in range(count)]


def samples(count: int, sessions: int, start_ms: int) -> list[CmcdSample]:
    """`count` samples from `sessions` sessions taking turns, sample ids in arrival order."""
    ids = session_ids(sessions)
    return [
        CmcdSample(
            session_id=ids[n % sessions],
            sample_id=f"0123456789{n:06x}",
            received_ms=start_ms + n,
            route="playlist",
            object="aac_160",
            status=200,
            keys={**KEYS, "sid": ids[n % sessions]},
        )
        for n in range(count)
    ]


def _timed_halves(batches: Sequence[Any], write: Callable[[Any], object]) -> float:
    """CPU seconds `write` took over the second half of `batches`."""
    half = len(batches) // 2
    for batch in batches[:half]:
        write(batch)
    started = time.process_time()
    for batch in batches[half:]:
        write(batch)
    return time.process_time() - started


def _second_half_rows(rows: int, batch: int) -> int:
    count = -(-rows // batch)
    return sum(min(batch, rows - i * batch) for i in range(count // 2, count))


def through_store(work: Path, items: list[CmcdSample], batch: int) -> tuple[float, int]:
    store = SQLiteSessionStore(work / "sessions.sqlite3")
    batches = [
        TelemetryBatch(cmcd=tuple(items[i : i + batch])) for i in range(0, len(items), batch)
    ]
    try:
        seconds = _timed_halves(batches, store.write_telemetry)
    finally:
        store.close()
    with contextlib.closing(sqlite3.connect(work / "sessions.sqlite3")) as db:
        (stored,) = db.execute("SELECT count(*) FROM cmcd_samples").fetchone()
    return seconds, stored


def append_only(work: Path, items: list[CmcdSample], batch: int) -> tuple[float, int]:
    db = sqlite3.connect(work / "append-only.sqlite3")
    db.execute("PRAGMA journal_mode=WAL")  # as the store opens its file
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(_APPEND_ONLY_SCHEMA)
    payloads = [
        json_rows([CMCD_SAMPLES.sqlite_row(s) for s in items[i : i + batch]])
        for i in range(0, len(items), batch)
    ]

    def write(payload: str) -> None:
        with db:
            db.execute(_APPEND_ONLY_INSERT, (payload,))

    seconds = _timed_halves(payloads, write)
    (appended,) = db.execute("SELECT count(*) FROM samples").fetchone()
    db.close()
    return seconds, appended


def measure(rows: int, sessions: int, batch: int, store_first: bool = True) -> RowCost:
    items = samples(rows, sessions, int(time.time() * 1000))
    timed = _second_half_rows(rows, batch)
    with tempfile.TemporaryDirectory(prefix="store-rows-") as scratch:
        work = Path(scratch)
        order = (through_store, append_only) if store_first else (append_only, through_store)
        results = {step: step(work, items, batch) for step in order}
    (store_s, stored), (append_s, appended) = results[through_store], results[append_only]
    return RowCost(store_s / timed * 1e6, append_s / timed * 1e6, stored, appended)


def _summary(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=20_000)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=SQLiteSessionStore.telemetry_batch_items)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    costs = []
    for run in range(args.runs):
        cost = measure(args.rows, args.sessions, args.batch, store_first=run % 2 == 0)
        if cost.rows_stored != args.rows or cost.rows_appended != args.rows:
            print(f"run {run + 1}: rows missing: {cost}", file=sys.stderr)
            return 1
        costs.append(cost)
        print(
            f"run {run + 1}: store {cost.store_us:.1f} us/row, "
            f"append-only {cost.append_only_us:.1f} us/row",
            file=sys.stderr,
        )
    store = [c.store_us for c in costs]
    floor = [c.append_only_us for c in costs]
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"\n{args.rows:,} CMCD samples of {args.sessions:,} sessions in batches of {args.batch}, "
        f"{args.runs} runs, {when}; CPU per row over the second half\n"
    )
    print("| write | µs of CPU per row |\n|---|---:|")
    print(f"| SQLiteSessionStore.write_telemetry | {_summary(store)} |")
    print(f"| append-only table, no index | {_summary(floor)} |")
    print(f"\nratio store / append-only: {statistics.median(store) / statistics.median(floor):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
