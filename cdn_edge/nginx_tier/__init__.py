"""The nginx segment tier: nginx serves /v1/s/{token}/{rendition}/{file} after a Lua token
check, and proxies everything else to the Python edge. See config.py for the request paths,
access_log_format.py for the log schema, process.py for the supervised process."""

from cdn_edge.nginx_tier.access_log_format import FIELD_NAMES, LOG_FORMAT_NAME
from cdn_edge.nginx_tier.config import NginxTierConfig, S3Origin, render_config
from cdn_edge.nginx_tier.errors import (
    NginxConfigRejected,
    NginxExited,
    NginxNotInstalled,
    NginxStartTimeout,
    NginxTierError,
    TierConfigInvalid,
)
from cdn_edge.nginx_tier.from_settings import start_nginx_tier_for_settings, tier_config
from cdn_edge.nginx_tier.process import NginxTier, start_nginx_tier, tier_missing
from cdn_edge.nginx_tier.segment_access import SegmentDecision, decide_segment

__all__ = [
    "FIELD_NAMES",
    "LOG_FORMAT_NAME",
    "NginxConfigRejected",
    "NginxExited",
    "NginxNotInstalled",
    "NginxStartTimeout",
    "NginxTier",
    "NginxTierConfig",
    "NginxTierError",
    "S3Origin",
    "SegmentDecision",
    "TierConfigInvalid",
    "decide_segment",
    "render_config",
    "start_nginx_tier",
    "start_nginx_tier_for_settings",
    "tier_config",
    "tier_missing",
]
