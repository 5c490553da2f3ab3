"""Who serves segments under `streamer serve`: nginx in front of the edge, or the edge alone.

Pure: what is installed and whether TLS was asked for are passed in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cdn_edge.delivery_tier.errors import SegmentsModeUnavailable

SegmentsMode = Literal["nginx", "python"]

# The tier's config (cdn_edge/nginx_tier/config.py) listens on plain HTTP only.
_NO_TLS = "the nginx tier does not terminate TLS (--certfile/--keyfile)"


@dataclass(frozen=True)
class SegmentsChoice:
    """The mode to run, and, when `auto` fell back to Python, why (for one log line)."""

    mode: SegmentsMode
    fallback_reason: str = ""


def choose_segments(requested: str, tier_missing: str | None, tls: bool) -> SegmentsChoice:
    """The mode for `requested` ("auto" | "nginx" | "python"); `tier_missing` says why nginx
    cannot run here (None if it can). Raises SegmentsModeUnavailable for an impossible
    explicit "nginx"."""
    if requested == "python":
        return SegmentsChoice("python")
    if requested == "nginx":
        if tls:
            raise SegmentsModeUnavailable(
                f"--segments nginx: {_NO_TLS}; terminate TLS in front of it, or serve with "
                "--segments python"
            )
        if tier_missing is not None:
            raise SegmentsModeUnavailable(
                f"--segments nginx: {tier_missing}; or serve with --segments python"
            )
        return SegmentsChoice("nginx")
    if requested != "auto":
        raise SegmentsModeUnavailable(f"--segments is {requested!r}; use auto, nginx or python")
    if tls:
        return SegmentsChoice("python", _NO_TLS)
    if tier_missing is not None:
        return SegmentsChoice("python", tier_missing)
    return SegmentsChoice("nginx")
