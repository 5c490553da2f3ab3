"""A published ad creative of fake bytes, and ad stores that fail on purpose."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import date

from streamer.ads.campaigns import Campaign
from streamer.ads.creative import (
    AdCreative,
    ad_prefix,
    ad_record_key,
    current_ad_key,
    encode_ad_creative,
)
from streamer.ads.port import AdDecisionRecord, AdEvent, AdEventName, AdStore
from streamer.catalog import Loudness, RenditionRecord, SegmentRecord
from streamer.errors import StorageError
from streamer.objects.port import IMMUTABLE, ObjectStore
from transcoder.ladder import CODECS_STRING, DEFAULT_LADDER

AD_SEGMENTS = 4  # of 2 s: an 8 s spot, a quartile per segment


def publish_ad(store: ObjectStore, ad_id: str = "spot-1", version: str = "a1") -> AdCreative:
    renditions = []
    prefix = ad_prefix(ad_id, version)
    for spec in (s for s in DEFAULT_LADDER if s.tier == "free"):
        init = f"init {spec.name}".encode()
        store.put(f"{prefix}/{spec.name}/init.mp4", init, "audio/mp4", IMMUTABLE)
        segments = []
        for i in range(AD_SEGMENTS):
            body = f"ad {ad_id} {spec.name} {i}".encode() * 20
            key = f"{spec.name}/seg_{i:05d}.m4s"
            store.put(f"{prefix}/{key}", body, "audio/mp4", IMMUTABLE)
            segments.append(
                SegmentRecord(key, 2.0, len(body), hashlib.sha256(body).hexdigest(), "", "")
            )
        renditions.append(
            RenditionRecord(
                name=spec.name,
                codec=spec.codec,
                codecs=CODECS_STRING[spec.codec],
                bitrate_kbps=spec.bitrate_kbps,
                sample_rate=48_000,
                channels=2,
                tier="free",
                init_key=f"{spec.name}/init.mp4",
                init_size=len(init),
                init_sha256=hashlib.sha256(init).hexdigest(),
                playlist_key="",
                bandwidth=1000,
                average_bandwidth=1000,
                target_duration_s=2,
                segments=tuple(segments),
            )
        )
    creative = AdCreative(
        ad_id=ad_id,
        version=version,
        master_sha256="0" * 64,
        duration_s=2.0 * AD_SEGMENTS,
        loudness=Loudness(-14.1, 3.0, -2.0, 0.0),
        renditions=tuple(renditions),
        created_at="2024-01-01T00:00:00Z",
    )
    encoded = encode_ad_creative(creative)
    store.put(ad_record_key(ad_id, version), encoded, "application/json")
    store.put(current_ad_key(ad_id), encoded, "application/json")
    return creative


class FaultyAdStore:
    """An ad store whose reads or writes fail (StorageError) or hang, as a test says."""

    def __init__(self, inner: AdStore) -> None:
        self.inner = inner
        self.reads_fail = False
        self.writes_fail = False
        self.read_delay_s = 0.0

    def _read(self) -> None:
        if self.read_delay_s:
            time.sleep(self.read_delay_s)
        if self.reads_fail:
            raise StorageError("the ad store is down (test)")

    def _write(self) -> None:
        if self.writes_fail:
            raise StorageError("the ad store is down (test)")

    def put_campaign(self, campaign: Campaign) -> None:
        self.inner.put_campaign(campaign)

    def campaigns(self) -> list[Campaign]:
        self._read()
        return self.inner.campaigns()

    def record_decisions(self, decisions: Sequence[AdDecisionRecord]) -> None:
        self._write()
        self.inner.record_decisions(decisions)

    def decisions_of(self, user_id: str, day: date) -> list[AdDecisionRecord]:
        self._read()
        return self.inner.decisions_of(user_id, day)

    def served_by_campaign(self, campaign_ids: Sequence[str], day: date) -> dict[str, int]:
        self._read()
        return self.inner.served_by_campaign(campaign_ids, day)

    def record_events(self, events: Sequence[AdEvent]) -> None:
        self._write()
        self.inner.record_events(events)

    def event_counts(self, campaign_id: str, day: date) -> dict[AdEventName, int]:
        return self.inner.event_counts(campaign_id, day)

    def close(self) -> None:
        self.inner.close()
