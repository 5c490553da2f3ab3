"""What the soak samples while its load runs: every server process's RSS and open files, and the
server's files on disk that must not grow (the telemetry spool, nginx's caches) or may (stores).

One sample reads /proc for each process of the `streamer serve` tree (`tier_usage`: its part
and role, e.g. "edge worker 2"; RSS, and its private and shared parts from smaps_rollup), sizes
a few directories, reads the shipper's lag and, given the nginx tier's status port, the gate's
status (each nginx worker's Lua heap, each zone's free space). A
`SoakSampler` takes one when the load starts, then every `interval_s` in a thread, and a last
one when the load ends.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.request import urlopen

from benchmarks.edge_setup import scrape_telemetry
from benchmarks.procstat import cpu_ticks, machine_busy_ticks, rss_bytes, rss_split
from benchmarks.servers import ServerProcess
from benchmarks.tier_usage import process_class, shipper_lag_bytes, tier_processes
from cdn_edge.nginx_tier.config import STATUS_LOCATION
from cdn_edge.nginx_tier.from_settings import tier_config
from streamer.settings import load_settings
from streamer.telemetry.spool import SPOOL_DIR

_NGINX_ROLE = re.compile(r"^nginx: (.+?) process")
STORE_SUFFIX = ".sqlite3"  # the embedded stores under the data directory (sessions, jobs)


@dataclass(frozen=True)
class ProcessSample:
    label: str  # part and role, numbered when several share it: "edge worker 2"
    part: str  # nginx, edge, logship, supervisor (tier_usage.process_class)
    pid: int
    rss_bytes: int
    open_fds: int | None  # every descriptor; None when /proc/<pid>/fd could not be read
    sockets: int | None  # of them, sockets
    cpu_ticks: int
    # RSS split (procstat.rss_split): private is the process's own; shared it maps with others
    # (an nginx worker: the zones every worker maps, and code). None: not read.
    private_bytes: int | None = None
    shared_bytes: int | None = None


@dataclass(frozen=True)
class Sample:
    t_s: float  # since the load started
    wall_s: float  # Unix time
    processes: tuple[ProcessSample, ...]
    spool_bytes: int
    nginx_cache_bytes: int
    shipper_lag_bytes: int
    stores_bytes: dict[str, int]  # grow by design: reported, not judged
    machine_busy_ticks: int
    telemetry_dropped: float | None  # the edge's dropped telemetry items so far; None: no answer
    # The nginx gate's status (config.STATUS_LOCATION): {"workers": {pid: {"lua_kib", ...}},
    # "zones": {name: {"capacity", "free_space"}}}; None without a status port or an answer.
    gate: dict[str, Any] | None = None


def role_of(part: str, cmdline: str, comm: str) -> str:
    """A process's role within its part: "nginx worker", "edge worker", "logship"."""
    if comm == "nginx":
        match = _NGINX_ROLE.match(cmdline)
        return f"nginx {match.group(1)}" if match else "nginx"
    if process_class(cmdline, comm) == part:  # the part's own process, not one it started
        return part
    if "multiprocessing.spawn" in cmdline:
        return f"{part} worker"
    if "multiprocessing.resource_tracker" in cmdline:
        return f"{part} resource tracker"
    return f"{part} child"


def open_fds(pid: int) -> tuple[int, int] | None:
    """Open descriptors of `pid`, and how many of them are sockets; None if unreadable."""
    folder = f"/proc/{pid}/fd"
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    sockets = 0
    for name in names:
        with contextlib.suppress(OSError):  # closed since it was listed
            sockets += os.readlink(f"{folder}/{name}").startswith("socket:")
    return len(names), sockets


def sample_tree(root: int, pids: list[int]) -> tuple[ProcessSample, ...]:
    """Every process of the tree below `root` (`pids`, root included), labelled; processes
    sharing a role are numbered in pid order."""
    by_role: dict[str, list[int]] = {}
    part_of: dict[int, str] = {}
    for process in tier_processes(root, pids):
        role = role_of(process.part, process.cmdline, process.comm)
        by_role.setdefault(role, []).append(process.pid)
        part_of[process.pid] = process.part
    samples = []
    for role, members in sorted(by_role.items()):
        members.sort()
        for n, pid in enumerate(members, 1):
            label = f"{role} {n}" if len(members) > 1 else role
            fds = open_fds(pid)
            ticks = cpu_ticks(pid)
            if ticks is None:  # gone since it was listed
                continue
            total, sockets = fds if fds is not None else (None, None)
            rss = rss_bytes(pid)
            private, shared = rss_split(pid) or (None, None)
            samples.append(
                ProcessSample(label, part_of[pid], pid, rss, total, sockets, ticks, private, shared)
            )
    return tuple(samples)


def tree_bytes(path: Path, skip: Path | None = None) -> int:
    """Bytes of the regular files below `path` (0 if it is not there), `skip`'s excepted."""
    total = 0
    for folder, dirs, files in os.walk(path):
        if skip is not None:
            dirs[:] = [d for d in dirs if Path(folder, d) != skip]
        for name in files:
            with contextlib.suppress(OSError):  # replayed and deleted while we walked
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


@dataclass(frozen=True)
class DiskPaths:
    """Where the server's data directory keeps what the soak sizes."""

    data_dir: Path
    spool: Path
    nginx_prefix: Path  # caches, temp files and config: all but its logs
    nginx_logs: Path
    access_logs: tuple[Path, ...]

    @classmethod
    def of(cls, data_dir: Path) -> DiskPaths:
        config = tier_config(load_settings(environ={}, data_dir=data_dir), "127.0.0.1:1")
        return cls(
            data_dir=data_dir,
            spool=data_dir / SPOOL_DIR,
            nginx_prefix=config.prefix,
            nginx_logs=config.access_log.parent,
            access_logs=config.access_logs,
        )

    def stores(self) -> dict[str, int]:
        """Each embedded store's files (the database, its -wal and -shm) and nginx's access
        log."""
        sizes = {p.name: _size(p) for p in sorted(self.data_dir.glob(f"*{STORE_SUFFIX}*"))}
        sizes["nginx access log"] = sum(_size(p) for p in self.access_logs)
        return sizes


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


GATE_STATUS_TIMEOUT_S = 5.0


def gate_status(port: int) -> dict[str, Any] | None:
    """The nginx gate's status on 127.0.0.1:`port`; None when it does not answer in time."""
    try:
        with urlopen(
            f"http://127.0.0.1:{port}{STATUS_LOCATION}", timeout=GATE_STATUS_TIMEOUT_S
        ) as r:
            doc: dict[str, Any] = json.loads(r.read())
    except (OSError, ValueError):
        return None
    return doc


def take_sample(
    root: int,
    pids: list[int],
    paths: DiskPaths,
    t_s: float,
    base_url: str | None,
    status_port: int | None = None,
) -> Sample:
    dropped = None
    if base_url is not None:
        # A busy edge that does not answer in time is a gap, not a failure.
        with contextlib.suppress(OSError):
            dropped = scrape_telemetry(base_url)["dropped"]
    return Sample(
        t_s=t_s,
        wall_s=time.time(),
        processes=sample_tree(root, pids),
        spool_bytes=tree_bytes(paths.spool),
        nginx_cache_bytes=tree_bytes(paths.nginx_prefix, skip=paths.nginx_logs),
        shipper_lag_bytes=shipper_lag_bytes(paths.data_dir),
        stores_bytes=paths.stores(),
        machine_busy_ticks=machine_busy_ticks(),
        telemetry_dropped=dropped,
        gate=gate_status(status_port) if status_port is not None else None,
    )


@dataclass
class SoakSampler:
    """Samples the server every `interval_s` while `watching` it (vegeta_paced's `Watch`)."""

    interval_s: float
    status_port: int | None = None  # the nginx tier's status listener, when it has one
    samples: list[Sample] = field(default_factory=list)

    @contextmanager
    def watching(self, server: ServerProcess, data_dir: Path, base_url: str) -> Iterator[None]:
        paths = DiskPaths.of(data_dir)
        started = time.monotonic()
        stop = threading.Event()

        def sample() -> None:
            t_s = time.monotonic() - started
            self.samples.append(
                take_sample(server.pid, server.pids(), paths, t_s, base_url, self.status_port)
            )
            print_sample(self.samples[-1])

        def loop() -> None:
            k = 1
            while not stop.wait(max(0.0, started + k * self.interval_s - time.monotonic())):
                sample()
                k += 1

        sample()
        thread = threading.Thread(target=loop, name="soak-sampler", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join(timeout=60.0)
            # The load's end, unless a sample was just taken.
            if time.monotonic() - started - self.samples[-1].t_s > self.interval_s / 2:
                sample()


def print_sample(sample: Sample) -> None:
    rss = sum(p.rss_bytes for p in sample.processes)
    fds = sum(p.open_fds or 0 for p in sample.processes)
    sockets = sum(p.sockets or 0 for p in sample.processes)
    print(
        f"  soak {sample.t_s:6.0f} s: {len(sample.processes)} processes, RSS {rss / 2**20:,.0f} "
        f"MiB, {fds - sockets} open files and {sockets} sockets; spool {sample.spool_bytes:,} B, "
        f"nginx cache {sample.nginx_cache_bytes:,} B, shipper {sample.shipper_lag_bytes:,} B "
        "behind",
        file=sys.stderr,
        flush=True,
    )
