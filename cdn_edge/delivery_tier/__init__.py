"""The delivery tier `streamer serve` runs: nginx on the public port serving segments, the
Python edge behind it on loopback, and the access-log shipper, supervised as one service.
See supervisor.py for the process tree, restarts and the stop order."""

from cdn_edge.delivery_tier.errors import (
    DeliveryTierError,
    EdgeExited,
    EdgeStartFailed,
    NginxRestartsExhausted,
    SegmentsModeUnavailable,
)
from cdn_edge.delivery_tier.segments_mode import SegmentsChoice, choose_segments
from cdn_edge.delivery_tier.serve import serve
from cdn_edge.delivery_tier.supervisor import TierPlan, run_delivery_tier

__all__ = [
    "DeliveryTierError",
    "EdgeExited",
    "EdgeStartFailed",
    "NginxRestartsExhausted",
    "SegmentsChoice",
    "SegmentsModeUnavailable",
    "TierPlan",
    "choose_segments",
    "run_delivery_tier",
    "serve",
]
