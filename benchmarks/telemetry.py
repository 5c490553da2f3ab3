"""Telemetry ingest: player events sustained into Cassandra through the edge's writer.

    python -m benchmarks.telemetry [--runs 3] [--seconds 8] [--sessions 1500] [--profile]

Needs a CQL server: `scripts/services up cassandra` (its address comes from the environment,
`STREAMER_CQL_HOSTS` and `STREAMER_CQL_PORT`, else from the file `scripts/services` writes).
Creates a keyspace of its own with the store's migrations and drops it at the end.

Each run, in alternating order, writes the same workload (player events of `--sessions`
sessions, `--listeners` players sending at once; see benchmarks.telemetry_workload) twice:

    baseline  the driver alone runs the store's prepared player-event INSERT on each event's
              row, `--concurrency` requests in flight (default: the best of 64, 128 and 256,
              tried first), for at most `--seconds`;
    writer    the edge's TelemetryWriter over its SessionStoreSink over the ScyllaSessionStore,
              fed by an asyncio producer as fast as it accepts (429s waited out and resent),
              for at most `--seconds`, then drained.

After each, every session's rows are counted: `lost` is what was sent and is not stored.
Reports median (min, max) of events/s for both, the ratio writer / baseline (target >= 0.70,
with no event lost), the writer's p50/p99/max enqueue time and event-loop lag, and where its
time went; JSON and Markdown in `--out`.

One module on purpose (about 420 lines): a benchmark program reads top to bottom, from its
options to its report.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import uvloop

from benchmarks import profiles
from benchmarks.procstat import MACHINE, ProcessSampler
from benchmarks.report import machine_info, write_json
from benchmarks.telemetry_driver import (
    EVENT_INSERT,
    DriverOnly,
    count_rows,
    event_rows,
    insert_all,
)
from benchmarks.telemetry_edge import run_writer, store_deliveries
from benchmarks.telemetry_report import FAIL, render_markdown, summarize_runs
from benchmarks.telemetry_workload import Workload, build_workload
from streamer.cql.connection import Cql, open_cql_session
from streamer.cql.schema import migrate
from streamer.errors import StorageError
from streamer.sessions.scylla import ScyllaSessionStore
from streamer.settings import ENV_PREFIX, Settings, load_settings

RESULTS_DIR = Path(__file__).resolve().parent / "results"  # ignored by git
CONCURRENCY_CHOICES = (64, 128, 256)
SWEEP_S = 1.5  # per concurrency tried; also warms the server's write path
STALE_KEYSPACE_S = 6 * 3600.0  # a benchmark keyspace this old was left by a killed run
BENCH_KEYSPACE = re.compile(r"streamer_bench_(\d+)_[0-9a-f]+")
EVENTS_TABLE = "player_events"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="streamer bench telemetry", description=__doc__.splitlines()[0]
    )
    p.add_argument("--runs", type=int, default=3, help="rounds of baseline and writer")
    p.add_argument(
        "--seconds",
        type=float,
        default=8.0,
        help="each side sends for at most this long (the writer then drains what it holds)",
    )
    p.add_argument("--sessions", type=int, default=1500, help="sessions per side and run")
    p.add_argument("--listeners", type=int, default=1000, help="players sending at once")
    p.add_argument(
        "--concurrency",
        type=int,
        help=f"baseline requests in flight (default: the best of {CONCURRENCY_CHOICES})",
    )
    p.add_argument("--capacity", type=int, help="writer queue (default: the edge's setting)")
    p.add_argument("--max-batch", type=int, help="writer batch (default: the edge's)")
    p.add_argument(
        "--no-deliveries",
        dest="deliveries",
        action="store_false",
        help="store no segment deliveries first: no session can count a play, so the sink "
        "reads every session back on every batch (segments served by another CDN)",
    )
    p.add_argument("--seed", type=int, default=1, help="of the workload's random mix")
    p.add_argument("--cql-hosts", help=f"default ${ENV_PREFIX}CQL_HOSTS")
    p.add_argument("--cql-port", type=int, help=f"default ${ENV_PREFIX}CQL_PORT")
    p.add_argument("--out", type=Path, help="report directory (default benchmarks/results/)")
    p.add_argument("--check", action="store_true", help="exit 1 if a target fails")
    p.add_argument(
        "--profile", action="store_true", help="py-spy of this process during the first writer run"
    )
    return p


def _check(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    for name in ("runs", "sessions", "listeners", "concurrency", "capacity", "max_batch"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.seconds <= 0:
        parser.error("--seconds must be above 0")


def services_env(environ: Mapping[str, str]) -> dict[str, str]:
    """STREAMER_* of the file `scripts/services` writes, under those of `environ`."""
    cache = Path(environ.get("STREAMER_CACHE") or Path.home() / ".cache" / "streamer")
    values: dict[str, str] = {}
    try:
        lines = (cache / "services.env").read_text().splitlines()
    except OSError:
        lines = []
    for line in lines:
        name, sep, value = line.partition("=")
        if sep and name.strip().startswith(ENV_PREFIX):
            values[name.strip()] = value.strip()
    values.update((k, v) for k, v in environ.items() if k.startswith(ENV_PREFIX))
    return values


def bench_settings(
    args: argparse.Namespace, keyspace: str, environ: Mapping[str, str] | None = None
) -> Settings:
    environ = os.environ if environ is None else environ
    return load_settings(
        environ=services_env(environ),
        cql_keyspace=keyspace,
        cql_hosts=args.cql_hosts,
        cql_port=args.cql_port,
    )


def new_keyspace_name(now: float) -> str:
    return f"streamer_bench_{int(now)}_{secrets.token_hex(3)}"


def stale_keyspaces(names: Sequence[str], now: float) -> list[str]:
    """Benchmark keyspaces that a killed run left behind."""
    return [
        name
        for name in names
        if (m := BENCH_KEYSPACE.fullmatch(name)) and now - int(m.group(1)) > STALE_KEYSPACE_S
    ]


def cassandra_pids() -> list[int]:
    """Processes running a Cassandra node on this machine (for their CPU)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"CassandraDaemon" in cmdline:
                found.append(int(entry.name))
    return found


def _verify(counts: dict[str, int], sent: Counter[str]) -> dict[str, int]:
    lost = sum(max(0, n - counts.get(s, 0)) for s, n in sent.items())
    extra = sum(max(0, counts.get(s, 0) - n) for s, n in sent.items())
    return {"stored": sum(counts.values()), "lost": lost, "unexpected": extra}


class Bench:
    """The run's connections, CPU sampler and options."""

    def __init__(
        self, args: argparse.Namespace, settings: Settings, out_dir: Path, sampler: ProcessSampler
    ) -> None:
        self.args = args
        self.settings = settings
        self.out_dir = out_dir
        self.sampler = sampler
        self.driver = DriverOnly(settings)
        try:
            self.store = ScyllaSessionStore.from_settings(settings)
        except BaseException:
            self.driver.close()
            raise
        self.insert = self.driver.prepare(EVENT_INSERT)
        self.capacity = args.capacity or settings.telemetry_queue_events
        self.profiled = False
        self.described: dict[str, Any] = {}
        self.notes: list[str] = []

    def close(self) -> None:
        self.store.close()
        self.driver.close()

    def cpu(self, started: float, ended: float) -> dict[str, float | None]:
        return {
            name: self.sampler.summary(name, started, ended)["cpu_cores_mean"]
            for name in ("benchmark", "cassandra", MACHINE)
        }

    def workload(self, prefix: str) -> Workload:
        a = self.args
        return build_workload(
            prefix,
            a.sessions,
            a.listeners,
            seed=a.seed,
            start_ms=int(time.time() * 1000),
            deliveries=a.deliveries,
        )

    def sweep(self) -> tuple[int, list[dict[str, Any]]]:
        """The baseline concurrency with the most inserts/s, trying each for `SWEEP_S`."""
        choices = (self.args.concurrency,) if self.args.concurrency else CONCURRENCY_CHOICES
        workload = self.workload("sweep")  # the runs' mix: only the session ids differ
        self.described = workload.describe()
        tried = []
        for concurrency in choices:
            rows = event_rows(workload.requests, Counter())
            result = insert_all(
                self.driver.session,
                self.insert,
                rows,
                concurrency,
                time.perf_counter() + SWEEP_S,
            )
            rate = result.ok / result.elapsed_s if result.elapsed_s else 0.0
            tried.append({"concurrency": concurrency, "events_per_s": round(rate, 1)})
            print(f"  baseline concurrency {concurrency:4d}: {rate:8.0f} events/s", flush=True)
        best = max(tried, key=lambda t: t["events_per_s"])
        return int(best["concurrency"]), tried

    def baseline(self, run: int, concurrency: int) -> dict[str, Any]:
        workload = self.workload(f"r{run}b")
        sent: Counter[str] = Counter()
        started = time.monotonic()
        result = insert_all(
            self.driver.session,
            self.insert,
            event_rows(workload.requests, sent),
            concurrency,
            time.perf_counter() + self.args.seconds,
        )
        ended = time.monotonic()
        checked = _verify(count_rows(self.driver.session, EVENTS_TABLE, sent), sent)
        return {
            "events": result.sent,
            "acknowledged": result.ok,
            "failed": result.failed,
            "first_error": result.first_error,
            "cut_by_deadline": result.sent < workload.events,
            "elapsed_s": round(result.elapsed_s, 3),
            "events_per_s": round(result.ok / result.elapsed_s, 1) if result.elapsed_s else 0.0,
            "concurrency": concurrency,
            **checked,
            "cpu_cores": self.cpu(started, ended),
        }

    def writer(self, run: int) -> dict[str, Any]:
        workload = self.workload(f"r{run}w")
        seeded_s = store_deliveries(self.store, workload) if self.args.deliveries else 0.0
        spy = None
        if self.args.profile and not self.profiled:
            self.profiled = True
            spy = profiles.start(
                os.getpid(), self.out_dir / "profile-writer.txt", self.args.seconds
            )
            if spy is None:
                self.notes.append("--profile: py-spy is not installed (pip install py-spy)")
        started = time.monotonic()
        kwargs = {"max_batch": self.args.max_batch} if self.args.max_batch else {}
        result, sent = uvloop.run(
            run_writer(self.store, workload, self.args.seconds, capacity=self.capacity, **kwargs)
        )
        ended = time.monotonic()
        if spy is not None:
            profiles.finish(spy)
            collapsed = self.out_dir / "profile-writer.txt"
            if collapsed.exists():
                (self.out_dir / "profile-writer.top.txt").write_text(profiles.summarize(collapsed))
        checked = _verify(count_rows(self.driver.session, EVENTS_TABLE, sent), sent)
        return {
            **result,
            **checked,
            "deliveries_stored_first": len(workload.deliveries),
            "deliveries_store_s": round(seeded_s, 3),
            "cpu_cores": self.cpu(started, ended),
        }


def _line(run: int, runs: int, side: str, r: dict[str, Any]) -> str:
    line = (
        f"run {run}/{runs} {side:8} {r['events_per_s']:8.0f} events/s  {r['events']:6d} events "
        f"in {r['elapsed_s']:6.2f} s  lost {r['lost']}"
    )
    if side == "writer":
        line += (
            f"  enqueue p99 {r['enqueue_us']['p99']:.0f} us  loop lag p99 "
            f"{r['loop_lag_ms']['p99']:.1f} ms  429 waits {r['waits_429']}"
        )
    cpu = r["cpu_cores"]
    return (
        line + f"  cores: bench {cpu['benchmark'] or 0:.2f} cassandra {cpu['cassandra'] or 0:.2f}"
    )


def _drop(settings: Settings, keyspace: str) -> None:
    try:
        with open_cql_session(settings, use_keyspace=False) as admin:
            admin.execute_schema(f"DROP KEYSPACE IF EXISTS {keyspace}", action=f"drop {keyspace}")
    except StorageError as exc:  # a later run drops it once it is stale
        print(f"note: keyspace {keyspace} is left behind: {exc}", file=sys.stderr)


def _drop_stale(settings: Settings, now: float) -> None:
    with open_cql_session(settings, use_keyspace=False) as admin:
        rows = admin.execute(
            Cql("SELECT keyspace_name FROM system_schema.keyspaces", idempotent=True),
            action="list keyspaces",
        ).all()
        for name in stale_keyspaces([row["keyspace_name"] for row in rows], now):
            admin.execute_schema(f"DROP KEYSPACE IF EXISTS {name}", action=f"drop {name}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _check(args, parser)
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    out_dir = args.out or RESULTS_DIR / f"telemetry-{stamp}"
    out_dir.mkdir(parents=True, exist_ok=True)
    command = "python -m benchmarks.telemetry " + shlex.join(
        sys.argv[1:] if argv is None else list(argv)
    )
    keyspace = new_keyspace_name(time.time())
    settings = bench_settings(args, keyspace)
    machine = machine_info()
    print(
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine['cores']} cores "
        f"({machine['cpu'] or 'unknown CPU'}), {machine['memory_gib']:.0f} GiB; "
        f"CQL {settings.cql_hosts}:{settings.cql_port}, keyspace {keyspace}",
        flush=True,
    )
    try:
        _drop_stale(settings, time.time())
        started = time.perf_counter()
        migrate(settings)
    except StorageError as exc:
        print(f"{exc}\n(is the CQL server up? `scripts/services up cassandra`)", file=sys.stderr)
        return 2
    print(f"  keyspace migrated in {time.perf_counter() - started:.1f} s", flush=True)
    doc: dict[str, Any] = {
        "benchmark": "telemetry",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": command,
        "machine": machine,
        "cql": {"hosts": settings.cql_hosts, "port": settings.cql_port, "keyspace": keyspace},
        "runs": [],
    }
    try:
        with ProcessSampler() as sampler:
            sampler.watch("benchmark", lambda: [os.getpid()])
            sampler.watch("cassandra", cassandra_pids)
            bench = Bench(args, settings, out_dir, sampler)
            try:
                doc["cql"]["server"] = f"Cassandra {bench.driver.release_version()}"
                concurrency, tried = bench.sweep()
                doc["workload"] = {
                    **bench.described,
                    "listeners": args.listeners,
                    "seed": args.seed,
                    "deliveries": args.deliveries,
                }
                doc["baseline_concurrency"] = {"chosen": concurrency, "tried": tried}
                doc["writer_settings"] = {"capacity": bench.capacity}
                for run in range(1, args.runs + 1):
                    order = ("baseline", "writer") if run % 2 else ("writer", "baseline")
                    record: dict[str, Any] = {"run": run, "order": list(order)}
                    for side in order:
                        record[side] = (
                            bench.baseline(run, concurrency)
                            if side == "baseline"
                            else bench.writer(run)
                        )
                        print(_line(run, args.runs, side, record[side]), flush=True)
                    doc["runs"].append(record)
                doc["notes"] = bench.notes
            finally:
                bench.close()
    except StorageError as exc:
        print(f"{exc}\n(is the CQL server up? `scripts/services up cassandra`)", file=sys.stderr)
        return 2
    finally:
        _drop(settings, keyspace)
    doc.update(summarize_runs(doc["runs"]))
    json_path = write_json(out_dir / "telemetry.json", doc)
    md_path = out_dir / "telemetry.md"
    md_path.write_text(render_markdown(doc))
    print()
    for line in render_markdown(doc, brief=True).splitlines():
        print(line)
    print(f"\nreport: {json_path}, {md_path}")
    failed = any(t["result"] == FAIL for t in doc["targets"])
    return 1 if failed and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
