"""Prometheus metrics of one edge process, in a registry of its own (no global state).

With `--workers N` each process exports its own series; scrape each worker or sum in queries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cdn_edge.segment_cache import SegmentCache
from cdn_edge.telemetry_metrics import TelemetryMetrics
from cdn_edge.telemetry_spooling import SpoolMetrics

__all__ = ["CONTENT_TYPE", "EdgeMetrics"]

# Playlists render in about 100 us, cached segments in well under a millisecond; store misses
# and session creation take milliseconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
# Listener throughput in kbit/s: from a cellular edge (below the 32 kbit/s rung) to fibre.
THROUGHPUT_BUCKETS_KBPS = (64, 128, 256, 512, 1000, 2000, 5000, 10_000, 25_000, 100_000)


class EdgeMetrics:
    """The edge's series; handlers call these attributes directly."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.telemetry = TelemetryMetrics(r)  # CMCD, player events, QoE, plays
        self.spool = SpoolMetrics(r)  # the telemetry spool: bytes, fill alarm, replays
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
            "edge_segment_cache_hit_ratio", "Hits over hits plus misses since start", registry=r
        )
        self._cache_bytes = Gauge(
            "edge_segment_cache_bytes", "Bytes held by the segment cache", registry=r
        )
        self._active_sessions = Gauge(
            "edge_active_sessions", "Sessions opened here that have not expired", registry=r
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
        self._request_series: dict[tuple[str, int], tuple[Any, Any, Any]] = {}
        self._pathway_healthy = Gauge(
            "edge_pathway_healthy",
            "1 while a steering pathway is healthy, else 0",
            ["pathway"],
            registry=r,
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
        self._cache_hit_ratio.set_function(lambda: cache.stats.hit_ratio)
        self._cache_bytes.set_function(lambda: cache.size)

    def watch_active_sessions(self, count: Callable[[], int]) -> None:
        self._active_sessions.set_function(count)

    def watch_pathways(self, pathway_ids: tuple[str, ...], healthy: Callable[[str], bool]) -> None:
        def reader(pathway_id: str) -> Callable[[], float]:
            return lambda: float(healthy(pathway_id))

        for pathway_id in pathway_ids:
            self._pathway_healthy.labels(pathway_id).set_function(reader(pathway_id))

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
