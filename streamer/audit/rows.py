"""An entry as a flat row, the same for both stores: the columns and the two codecs."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from streamer.audit.errors import CorruptEntry, InvalidAuditEvent
from streamer.audit.model import AuditAction, AuditEntry, AuditEvent, details_json

COLUMNS = (
    "stream",
    "seq",
    "event_id",
    "at_us",
    "action",
    "actor",
    "subject",
    "details",
    "key_id",
    "prev_hash",
    "hash",
)


def to_row(entry: AuditEntry) -> tuple[Any, ...]:
    event = entry.event
    return (
        entry.stream,
        entry.seq,
        event.event_id,
        event.at_us,
        event.action.value,
        event.actor,
        event.subject,
        details_json(event.details),
        entry.key_id,
        entry.prev_hash,
        entry.hash,
    )


def from_row(row: Mapping[str, Any]) -> AuditEntry:
    """The entry of a row; CorruptEntry if a value was changed to something no entry holds."""
    try:
        details = json.loads(row["details"])
        event = AuditEvent(
            event_id=row["event_id"],
            at_us=row["at_us"],
            action=AuditAction(row["action"]),
            actor=row["actor"],
            subject=row["subject"],
            details=details,
        )
        return AuditEntry(
            row["stream"], row["seq"], event, row["key_id"], row["prev_hash"], row["hash"]
        )
    except (InvalidAuditEvent, ValueError, TypeError) as exc:
        raise CorruptEntry(str(row.get("stream")), int(row.get("seq") or 0), str(exc)) from exc
