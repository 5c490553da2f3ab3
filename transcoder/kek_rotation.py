"""`streamer keys rotate-kek`: make a new key-encryption key active and re-wrap every content key.

The new KEK is saved to the ring (beside the old ones) before any record changes, so at every
moment each record's `kek_id` names a KEK the ring holds. Records are rewritten one at a time
with an atomic put; a rotation interrupted halfway can simply be run again.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

from drm import KeyRing, new_kek, rewrap_key
from streamer.catalog import (
    TrackRecord,
    current_record_key,
    decode_track_record,
    encode_track_record,
)
from streamer.errors import ObjectNotFound
from streamer.objects.port import IMMUTABLE, ObjectStore
from transcoder.publish import CURRENT_CACHE_CONTROL, RECORD_CONTENT_TYPE

RECORD_SUFFIX = "/track.json"


@dataclass(frozen=True)
class RotationReport:
    new_kek_id: str
    records: int
    keys: int


def rewrap_record(record: TrackRecord, ring: KeyRing) -> TrackRecord:
    """The same record with every content key wrapped under the ring's active KEK."""
    target = ring.active
    keys = tuple(
        key
        if key.kek_id == target.kek_id
        else dataclasses.replace(
            key,
            kek_id=target.kek_id,
            wrapped_b64=base64.b64encode(
                rewrap_key(
                    base64.b64decode(key.wrapped_b64), key.key_id, ring.get(key.kek_id), target
                )
            ).decode(),
        )
        for key in record.keys
    )
    return dataclasses.replace(record, keys=keys)


def rotate_kek(
    store: ObjectStore, ring: KeyRing, save_ring: Callable[[KeyRing], None]
) -> RotationReport:
    """Activate a fresh KEK, persist the ring, then re-wrap every stored track record."""
    ring = ring.with_new_active(new_kek())
    save_ring(ring)
    records = keys = 0
    for key in store.list("tracks/"):
        if not key.endswith(RECORD_SUFFIX):
            continue
        record = decode_track_record(store.get(key))
        rewrapped = rewrap_record(record, ring)
        store.put(key, encode_track_record(rewrapped), RECORD_CONTENT_TYPE, IMMUTABLE)
        records += 1
        keys += sum(1 for old, new in zip(record.keys, rewrapped.keys, strict=True) if old != new)
        _refresh_current(store, rewrapped)
    return RotationReport(ring.active_id, records, keys)


def _refresh_current(store: ObjectStore, record: TrackRecord) -> None:
    """Rewrite `current.json` when it points at the version just re-wrapped."""
    pointer = current_record_key(record.track_id)
    try:
        current = decode_track_record(store.get(pointer))
    except ObjectNotFound:
        return
    if current.version == record.version:
        store.put(pointer, encode_track_record(record), RECORD_CONTENT_TYPE, CURRENT_CACHE_CONTROL)
