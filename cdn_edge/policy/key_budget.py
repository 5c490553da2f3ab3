"""How many content keys a session and a listener may fetch: pure policy.

Key URIs are the same for one key everywhere in a session (see
`cdn_edge.playback.playlist_builder`), so a player that caches keys by URI (hls.js, AVPlayer,
ExoPlayer) fetches each key once per session whatever it switches to. The budgets are sized for the
clients that do not share a cache across renditions: ffmpeg, or a download tool, pulling every
rendition of the session, one process each, fetches a key once per rendition that uses it.

- Session budget: the keys of every rendition the session was offered, counted once per
  rendition (a full pull of each), times SESSION_RETRY_FACTOR for retries and seeks, plus
  SESSION_MARGIN. It refills over the track's duration, so a session that plays its track
  again (repeat, a player restart) has the budget again by then.
- Listener budget: across all of a listener's sessions, LISTENER_KEY_BURST keys, refilled at
  LISTENER_KEYS_PER_S. A listener playing in real time needs about one key a minute per tier;
  the refill is several times that. What it stops is scraping: a leaked or scripted account
  opening session after session, track after track, fetching keys far ahead of any playback.

Within one session the budget does not pace keys against playback: an HLS download (ffmpeg
with `-c copy`) legitimately fetches every key of a track in seconds. A session's keys open
one track version at the session's tier, and the listener budget bounds how many sessions'
keys one account gets.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from streamer.catalog import RenditionRecord

SESSION_RETRY_FACTOR = 1.5  # each key fetched again by half the renditions: retries, seeks
SESSION_MARGIN = 20  # a player restarted a few times within one session
MIN_REFILL_S = 60.0  # very short tracks still refill no faster than a minute
# About 6 full pulls of every rendition of a 7-minute track (7 renditions, 8 key periods),
# and far more for a player that caches keys.
LISTENER_KEY_BURST = 400
# 180 keys an hour: real-time playback with hls.js uses 60-120 (one per key period and tier).
LISTENER_KEYS_PER_S = 0.05


@dataclass(frozen=True)
class KeyBudget:
    """A token bucket's size: `capacity` keys, refilled at `refill_per_s`."""

    capacity: int
    refill_per_s: float

    def __post_init__(self) -> None:
        if self.capacity < 1 or self.refill_per_s <= 0:
            raise ValueError(
                f"a key budget needs capacity >= 1 and refill > 0, "
                f"got {self.capacity}, {self.refill_per_s}"
            )


LISTENER_BUDGET = KeyBudget(LISTENER_KEY_BURST, LISTENER_KEYS_PER_S)


def keys_to_pull(renditions: Iterable[RenditionRecord]) -> int:
    """Key fetches for one pull of each rendition by a client without a shared key cache."""
    return sum(len({s.key_id for s in r.segments}) for r in renditions)


def session_key_budget(renditions: Iterable[RenditionRecord], duration_s: float) -> KeyBudget:
    """The budget of a session offered `renditions` of a track lasting `duration_s`."""
    capacity = math.ceil(keys_to_pull(renditions) * SESSION_RETRY_FACTOR) + SESSION_MARGIN
    return KeyBudget(capacity, capacity / max(duration_s, MIN_REFILL_S))
