"""`streamer serve`'s entry: pick who serves segments, then run the edge alone or the tier."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from cdn_edge.delivery_tier.segments_mode import choose_segments
from cdn_edge.delivery_tier.supervisor import TierPlan, run_delivery_tier
from cdn_edge.nginx_tier.process import DEFAULT_NGINX, tier_missing
from cdn_edge.server import AppHook, run
from streamer.settings import Settings

logger = logging.getLogger(__name__)


def serve(
    settings: Settings,
    *,
    cli: Sequence[str],
    workers: int = 1,
    certfile: Path | None = None,
    keyfile: Path | None = None,
    hooks: Sequence[AppHook] = (),
    edge_port: int = 0,
    nginx: str = DEFAULT_NGINX,
) -> int:
    """Serve per settings.segments until SIGTERM or SIGINT; the exit status for the CLI.

    `cli` runs `streamer` with the caller's --config and --data-dir: nginx mode starts the
    edge and the shipper with it. `hooks` reach the edge only in python mode (in nginx mode
    the edge child is a `streamer serve`, which mounts them itself).
    """
    tls = certfile is not None or keyfile is not None
    choice = choose_segments(settings.segments, tier_missing(nginx), tls)
    if choice.mode == "python":
        if choice.fallback_reason:
            logger.warning(
                "segments are served by the Python edge, not the nginx tier: %s",
                choice.fallback_reason,
            )
        return run(settings, workers=workers, certfile=certfile, keyfile=keyfile, hooks=hooks)
    return run_delivery_tier(
        TierPlan(settings, tuple(cli), workers=workers, edge_port=edge_port, nginx=nginx)
    )
