"""Audio ads for free sessions: campaigns, the decision at a break, the ad store port.

The creatives themselves are published by ingest (`streamer ingest --kind ad`) as
`streamer.ads.creative` records; the edge decides and stitches (cdn_edge.ads).
"""

from streamer.ads.campaigns import Campaign, campaign_from_doc
from streamer.ads.decision import Decision, Listener, ListenerDay, decide
from streamer.ads.errors import (
    AdError,
    AdNotFound,
    CampaignNotFound,
    InvalidAdEvent,
    InvalidCampaign,
)
from streamer.ads.port import AD_EVENTS, AdDecisionRecord, AdEvent, AdStore

__all__ = [
    "AD_EVENTS",
    "AdDecisionRecord",
    "AdError",
    "AdEvent",
    "AdNotFound",
    "AdStore",
    "Campaign",
    "CampaignNotFound",
    "Decision",
    "InvalidAdEvent",
    "InvalidCampaign",
    "Listener",
    "ListenerDay",
    "campaign_from_doc",
    "decide",
]
