"""Prometheus metrics of the edge, in a registry of its own (no global state).

With `--workers N` the workers share one port, so a scrape reaches whichever worker the kernel
picks. Each worker therefore keeps its series in files of one directory the supervisor makes
(`metrics_shared_by_workers`, prometheus_client's multiprocess mode), and the scraped worker
exports all of them: counters and histograms summed over workers, gauges combined as each
one's `multiprocess_mode` says (livesum, livemax, livemin).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from cdn_edge.ads.metrics import AdMetrics
from cdn_edge.gauge_readers import MULTIPROCESS_DIR_ENV, GaugeReaders, shared_by_workers
from cdn_edge.playback.segment_cache import SegmentCache
from cdn_edge.telemetry.metrics import TelemetryMetrics
from cdn_edge.telemetry.spooling_sink import SpoolMetrics

__all__ = ["CONTENT_TYPE", "EdgeMetrics", "metrics_shared_by_workers", "shared_by_workers"]

# Playlists render in about 100 us, cached segments in well under a millisecond; store misses
# and session creation take milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Listener throughput in kbit/s: from a cellular edge (below the 32 kbit/s rung) to fibre.
THROUGHPUT_BUCKETS_KBPS = (64, 128, 256, 512, 1000, 2000, 5000, 10_000, 25_000, 100_000)
LOOP_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


@contextlib.contextmanager
def metrics_shared_by_workers() -> Iterator[Path]:
    """Around starting worker processes: a fresh directory for their series (or the one
    PROMETHEUS_MULTIPROC_DIR names, emptied of the last run's), named in the environment they
    inherit, and removed after."""
    configured = os.environ.get(MULTIPROCESS_DIR_ENV)
    if configured:
        directory = Path(configured)
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.db"):  # a previous run's counts must not add up
            stale.unlink()
        yield directory
        return
    directory = Path(tempfile.mkdtemp(prefix="streamer-metrics-"))
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)
    try:
        yield directory
    finally:
        os.environ.pop(MULTIPROCESS_DIR_ENV, None)
        shutil.rmtree(directory, ignore_errors=True)


class EdgeMetrics:
    """The edge's series; handlers call these attributes directly."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.gauges = GaugeReaders()  # gauges read from the process's state at export
        self.telemetry = TelemetryMetrics(r, self.gauges)  # CMCD, player events, QoE, plays
        self.spool = SpoolMetrics(r, self.gauges)  # the telemetry spool: bytes, alarm, replays
        self.ads = AdMetrics(r)  # ad breaks by outcome, decision latency, the ad spool
        self.requests = Counter(
            "edge_requests", "HTTP requests by route and status", ["route", "status"], registry=r
        )
        self.latency = Histogram(
            "edge_request_duration_seconds",
            "Time from request to response headers, by route and status",
            ["route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.bytes_served = Counter(
            "edge_bytes_served", "Response body bytes by route", ["route"], registry=r
        )
        self.sessions_created = Counter(
            "edge_sessions_created", "Playback sessions opened, by tier", ["tier"], registry=r
        )
        self.session_store_failures = Counter(
            "edge_session_store_failures",
            "Sessions that could not be recorded (playback went on)",
            registry=r,
        )
        self.keys_issued = Counter(
            "edge_keys_issued", "Content keys handed out, by key tier", ["tier"], registry=r
        )
        self.refusals = Counter(
            "edge_refusals", "Requests refused, by reason (error code)", ["reason"], registry=r
        )
        self.cache_hits = Counter(
            "edge_segment_cache_hits", "Segment requests served from memory", registry=r
        )
        self.cache_misses = Counter(
            "edge_segment_cache_misses", "Segment loads from the object store", registry=r
        )
        self._cache_hit_ratio = Gauge(
            "edge_segment_cache_hit_ratio",
            "Hits over hits plus misses since start (with workers: per worker, by pid)",
            registry=r,
            multiprocess_mode="liveall",
        )
        self._cache_bytes = Gauge(
            "edge_segment_cache_bytes",
            "Bytes held by the segment caches",
            registry=r,
            multiprocess_mode="livesum",
        )
        self._active_sessions = Gauge(
            "edge_active_sessions",
            "Sessions opened here that have not expired",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.steering_requests = Counter(
            "edge_steering_requests",
            "Steering manifests served, by the pathway the player reported (or 'none')",
            ["pathway"],
            registry=r,
        )
        self.pathway_throughput = Histogram(
            "edge_pathway_throughput_kbps",
            "Throughput players reported on steering reloads, by pathway, in kbit/s",
            ["pathway"],
            buckets=THROUGHPUT_BUCKETS_KBPS,
            registry=r,
        )
        self.loop_lag = Histogram(
            "edge_event_loop_lag_seconds",
            "How late the event loop woke a task sampling it every 0.1 s",
            buckets=LOOP_LAG_BUCKETS,
            registry=r,
        )
        self._request_series: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self._pathway_healthy = Gauge(
            "edge_pathway_healthy",
            "1 while a steering pathway is healthy (with workers: to every worker), else 0",
            ["pathway"],
            registry=r,
            multiprocess_mode="livemin",
        )

    def observe_request(self, route: str, status: int, elapsed_s: float, sent: int) -> None:
        """Count a request, its latency and body bytes (one call per request)."""
        series = self._request_series.get((route, status))
        if series is None:  # label lookups hash and lock: once per (route, status), not per request
            labels = (route, str(status))
            series = self._request_series[(route, status)] = (
                self.requests.labels(*labels),
                self.latency.labels(*labels),
                self.bytes_served.labels(route),
            )
        requests, latency, sent_bytes = series
        requests.inc()
        latency.observe(elapsed_s)
        if sent:
            sent_bytes.inc(sent)

    def watch_cache(self, cache: SegmentCache) -> None:
        self.gauges.watch(self._cache_hit_ratio, lambda: cache.stats.hit_ratio)
        self.gauges.watch(self._cache_bytes, lambda: cache.size)

    def watch_active_sessions(self, count: Callable[[], int]) -> None:
        self.gauges.watch(self._active_sessions, count)

    def watch_pathways(self, pathway_ids: tuple[str, ...], healthy: Callable[[str], bool]) -> None:
        def reader(pathway_id: str) -> Callable[[], float]:
            return lambda: float(healthy(pathway_id))

        for pathway_id in pathway_ids:
            self.gauges.watch(self._pathway_healthy.labels(pathway_id), reader(pathway_id))

    def exposition(self) -> bytes:
        """The text exposition: this process's series, or with workers all of theirs."""
        self.gauges.refresh()
        if not shared_by_workers():
            return generate_latest(self.registry)
        merged = CollectorRegistry()
        # prometheus_client ships py.typed but leaves this constructor unannotated.
        MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
        return generate_latest(merged)
