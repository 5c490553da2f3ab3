"""The ad series of the edge's registry (cdn_edge.metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Decisions read the store once or twice: milliseconds; the budget is 50 ms at p99.
DECISION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5)


class AdMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.breaks = Counter(
            "edge_ad_breaks",
            "Ad breaks asked for, by outcome: served, not_due, no_campaign, premium, "
            "no_creative, or skipped_timeout / skipped_error when the decision failed and the "
            "session played on without the break",
            ["outcome"],
            registry=registry,
        )
        self.decision_seconds = Histogram(
            "edge_ad_decision_seconds",
            "Time to decide an ad break (the asset list's work)",
            buckets=DECISION_BUCKETS,
            registry=registry,
        )
        self.events = Counter(
            "edge_ad_events",
            "Ad impressions and quartiles heard, by event and source (player, delivery)",
            ["event", "source"],
            registry=registry,
        )
        self.spooled = Counter(
            "edge_ad_records_spooled",
            "Ad decisions and events written to the disk spool because the ad store failed",
            registry=registry,
        )
        self.replayed = Counter(
            "edge_ad_records_replayed",
            "Spooled ad decisions and events written to the ad store once it answered again",
            registry=registry,
        )
