"""Where each media segment sits in its track, read from the published track records.

A delivery records the segment's start and duration (the play policy adds up the media time
delivered); the access log names only the object, so the shipper reads the version's record
through the object store once and keeps its timeline, as the edge's capture does.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

from cdn_edge.errors import MalformedName
from cdn_edge.logship.line_telemetry import Timing
from cdn_edge.policy.names import check_name
from streamer.catalog import decode_track_record, segment_timeline, version_record_key
from streamer.errors import CatalogError, ObjectNotFound
from streamer.objects.port import ObjectReader

logger = logging.getLogger(__name__)

TIMELINES_KEPT = 1024  # track versions kept, as the edge keeps them
# A version the store does not have is asked for again after this: it may be published late
# (nginx cannot serve it before, but a log may be replayed into a fresh store).
MISSING_TTL_S = 60.0


class TrackTimelines:
    """Timelines by (track, version), read through the object store and kept (LRU)."""

    def __init__(
        self,
        reader: ObjectReader,
        clock: Callable[[], float] = time.monotonic,
        kept: int = TIMELINES_KEPT,
    ) -> None:
        self._reader = reader
        self._clock = clock
        self._kept = kept
        self._timelines: OrderedDict[tuple[str, str], dict[str, Timing]] = OrderedDict()
        self._missing: dict[tuple[str, str], float] = {}  # -> when to ask again

    def timing(self, track_id: str, version: str, key: str) -> Timing | None:
        """The segment's timing, None if the version or segment is unknown.

        Raises StorageError when the store cannot answer (the caller retries; nothing is
        skipped because of an outage).
        """
        version_key = (track_id, version)
        timeline = self._timelines.get(version_key)
        if timeline is None:
            timeline = self._load(version_key)
            if timeline is None:
                return None
        else:
            self._timelines.move_to_end(version_key)
        return timeline.get(key)

    def _load(self, version_key: tuple[str, str]) -> dict[str, Timing] | None:
        now = self._clock()
        if self._missing.get(version_key, 0.0) > now:
            return None
        track_id, version = version_key
        try:
            check_name("track id", track_id)
            check_name("version", version)
            record = decode_track_record(self._reader.get(version_record_key(track_id, version)))
        except (MalformedName, ObjectNotFound, CatalogError) as exc:
            if version_key not in self._missing:
                logger.warning("no timeline for track %s version %s: %s", track_id, version, exc)
            self._missing[version_key] = now + MISSING_TTL_S
            if len(self._missing) > self._kept:
                self._missing.pop(next(iter(self._missing)))
            return None
        self._missing.pop(version_key, None)
        timeline = self._timelines[version_key] = segment_timeline(record)
        while len(self._timelines) > self._kept:
            self._timelines.popitem(last=False)
        return timeline
