"""Prometheus series of telemetry: CMCD, player events, the writer, QoE and plays.

Track ids and pathway names come from outside, so their labels are bounded: past
`MAX_TRACK_LABELS` distinct tracks (or `MAX_PATHWAY_LABELS` pathways) in one process, new ones
are counted under "_other" instead of growing the scrape without bound.
"""

from __future__ import annotations

import threading
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from cdn_edge.gauge_readers import GaugeReaders
from streamer.qoe import SessionQoe

MAX_TRACK_LABELS = 1000
MAX_PATHWAY_LABELS = 32
OTHER_LABEL = "_other"

STARTUP_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0)
RATIO_BUCKETS = (0.0, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0)
BITRATE_BUCKETS = (32, 64, 96, 128, 160, 192, 256, 320, 500, 1000, 1500)


class LabelGuard:
    """Admits the first `limit` distinct values of a label; later ones become "_other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()
        self._lock = threading.Lock()  # QoE is observed from the writer's thread

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        with self._lock:
            if len(self._seen) >= self._limit:
                return OTHER_LABEL
            self._seen.add(value)
        return value


class TelemetryMetrics:
    """Registered on the edge's own registry; the writer, capture and handlers use these."""

    def __init__(self, registry: CollectorRegistry, gauges: GaugeReaders | None = None) -> None:
        r = registry
        self.gauges = gauges if gauges is not None else GaugeReaders()
        self.track = LabelGuard(MAX_TRACK_LABELS)
        self.pathway = LabelGuard(MAX_PATHWAY_LABELS)
        self.cmcd_requests = Counter(
            "edge_cmcd_requests", "Requests that carried CMCD, by route", ["route"], registry=r
        )
        self._cmcd_requests_by_route: dict[str, Any] = {}
        self.cmcd_malformed = Counter(
            "edge_cmcd_malformed",
            "CMCD fields or keys ignored, by reason (syntax, unknown_key, bad_value, ...)",
            ["reason"],
            registry=r,
        )
        self.cmcd_buffer_starvation = Counter(
            "edge_cmcd_buffer_starvation",
            "Requests whose CMCD reported buffer starvation (bs), by route",
            ["route"],
            registry=r,
        )
        self.player_events = Counter(
            "edge_player_events",
            "Player events accepted, by type and pathway",
            ["type", "pathway"],
            registry=r,
        )
        self.player_events_refused = Counter(
            "edge_player_events_refused",
            "Player events refused, by reason: offline_window (one by one, too old), pace or "
            "session_cap (a whole request, over the session's event budgets)",
            ["reason"],
            registry=r,
        )
        self.written = Counter(
            "edge_telemetry_written",
            "Telemetry items the session store took, by kind",
            ["kind"],
            registry=r,
        )
        self.write_failures = Counter(
            "edge_telemetry_write_failures",
            "Telemetry batches the session store refused (each is retried)",
            registry=r,
        )
        self.dropped = Counter(
            "edge_telemetry_dropped",
            "Telemetry items given up, by kind and reason (queue_full, shutdown, rejected)",
            ["kind", "reason"],
            registry=r,
        )
        self.queued = Gauge(
            "edge_telemetry_queued",
            "Telemetry items held in memory: waiting, being written or to be retried",
            registry=r,
            multiprocess_mode="livesum",
        )
        self.sessions_checked = Counter(
            "edge_telemetry_sessions_checked",
            "Sessions whose play or QoE was decided after a batch, by where their events came "
            "from (held: this process wrote them all; read: read back from the session store)",
            ["source"],
            registry=r,
        )
        self.plays = Counter(
            "edge_track_plays", "Royalty plays counted, by track", ["track_id"], registry=r
        )
        self.track_sessions = Counter(
            "edge_track_sessions_ended", "Sessions that ended, by track", ["track_id"], registry=r
        )
        self.track_played = Counter(
            "edge_track_played_seconds",
            "Media seconds played in ended sessions, by track",
            ["track_id"],
            registry=r,
        )
        self.track_stalled = Counter(
            "edge_track_stalled_seconds",
            "Seconds stalled in ended sessions, by track",
            ["track_id"],
            registry=r,
        )
        self.startup = Histogram(
            "edge_qoe_startup_seconds",
            "Startup time of ended sessions, by pathway",
            ["pathway"],
            buckets=STARTUP_BUCKETS,
            registry=r,
        )
        self.rebuffer_ratio = Histogram(
            "edge_qoe_rebuffer_ratio",
            "Stalled over played-plus-stalled time of ended sessions, by pathway",
            ["pathway"],
            buckets=RATIO_BUCKETS,
            registry=r,
        )
        self.average_bitrate = Histogram(
            "edge_qoe_average_bitrate_kbps",
            "Played-time-weighted bitrate of ended sessions, by pathway",
            ["pathway"],
            buckets=BITRATE_BUCKETS,
            registry=r,
        )
        self.switches = Counter(
            "edge_qoe_bitrate_switches",
            "Bitrate switches in ended sessions, by pathway",
            ["pathway"],
            registry=r,
        )
        self.errors = Counter(
            "edge_qoe_errors",
            "Player errors in ended sessions, by pathway and fatality",
            ["pathway", "fatal"],
            registry=r,
        )

    def cmcd_requests_on(self, route: str) -> Any:
        """The CMCD request counter of a route, looked up once (labels() hashes and locks)."""
        child = self._cmcd_requests_by_route.get(route)
        if child is None:
            child = self._cmcd_requests_by_route[route] = self.cmcd_requests.labels(route)
        return child

    def observe_session(self, track_id: str, qoe: SessionQoe) -> None:
        """One ended session's QoE into the per-track and per-pathway series."""
        track = self.track(track_id)
        pathway = self.pathway(qoe.pathway)
        self.track_sessions.labels(track).inc()
        self.track_played.labels(track).inc(qoe.played_s)
        self.track_stalled.labels(track).inc(qoe.stalled_s)
        if qoe.startup_s is not None:
            self.startup.labels(pathway).observe(qoe.startup_s)
        self.rebuffer_ratio.labels(pathway).observe(qoe.rebuffer_ratio)
        if qoe.average_bitrate_kbps is not None:
            self.average_bitrate.labels(pathway).observe(qoe.average_bitrate_kbps)
        self.switches.labels(pathway).inc(qoe.bitrate_switches)
        self.errors.labels(pathway, "false").inc(qoe.errors - qoe.fatal_errors)
        self.errors.labels(pathway, "true").inc(qoe.fatal_errors)
