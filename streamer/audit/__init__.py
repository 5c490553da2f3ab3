"""The audit log: append-only, hash-chained entries of key grants, licences, KEK rotations,
ingest submissions and operators' commands, kept in the session store.

`model` (events, entries, actions), `chain` (canonical encoding, linking, verification; pure),
`port` (AuditLog) with `sqlite`, `scylla` and `memory`, `spool` (events kept on local disk
while the store is down), `recorder` (linking, compare-and-set appends, the spool),
`recorders` (opening one from settings), `events` (one builder per action) and `verify`
(walking every stream). The design: docs/adr/0009-audit-log.md.
"""

from streamer.audit.chain import ChainKey, ChainProblem, Damage, StreamReport, verify_stream
from streamer.audit.errors import CorruptEntry, InvalidAuditEvent, StreamConflict
from streamer.audit.events import (
    admin_action,
    ingest_submitted,
    kek_rotated,
    key_granted,
    licence_granted,
    licence_revoked,
    new_event,
)
from streamer.audit.model import AuditAction, AuditEntry, AuditEvent, StreamHead
from streamer.audit.port import AuditLog
from streamer.audit.recorder import AuditRecorder

__all__ = [
    "AuditAction",
    "AuditEntry",
    "AuditEvent",
    "AuditLog",
    "AuditRecorder",
    "ChainKey",
    "ChainProblem",
    "CorruptEntry",
    "Damage",
    "InvalidAuditEvent",
    "StreamConflict",
    "StreamHead",
    "StreamReport",
    "admin_action",
    "ingest_submitted",
    "kek_rotated",
    "key_granted",
    "licence_granted",
    "licence_revoked",
    "new_event",
    "verify_stream",
]
