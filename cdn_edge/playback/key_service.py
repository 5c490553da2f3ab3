"""Content key delivery: entitlement, key budgets (`cdn_edge.policy.key_budget`), unwrap, and a
short-lived memory cache.

Content keys exist in the clear only here, in memory, for `KEY_CACHE_TTL_S` at most; they are
never logged, never written, never put in an error message.
"""

from __future__ import annotations

import base64
import binascii
from collections import OrderedDict
from collections.abc import Callable

from cdn_edge.errors import NotEntitled, NotFound, RateLimited
from cdn_edge.playback.catalog_cache import PublishedTrack
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.policy.key_budget import (
    LISTENER_BUDGET,
    SESSION_MARGIN,
    KeyBudget,
    session_key_budget,
)
from cdn_edge.policy.negotiation import TIER_RANK
from cdn_edge.policy.rate_limit import TokenBuckets, retry_after_header
from drm import KeyRing, unwrap_key
from streamer.catalog import WrappedKey
from streamer.errors import CatalogError

KEY_CACHE_TTL_S = 60.0
KEY_CACHE_ENTRIES = 10_000
BUDGETS_KEPT = 4096  # (track version, offered variants) whose session budget is kept


def key_buckets(clock: Callable[[], float]) -> TokenBuckets:
    """Per-session buckets; each session's is sized by `session_key_budget`."""
    return TokenBuckets(SESSION_MARGIN, 1.0, clock)


def listener_key_buckets(clock: Callable[[], float]) -> TokenBuckets:
    return TokenBuckets(LISTENER_BUDGET.capacity, LISTENER_BUDGET.refill_per_s, clock)


def spend_key(
    sessions: TokenBuckets,
    listeners: TokenBuckets,
    session_id: str,
    user_id: str,
    budget: KeyBudget,
    listener_budget: KeyBudget = LISTENER_BUDGET,
) -> None:
    """Take one key from the session's budget, then from the listener's (the nginx gate does
    the same in streamer_budget.lua: tests/vectors/key_budgets.json). Raises RateLimited."""
    wait_s = sessions.take(session_id, capacity=budget.capacity, rate_per_s=budget.refill_per_s)
    if wait_s > 0:
        raise RateLimited(
            f"session {session_id} has fetched its {budget.capacity} keys "
            f"(every key of every rendition it was offered, with a margin); "
            f"open a new session to play the track again",
            retry_after_header(wait_s),
        )
    wait_s = listeners.take(
        user_id, capacity=listener_budget.capacity, rate_per_s=listener_budget.refill_per_s
    )
    if wait_s > 0:
        raise RateLimited(
            f"listener {user_id} fetched more than {listener_budget.capacity} keys "
            f"across sessions, more than playback needs; the budget refills at "
            f"{listener_budget.refill_per_s * 3600:.0f} keys an hour",
            retry_after_header(wait_s),
        )


class KeyService:
    """Hands out content keys to sessions entitled to them, within their key budgets."""

    def __init__(
        self,
        keyring: KeyRing,
        clock: Callable[[], float],
        sessions: TokenBuckets,
        listeners: TokenBuckets,
    ) -> None:
        self._keyring = keyring
        self._clock = clock
        self._sessions = sessions
        self._listeners = listeners
        self._budgets: OrderedDict[tuple[str, tuple[str, ...]], KeyBudget] = OrderedDict()
        self._cache: OrderedDict[tuple[str, str, str], tuple[float, bytes]] = OrderedDict()

    def content_key(
        self, track: PublishedTrack, key_id: str, session: SessionClaims
    ) -> tuple[WrappedKey, bytes]:
        """The key record and its 16 bytes. Raises NotFound, NotEntitled, RateLimited."""
        wrapped = track.keys.get(key_id)
        if wrapped is None:
            raise NotFound(f"track {track.record.track_id} has no key {key_id!r}")
        if TIER_RANK[wrapped.tier] > TIER_RANK[session.tier]:
            raise NotEntitled(
                f"key {key_id} opens {wrapped.tier} renditions; the session is {session.tier}"
            )
        self._spend(track, session)
        return wrapped, self._unwrap(track, wrapped)

    def for_gate(
        self, track: PublishedTrack, key_id: str, session: SessionClaims
    ) -> tuple[WrappedKey, bytes | None, KeyBudget]:
        """What the nginx gate keeps of a key (`cdn_edge.playback.gate_keys`): its record, its
        16 bytes (None when the key is above the session's tier) and the session's budget.
        Spends no budget: the gate does. Raises NotFound."""
        wrapped = track.keys.get(key_id)
        if wrapped is None:
            raise NotFound(f"track {track.record.track_id} has no key {key_id!r}")
        budget = self.session_budget(track, session)
        if TIER_RANK[wrapped.tier] > TIER_RANK[session.tier]:
            return wrapped, None, budget
        return wrapped, self._unwrap(track, wrapped), budget

    def session_budget(self, track: PublishedTrack, session: SessionClaims) -> KeyBudget:
        cache_key = (track.prefix, session.variants)
        budget = self._budgets.get(cache_key)
        if budget is None:
            offered = (track.renditions[n] for n in session.variants if n in track.renditions)
            budget = session_key_budget(offered, track.record.duration_s)
            self._budgets[cache_key] = budget
            if len(self._budgets) > BUDGETS_KEPT:
                self._budgets.popitem(last=False)
        return budget

    def _spend(self, track: PublishedTrack, session: SessionClaims) -> None:
        budget = self.session_budget(track, session)
        spend_key(self._sessions, self._listeners, session.session_id, session.user_id, budget)

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
