"""Ad breaks in a free session's media playlist: HLS interstitials (bis Appendix D).

A break is an EXT-X-DATERANGE of CLASS "com.apple.hls.interstitial" whose X-ASSET-LIST names
the session's asset list for that break relatively, "../ads/breaks/{n}.json": the body stays
the same for every free session (it carries no token and no decision), and the edge decides
the ad only when the player asks for the list (cdn_edge.handlers.ads), where an empty list
skips the break. Break 0 is the pre-roll (CUE="PRE"); then one break at the first segment
boundary at or after every `slot_s` seconds of the track. Breaks sit on segment boundaries,
so the primary resumes where it paused (X-RESUME-OFFSET=0) with no cut segment, and
X-RESTRICT="SKIP,JUMP" keeps a listener from seeking past them.

Date ranges need a program date time (RFC 8216 4.3.2.7): a VOD track has no wall clock, so
its first segment starts at PROGRAM_EPOCH.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from manifests import DateRange, Segment

INTERSTITIAL_CLASS = "com.apple.hls.interstitial"
PROGRAM_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
ADS_DIR = "ads"  # under the session's directory; no rendition is named so (policy/names.py)
BREAKS_DIR = "breaks"


def asset_list_uri(break_index: int) -> str:
    """The break's asset list, relative to a media playlist in the session's directory."""
    return f"../{ADS_DIR}/{BREAKS_DIR}/{break_index}.json"


def _date(offset_s: float) -> str:
    moment = PROGRAM_EPOCH + timedelta(seconds=offset_s)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _interstitial(break_index: int, start_s: float) -> DateRange:
    return DateRange(
        id=f"ad-break-{break_index}",
        class_name=INTERSTITIAL_CLASS,
        start_date=_date(start_s),
        cue="PRE" if break_index == 0 else None,
        client_attributes=(
            ("X-ASSET-LIST", asset_list_uri(break_index)),
            ("X-RESUME-OFFSET", 0.0),
            ("X-RESTRICT", "SKIP,JUMP"),
        ),
    )


def break_starts(durations: tuple[float, ...], slot_s: int) -> tuple[float, ...]:
    """Where breaks go, in seconds of the track: 0, then the first segment boundary at or
    after each multiple of `slot_s` (never at the very end)."""
    starts = [0.0]
    position = 0.0
    next_slot = float(slot_s)
    for duration in durations[:-1]:
        position += duration
        if position >= next_slot:
            starts.append(position)
            next_slot = (position // slot_s + 1) * slot_s
    return tuple(starts)


def with_breaks(segments: tuple[Segment, ...], slot_s: int) -> tuple[Segment, ...]:
    """`segments` with a program date time on the first and the interstitials of each break."""
    starts = break_starts(tuple(s.duration for s in segments), slot_s)
    by_start = {start: index for index, start in enumerate(starts)}
    out = []
    position = 0.0
    for number, segment in enumerate(segments):
        index = by_start.get(position)
        ranges = (_interstitial(index, position),) if index is not None else ()
        pdt = _date(0.0) if number == 0 else None
        out.append(replace(segment, program_date_time=pdt, date_ranges=ranges))
        position += segment.duration
    return tuple(out)
