"""Play claims for the sessions whose segment deliveries arrive through the access log.

The edge decides a play when a session's events arrive (cdn_edge.telemetry.sink) and reads
its deliveries from the store; with segments served by nginx those deliveries reach the
store later, through the shipper, so the shipper decides too when they arrive: whichever
evidence lands second finds the other in the store. The claims go to the play ledger once the
deliveries are written. A session is counted once however often it is claimed (the ledger
keeps one play per session), so a replayed batch claims again harmlessly and counts nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from streamer.plays import decide_play, events_show_play
from streamer.sessions.port import TelemetryStore
from streamer.telemetry.model import PlayClaim, SegmentDelivery

REMEMBERED_SESSIONS = 100_000  # sessions known to have their play, not read back again (~10 MB)


class DeliveryPlays:
    """Decides the plays that a batch of deliveries completes, reading what the store holds."""

    def __init__(self, store: TelemetryStore, remembered: int = REMEMBERED_SESSIONS) -> None:
        self._store = store
        self._played: OrderedDict[str, None] = OrderedDict()
        self._remembered = remembered
        self.sessions_read = 0  # sessions whose events were read back, for the stats

    def claims(self, deliveries: Sequence[SegmentDelivery]) -> tuple[PlayClaim, ...]:
        """The plays shown by the stored events and the stored and new deliveries.

        Raises StorageError (the caller retries the batch)."""
        tracks: dict[str, str] = {}
        for delivery in deliveries:
            if delivery.session_id not in self._played:
                tracks.setdefault(delivery.session_id, delivery.track_id)
        if not tracks:
            return ()
        # Events first, in one batch read: only sessions whose events reach the threshold
        # need their deliveries read (as the edge's sink does).
        self.sessions_read += len(tracks)
        events = self._store.events_of(list(tracks))
        candidates = [s for s, track in tracks.items() if events_show_play(track, events[s])]
        if not candidates:
            return ()
        stored = self._store.deliveries_of(candidates)
        new: dict[str, list[SegmentDelivery]] = {}
        for delivery in deliveries:
            new.setdefault(delivery.session_id, []).append(delivery)
        claims = []
        for session_id in candidates:
            evidence = (*stored[session_id], *new[session_id])
            claim = decide_play(session_id, tracks[session_id], events[session_id], evidence)
            if claim is not None:
                claims.append(claim)
        return tuple(claims)

    def written(self, claims: Sequence[PlayClaim]) -> None:
        """Remember sessions whose claim the store now holds (counted now or before)."""
        for claim in claims:
            self._played[claim.session_id] = None
            self._played.move_to_end(claim.session_id)
        while len(self._played) > self._remembered:
            self._played.popitem(last=False)
