"""CPU and memory of process trees, sampled from /proc while a load runs.

A background thread reads `/proc/<pid>/stat` (utime + stime, clock ticks) and
`/proc/<pid>/status` (VmRSS) of every process in each watched tree at a fixed interval. CPU is
reported in cores (1.0 = one core busy for the whole interval); a process that appears between
samples is counted from its first sample on, one that exits loses its last partial interval.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SAMPLE_INTERVAL_S = 0.5
_TICKS_PER_S = os.sysconf("SC_CLK_TCK")

PidSource = Callable[[], list[int]]


def cpu_ticks(pid: int) -> int | None:
    """utime + stime of `pid` in clock ticks (proc(5) fields 14 and 15), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = data[data.rindex(b")") + 2 :].split()
    return int(fields[11]) + int(fields[12])


def machine_busy_ticks() -> int:
    """Clock ticks all CPUs spent busy since boot (/proc/stat: everything but idle, iowait)."""
    try:
        with open("/proc/stat", "rb") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0
    idle, iowait = fields[3], fields[4] if len(fields) > 4 else 0
    # guest and guest_nice are already counted in user and nice.
    return sum(fields[:8]) - idle - iowait


MACHINE = "machine"  # the pseudo-group of every CPU's busy time: shows load from elsewhere


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_split(pid: int) -> tuple[int, int] | None:
    """(private, shared) bytes of `pid`'s RSS from /proc/<pid>/smaps_rollup, None if unreadable.

    Shared pages are mapped by other processes too: for an nginx worker, the zones all workers
    map and the binary's code; private ones are its own heap (pools, LuaJIT), so its leaks."""
    private = shared = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                name, _, rest = line.partition(b":")
                if name in (b"Private_Clean", b"Private_Dirty"):
                    private += int(rest.split()[0]) * 1024
                elif name in (b"Shared_Clean", b"Shared_Dirty"):
                    shared += int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return private, shared


@dataclass
class TreeSamples:
    """Samples of one watched group: (monotonic time, cores busy since last, RSS bytes)."""

    samples: list[tuple[float, float, int]] = field(default_factory=list)
    cpu_s: list[tuple[float, float]] = field(default_factory=list)  # (time, CPU s in interval)

    def summary(self, start: float, end: float) -> dict[str, Any]:
        inside = [s for s in self.samples if start < s[0] <= end]
        if not inside:  # nothing watched (a server we did not start): unknown, not zero
            return dict.fromkeys(
                ("cpu_s", "cpu_cores_mean", "cpu_cores_max", "rss_mib_max", "rss_mib_last")
            )
        cpu_s = sum(c for t, c in self.cpu_s if start < t <= end)
        span = max(end - start, 1e-9)
        return {
            "cpu_s": round(cpu_s, 3),
            "cpu_cores_mean": round(cpu_s / span, 3),
            "cpu_cores_max": round(max((s[1] for s in inside), default=0.0), 3),
            "rss_mib_max": round(max((s[2] for s in inside), default=0) / 2**20, 1),
            "rss_mib_last": round(inside[-1][2] / 2**20, 1) if inside else 0.0,
        }


class ProcessSampler:
    """Samples named process trees in a thread; use as a context manager."""

    def __init__(self, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self._sources: dict[str, PidSource] = {}
        self.groups: dict[str, TreeSamples] = {}
        self._last: dict[tuple[str, int], int] = {}
        self._last_time: float | None = None
        self._last_machine = 0
        self.groups[MACHINE] = TreeSamples()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sampling = threading.Lock()  # the thread and explicit calls at phase edges
        self._thread = threading.Thread(target=self._run, name="procstat", daemon=True)

    def watch(self, name: str, pids: PidSource) -> None:
        """Sample the processes `pids()` returns (called at each sample) as group `name`."""
        with self._lock:
            self._sources[name] = pids
            self.groups.setdefault(name, TreeSamples())

    def sample(self) -> None:
        with self._sampling:
            self._sample()

    def _sample(self) -> None:
        now = time.monotonic()
        with self._lock:
            sources = dict(self._sources)
        dt = now - self._last_time if self._last_time is not None else None
        machine = machine_busy_ticks()
        if dt and self._last_machine:
            busy_s = (machine - self._last_machine) / _TICKS_PER_S
            self.groups[MACHINE].samples.append((now, busy_s / dt, 0))
            self.groups[MACHINE].cpu_s.append((now, busy_s))
        self._last_machine = machine
        for name, source in sources.items():
            total_ticks = 0
            rss = 0
            pids = source()
            if not pids:
                continue
            for pid in pids:
                ticks = cpu_ticks(pid)
                if ticks is None:
                    continue
                previous = self._last.get((name, pid))
                self._last[(name, pid)] = ticks
                if previous is not None:
                    total_ticks += ticks - previous
                rss += rss_bytes(pid)
            cpu_s = total_ticks / _TICKS_PER_S
            group = self.groups[name]
            if dt:
                group.samples.append((now, cpu_s / dt, rss))
                group.cpu_s.append((now, cpu_s))
        self._last_time = now

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.sample()

    def __enter__(self) -> ProcessSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.sample()

    def summary(self, name: str, start: float, end: float) -> dict[str, Any]:
        return self.groups.get(name, TreeSamples()).summary(start, end)
