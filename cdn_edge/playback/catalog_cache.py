"""Published track records, read from the object store once and kept decoded.

A version's record never changes once published, so it is cached until evicted (LRU by count).
The "current" pointer of a track changes on re-ingest, so it is cached for a few seconds only
(and kept past that while the store is unreachable, so new sessions of a known track play on):
a new version reaches new sessions within `CURRENT_TTL_S`, while sessions already running stay
on the version their tokens name.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cdn_edge.errors import TrackNotFound, Unavailable
from cdn_edge.single_flight import SingleFlight
from streamer.catalog import (
    RenditionRecord,
    Tier,
    TrackRecord,
    WrappedKey,
    current_record_key,
    decode_track_record,
    version_prefix,
    version_record_key,
)
from streamer.errors import CatalogError, ObjectNotFound, StorageError

logger = logging.getLogger(__name__)

CURRENT_TTL_S = 5.0  # how stale "which version is current" may be
MAX_VERSIONS = 1024  # decoded records kept
# Decoded records are bounded by their objects too: one costs ~810 bytes in memory (measured,
# PublishedObject with its SegmentRecord), a 3.5-minute track of the default ladder has ~250
# and a 4-hour mix ~17,000, so 1,024 mixes would hold 14 GB. 250,000 objects (~200 MB) keep
# about 1,000 ordinary tracks or 15 four-hour mixes.
MAX_OBJECTS = 250_000
MAX_CURRENT = 100_000  # current pointers (and known-missing tracks) kept

ReadObject = Callable[[str], Awaitable[bytes]]


def content_type_for(name: str) -> str:
    """Media type of a published object, from its extension."""
    if name.endswith((".m4s", ".mp4", ".m4a")):
        return "audio/mp4"  # RFC 4337 / 6381; fMP4 init and media segments
    if name.endswith(".ts"):
        return "video/mp2t"
    if name.endswith(".aac"):
        return "audio/aac"
    return "application/octet-stream"


@dataclass(frozen=True)
class PublishedObject:
    """A servable object of a version: an init section or a media segment."""

    key: str  # full object store key
    rendition: str
    tier: Tier
    size: int
    sha256: str
    content_type: str


class PublishedTrack:
    """A decoded track record and the lookups the edge needs from it, computed once."""

    __slots__ = ("keys", "objects", "prefix", "record", "renditions")

    def __init__(self, record: TrackRecord) -> None:
        self.record = record
        self.prefix = version_prefix(record.track_id, record.version)
        self.renditions: dict[str, RenditionRecord] = {r.name: r for r in record.renditions}
        self.keys: dict[str, WrappedKey] = {k.key_id: k for k in record.keys}
        objects: dict[str, PublishedObject] = {}
        for r in record.renditions:
            objects[r.init_key] = PublishedObject(
                f"{self.prefix}/{r.init_key}",
                r.name,
                r.tier,
                r.init_size,
                r.init_sha256,
                content_type_for(r.init_key),
            )
            for s in r.segments:
                objects[s.key] = PublishedObject(
                    f"{self.prefix}/{s.key}",
                    r.name,
                    r.tier,
                    s.size,
                    s.sha256,
                    content_type_for(s.key),
                )
        self.objects = objects


@dataclass
class _Current:
    expires: float
    track: PublishedTrack | None  # None: known not to exist


class CatalogCache:
    """Decoded records by (track, version), and each track's current version."""

    def __init__(
        self,
        read_object: ReadObject,
        clock: Callable[[], float],
        max_objects: int = MAX_OBJECTS,
    ) -> None:
        self._read = read_object
        self._clock = clock
        self._max_objects = max_objects
        self._objects = 0  # of every version in _versions
        # Every PublishedTrack the cache holds is here: a current pointer whose version is
        # evicted goes with it, so the bound above covers the pointers too.
        self._versions: OrderedDict[tuple[str, str], PublishedTrack] = OrderedDict()
        self._current: OrderedDict[str, _Current] = OrderedDict()
        self._flights: SingleFlight[str, PublishedTrack | None] = SingleFlight()

    def cached_version(self, track_id: str, version: str) -> PublishedTrack | None:
        """The decoded version if in memory; never loads."""
        track = self._versions.get((track_id, version))
        if track is not None:
            self._versions.move_to_end((track_id, version))
        return track

    async def version(self, track_id: str, version: str) -> PublishedTrack:
        """A published version. Raises TrackNotFound, CatalogError, StorageError."""
        track = self.cached_version(track_id, version)
        if track is None:
            track = await self._load(version_record_key(track_id, version))
            if track is None:
                raise TrackNotFound(track_id, version)
            _check_names(track, version_record_key(track_id, version), track_id, version)
        return track

    async def current(self, track_id: str) -> PublishedTrack:
        """The current version of a track. Raises TrackNotFound, CatalogError, StorageError."""
        now = self._clock()
        entry = self._current.get(track_id)
        if entry is None or entry.expires <= now:
            try:
                track = await self._load(current_record_key(track_id))
            except (StorageError, Unavailable):  # down, or slower than the edge waits
                if entry is None or entry.track is None:
                    raise
                # The store is down: the version we knew stays current until it answers
                # (sessions then play from the segment cache), asked again after the TTL.
                logger.warning(
                    "object store unreachable; %s stays on version %s",
                    track_id,
                    entry.track.record.version,
                )
                track = entry.track
            if track is not None:
                _check_names(track, current_record_key(track_id), track_id, None)
            entry = _Current(self._clock() + CURRENT_TTL_S, track)  # after a slow load, too
            self._current[track_id] = entry
            if len(self._current) > MAX_CURRENT:
                self._current.popitem(last=False)
        self._current.move_to_end(track_id)
        if entry.track is None:
            raise TrackNotFound(track_id)
        return entry.track

    async def close(self) -> None:
        """Cancel loads still running, so no task outlives the application."""
        await self._flights.close()

    async def _load(self, key: str) -> PublishedTrack | None:
        return await self._flights.run(key, lambda: self._fetch(key))

    async def _fetch(self, key: str) -> PublishedTrack | None:
        try:
            data = await self._read(key)
        except ObjectNotFound:
            return None
        track = PublishedTrack(decode_track_record(data))
        versions_key = (track.record.track_id, track.record.version)
        # Keep one object per version, so a record read via "current" and via its version
        # shares its (possibly precomputed) state.
        known = self._versions.get(versions_key)
        if known is not None:
            self._versions.move_to_end(versions_key)
            return known
        self._versions[versions_key] = track
        self._objects += len(track.objects)
        while len(self._versions) > 1 and (
            len(self._versions) > MAX_VERSIONS or self._objects > self._max_objects
        ):
            self._evict_oldest()
        return track

    def _evict_oldest(self) -> None:
        (track_id, _), old = self._versions.popitem(last=False)
        self._objects -= len(old.objects)
        current = self._current.get(track_id)
        if current is not None and current.track is old:
            del self._current[track_id]  # asked again on its next request

    @property
    def objects_held(self) -> int:
        """Objects of the decoded versions in memory (the bound is `max_objects`)."""
        return self._objects


def _check_names(track: PublishedTrack, key: str, track_id: str, version: str | None) -> None:
    record = track.record
    if record.track_id != track_id or (version is not None and record.version != version):
        raise CatalogError(
            f"{key} holds the record of track {record.track_id!r} version "
            f"{record.version!r}; expected track {track_id!r}"
            + ("" if version is None else f" version {version!r}")
        )
