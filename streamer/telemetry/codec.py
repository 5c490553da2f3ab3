"""Telemetry items as bytes, for keeping them outside the session store (the edge's spool).

A payload is zlib-compressed JSON: {"items": [[kind, {field: value, ...}], ...]} with kind
one of "event", "cmcd", "delivery" and the fields of the model's dataclass. Decoding validates
through the models' own constructors. (Play claims are never spooled: the edge decides them
after a write, from what the store holds.)
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from streamer.telemetry.model import (
    CmcdSample,
    PlayerEvent,
    SegmentDelivery,
    TelemetryItem,
)

COMPRESSION_LEVEL = 1  # fast: payloads are kept for hours at most, not archived
_KINDS: dict[str, type[Any]] = {
    "event": PlayerEvent,
    "cmcd": CmcdSample,
    "delivery": SegmentDelivery,
}
_KIND_OF = {cls: kind for kind, cls in _KINDS.items()}


class TelemetryDecodeError(ValueError):
    """Bytes that are not an encoded telemetry batch (or not one this version reads)."""


def encode_items(items: Sequence[TelemetryItem]) -> bytes:
    """The bytes of `items`."""
    docs = []
    for item in items:
        kind = _KIND_OF.get(type(item))
        if kind is None:
            raise TypeError(f"a {type(item).__name__} is not a telemetry item")
        values = {f.name: getattr(item, f.name) for f in fields(item)}
        if isinstance(item, CmcdSample):
            values["keys"] = dict(item.keys)
        docs.append([kind, values])
    text = json.dumps({"items": docs}, separators=(",", ":"), ensure_ascii=False)
    return zlib.compress(text.encode(), COMPRESSION_LEVEL)


def decode_items(payload: bytes) -> tuple[TelemetryItem, ...]:
    """The items `encode_items` gave `payload`; TelemetryDecodeError if it is not such."""
    try:
        doc = json.loads(zlib.decompress(payload))
        items = []
        for kind, values in doc["items"]:
            items.append(_KINDS[kind](**values))
        return tuple(items)
    except (zlib.error, ValueError, TypeError, KeyError) as exc:
        raise TelemetryDecodeError(f"not a telemetry batch: {exc!r}") from exc
