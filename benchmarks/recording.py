"""What a load run observed, per endpoint: latencies, errors by kind, bytes, and a time line.

A client process fills a `Recording`; the parent merges the recordings of all its client
processes (`to_dict`/`from_dict` carry them over a pipe) and summarises them for the report.
Time-line buckets are whole seconds since the run's start on the system-wide monotonic clock,
which every process on the machine shares.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.histogram import LogHistogram

PERCENTILES = (50.0, 90.0, 99.0)


@dataclass
class EndpointRecord:
    """Everything observed on one endpoint."""

    latency: LogHistogram = field(default_factory=LogHistogram)
    errors: Counter[str] = field(default_factory=Counter)
    bytes: int = 0
    # Second since the run's start -> latencies (successes) and error count in that second.
    by_second: dict[int, LogHistogram] = field(default_factory=dict)
    errors_by_second: Counter[int] = field(default_factory=Counter)

    @property
    def ok(self) -> int:
        return self.latency.count

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def merge(self, other: EndpointRecord) -> None:
        self.latency.merge(other.latency)
        self.errors.update(other.errors)
        self.bytes += other.bytes
        for second, hist in other.by_second.items():
            mine = self.by_second.get(second)
            if mine is None:
                mine = self.by_second[second] = LogHistogram(hist.sub_bits)
            mine.merge(hist)
        self.errors_by_second.update(other.errors_by_second)

    def to_dict(self) -> dict[str, Any]:
        return {
            "latency": self.latency.to_dict(),
            "errors": dict(self.errors),
            "bytes": self.bytes,
            "by_second": {str(s): h.to_dict() for s, h in sorted(self.by_second.items())},
            "errors_by_second": {str(s): n for s, n in sorted(self.errors_by_second.items())},
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> EndpointRecord:
        return cls(
            latency=LogHistogram.from_dict(doc["latency"]),
            errors=Counter({str(k): int(v) for k, v in doc["errors"].items()}),
            bytes=int(doc["bytes"]),
            by_second={int(s): LogHistogram.from_dict(h) for s, h in doc["by_second"].items()},
            errors_by_second=Counter({int(s): int(n) for s, n in doc["errors_by_second"].items()}),
        )


class Recording:
    """Endpoint records of one run (or one client process's share of it)."""

    def __init__(self, started: float) -> None:
        self.started = started  # time.monotonic() at the run's start
        self.endpoints: dict[str, EndpointRecord] = {}
        # Listener count per second (paced mode), summed over client processes.
        self.active_by_second: Counter[int] = Counter()
        self.counters: Counter[str] = Counter()  # e.g. late segments, key budget waits

    def endpoint(self, name: str) -> EndpointRecord:
        record = self.endpoints.get(name)
        if record is None:
            record = self.endpoints[name] = EndpointRecord()
        return record

    def second(self, now: float) -> int:
        return int(now - self.started)

    def success(self, name: str, started: float, finished: float, size: int) -> None:
        record = self.endpoint(name)
        micros = max(0, round((finished - started) * 1_000_000))
        record.latency.record(micros)
        second = self.second(finished)
        hist = record.by_second.get(second)
        if hist is None:
            hist = record.by_second[second] = LogHistogram()
        hist.record(micros)
        record.bytes += size

    def failure(self, name: str, kind: str, finished: float) -> None:
        record = self.endpoint(name)
        record.errors[kind] += 1
        record.errors_by_second[self.second(finished)] += 1

    def merge(self, other: Recording) -> None:
        for name, record in other.endpoints.items():
            self.endpoint(name).merge(record)
        self.active_by_second.update(other.active_by_second)
        self.counters.update(other.counters)

    def to_dict(self) -> dict[str, Any]:
        return {
            "started": self.started,
            "endpoints": {name: r.to_dict() for name, r in self.endpoints.items()},
            "active_by_second": {str(s): n for s, n in sorted(self.active_by_second.items())},
            "counters": dict(self.counters),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Recording:
        out = cls(float(doc["started"]))
        out.endpoints = {n: EndpointRecord.from_dict(r) for n, r in doc["endpoints"].items()}
        out.active_by_second = Counter({int(s): int(n) for s, n in doc["active_by_second"].items()})
        out.counters = Counter({str(k): int(v) for k, v in doc["counters"].items()})
        return out


def summarize_endpoint(record: EndpointRecord, seconds: float) -> dict[str, Any]:
    """Throughput, latency percentiles in ms, errors by kind and bytes of one endpoint."""
    hist = record.latency
    total = record.ok + record.error_count
    return {
        "requests": total,
        "ok": record.ok,
        "errors": record.error_count,
        "errors_by_kind": dict(sorted(record.errors.items())),
        "requests_per_s": record.ok / seconds if seconds > 0 else 0.0,
        "bytes": record.bytes,
        "mbit_per_s": record.bytes * 8 / seconds / 1e6 if seconds > 0 else 0.0,
        "latency_ms": {
            **{f"p{p:g}": hist.percentile(p) / 1000 for p in PERCENTILES},
            "mean": hist.mean / 1000,
            "max": hist.max / 1000,
        },
    }


def time_line(record: EndpointRecord) -> list[dict[str, Any]]:
    """Per second: requests, errors, p50 and p99 in ms (for the plot and the JSON)."""
    seconds = sorted(set(record.by_second) | set(record.errors_by_second))
    out = []
    for second in seconds:
        hist = record.by_second.get(second, LogHistogram())
        out.append(
            {
                "second": second,
                "ok": hist.count,
                "errors": record.errors_by_second.get(second, 0),
                "p50_ms": hist.percentile(50) / 1000,
                "p99_ms": hist.percentile(99) / 1000,
                "max_ms": hist.max / 1000,
            }
        )
    return out
