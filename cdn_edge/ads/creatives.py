"""Published ad creatives, read from the object store and kept briefly in memory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from streamer.ads.creative import AdCreative, ad_record_key, current_ad_key, decode_ad_creative
from streamer.ads.errors import AdNotFound
from streamer.errors import ObjectNotFound

CURRENT_TTL_S = 30.0  # a re-ingested creative reaches breaks within this
MAX_CREATIVES = 1024

ReadObject = Callable[[str], Awaitable[bytes]]


@dataclass
class _Entry:
    creative: AdCreative
    read_at: float


class CreativeCache:
    def __init__(self, read_object: ReadObject, clock: Callable[[], float]) -> None:
        self._read = read_object
        self._clock = clock
        self._current: dict[str, _Entry] = {}
        self._versions: dict[tuple[str, str], AdCreative] = {}

    async def current(self, ad_id: str) -> AdCreative:
        """The visible version of `ad_id`; AdNotFound when none is published."""
        now = self._clock()
        entry = self._current.get(ad_id)
        if entry is not None and now - entry.read_at < CURRENT_TTL_S:
            return entry.creative
        creative = await self._load(current_ad_key(ad_id), ad_id)
        if len(self._current) >= MAX_CREATIVES:
            self._current.clear()
        self._current[ad_id] = _Entry(creative, now)
        self._versions[(ad_id, creative.version)] = creative
        return creative

    async def version(self, ad_id: str, version: str) -> AdCreative:
        """One published version (immutable, so cached for good)."""
        found = self._versions.get((ad_id, version))
        if found is None:
            found = await self._load(ad_record_key(ad_id, version), ad_id)
            if len(self._versions) >= MAX_CREATIVES:
                self._versions.clear()
            self._versions[(ad_id, version)] = found
        return found

    async def _load(self, key: str, ad_id: str) -> AdCreative:
        try:
            return decode_ad_creative(await self._read(key))
        except ObjectNotFound as exc:
            raise AdNotFound(ad_id) from exc
