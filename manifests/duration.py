"""How EXTINF durations are written and rounded (RFC 8216 4.3.2.1, 4.3.3.1)."""

from __future__ import annotations

import math

# Microseconds: finer than any audio frame, and what ffmpeg's hls muxer writes.
DURATION_DECIMALS = 6


def format_duration(seconds: float) -> str:
    """EXTINF duration text: up to six decimals, trailing zeros stripped ("6.016", "6")."""
    text = f"{seconds:.{DURATION_DECIMALS}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def rounded_duration(seconds: float) -> int:
    """The duration as written, rounded half up to whole seconds, as 4.3.3.1 compares it."""
    # Round to the written precision first so the check sees what a player reads.
    return math.floor(round(seconds, DURATION_DECIMALS) + 0.5)
