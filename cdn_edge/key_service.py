"""Content key delivery: entitlement, rate limit, unwrap, and a short-lived memory cache.

Content keys exist in the clear only here, in memory, for `KEY_CACHE_TTL_S` at most; they are
never logged, never written, never put in an error message.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Callable

from cdn_edge.catalog_cache import PublishedTrack
from cdn_edge.errors import NotEntitled, NotFound, RateLimited
from cdn_edge.negotiation import TIER_RANK
from cdn_edge.rate_limit import TokenBuckets, retry_after_header
from drm import KeyRing, unwrap_key
from streamer.catalog import Tier, WrappedKey
from streamer.errors import CatalogError

KEY_CACHE_TTL_S = 60.0
KEY_CACHE_ENTRIES = 10_000
# A player needs one key per rotation period (about a minute of audio) plus a few on seeks
# and variant switches; a burst of 20 then one every 2 s is generous for that and stingy for
# anyone harvesting keys with a leaked session.
KEY_BURST = 20
KEY_RATE_PER_S = 0.5


def key_buckets(clock: Callable[[], float]) -> TokenBuckets:
    return TokenBuckets(KEY_BURST, KEY_RATE_PER_S, clock)


class KeyService:
    """Hands out content keys to sessions entitled to them."""

    def __init__(self, keyring: KeyRing, clock: Callable[[], float], limiter: TokenBuckets):
        self._keyring = keyring
        self._clock = clock
        self._limiter = limiter
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, bytes]] = OrderedDict()

    def content_key(
        self, track: PublishedTrack, key_id: str, tier: Tier, session_id: str
    ) -> tuple[WrappedKey, bytes]:
        """The key record and its 16 bytes. Raises RateLimited, NotFound, NotEntitled."""
        wait_s = self._limiter.take(session_id)
        if wait_s > 0:
            raise RateLimited(
                f"session {session_id} asked for keys faster than {KEY_RATE_PER_S}/s "
                f"after a burst of {KEY_BURST}",
                retry_after_header(wait_s),
            )
        wrapped = track.keys.get(key_id)
        if wrapped is None:
            raise NotFound(f"track {track.record.track_id} has no key {key_id!r}")
        if TIER_RANK[wrapped.tier] > TIER_RANK[tier]:
            raise NotEntitled(
                f"key {key_id} opens {wrapped.tier} renditions; the session is {tier}"
            )
        return wrapped, self._unwrap(track, wrapped)

    def _unwrap(self, track: PublishedTrack, wrapped: WrappedKey) -> bytes:
        now = self._clock()
        cache_key = (track.record.track_id, track.record.version, wrapped.key_id)
        cached = self._cache.get(cache_key)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            blob = base64.b64decode(wrapped.wrapped_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CatalogError(f"wrapped key {wrapped.key_id} is not base64") from exc
        # UnknownKekError and KeyUnwrapError are operator faults (a lost or wrong KEK): 500.
        key = unwrap_key(blob, wrapped.key_id, self._keyring.get(wrapped.kek_id))
        self._cache[cache_key] = (now + KEY_CACHE_TTL_S, key)
        self._cache.move_to_end(cache_key)
        if len(self._cache) > KEY_CACHE_ENTRIES:
            self._cache.popitem(last=False)
        return key
