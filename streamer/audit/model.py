"""The audit log's model: what happened (`AuditEvent`) and where it sits in a chain (`AuditEntry`).

An event is what a caller records: the action, who did it, what it was done to, and a small
JSON object of details. The recorder links events into entries of a stream: each entry names
its stream and sequence number, the hash of the entry before it, and its own hash
(streamer.audit.chain). A `StreamHead` is the checkpoint of a stream's last entry, kept beside
the entries, so that a removed tail is seen.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from streamer.audit.errors import InvalidAuditEvent

MAX_DETAILS_BYTES = 8 * 1024  # a key grant with 40 key ids is ~2 KB; more is a misuse
MAX_NAME_CHARS = 256  # actor, subject, stream
EVENT_ID_CHARS = 32  # 128 random bits in hex
GENESIS_HASH = "0" * 64  # the `prev_hash` of a stream's first entry
_STREAM = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
_EVENT_ID = re.compile(r"[0-9a-f]{32}")
_HASH = re.compile(r"[0-9a-f]{64}")


class AuditAction(StrEnum):
    """What is audited; the value is stored, so a name never changes once shipped."""

    KEY_GRANTED = "key.granted"  # a playback session was entitled to content keys
    LICENCE_GRANTED = "licence.granted"  # an offline licence was issued
    LICENCE_REVOKED = "licence.revoked"  # an offline licence was withdrawn
    KEK_ROTATED = "kek.rotated"  # a new key-encryption key, content keys re-wrapped
    INGEST_SUBMITTED = "ingest.submitted"  # a master was queued for ingest
    PLAYS_RECOUNTED = "admin.plays_recount"
    UPLOADS_CLEANED = "admin.objects_cleanup_uploads"
    SCHEMA_MIGRATED = "admin.db_migrate"
    TOKEN_MINTED = "admin.token_minted"  # a development token was printed by `streamer token`


@dataclass(frozen=True)
class AuditEvent:
    """One audited action, as its caller saw it; `at_us` is microseconds since the epoch."""

    event_id: str  # random: a retried append finds the events it already wrote by this id
    at_us: int
    action: AuditAction
    actor: str  # who: a listener, an ingest token's subject, "cli:<user>@<host>"
    subject: str  # what: a session, a job, a KEK id, a keyspace
    details: dict[str, Any] = field(default_factory=dict)  # JSON; no secrets, no key bytes

    def __post_init__(self) -> None:
        if not _EVENT_ID.fullmatch(self.event_id):
            raise InvalidAuditEvent(
                f"event_id must be {EVENT_ID_CHARS} lowercase hex digits, got {self.event_id!r}"
            )
        if not 0 <= self.at_us < 2**63:
            raise InvalidAuditEvent(f"at_us must be microseconds since 1970, got {self.at_us}")
        if not isinstance(self.action, AuditAction):
            raise InvalidAuditEvent(f"action must be an AuditAction, got {self.action!r}")
        for name in ("actor", "subject"):
            value = getattr(self, name)
            if not isinstance(value, str) or not 0 < len(value) <= MAX_NAME_CHARS:
                raise InvalidAuditEvent(
                    f"{name} must be 1 to {MAX_NAME_CHARS} characters, got {value!r:.80}"
                )
        size = len(details_json(self.details).encode())
        if size > MAX_DETAILS_BYTES:
            raise InvalidAuditEvent(
                f"details of a {self.action} event take {size} bytes; at most {MAX_DETAILS_BYTES}"
            )


@dataclass(frozen=True)
class AuditEntry:
    """An event at its place in a stream: `seq` counts from 1; `hash` covers every field."""

    stream: str
    seq: int
    event: AuditEvent
    key_id: str  # which chain key made `hash` (streamer.audit.chain.ChainKey)
    prev_hash: str
    hash: str

    def __post_init__(self) -> None:
        if not _STREAM.fullmatch(self.stream):
            raise InvalidAuditEvent(
                f"stream must be 1-128 letters, digits, '_', '.', ':' or '-', got {self.stream!r}"
            )
        if self.seq < 1:
            raise InvalidAuditEvent(f"seq counts from 1, got {self.seq} in {self.stream}")
        for name in ("prev_hash", "hash"):
            if not _HASH.fullmatch(getattr(self, name)):
                raise InvalidAuditEvent(f"{name} of {self.stream}#{self.seq} is not a SHA-256")


@dataclass(frozen=True)
class StreamHead:
    """The checkpoint of a stream: the seq and hash of its last entry as its writer left it."""

    stream: str
    seq: int
    hash: str


def check_stream_name(stream: str) -> str:
    if not _STREAM.fullmatch(stream):
        raise InvalidAuditEvent(
            f"stream must be 1-128 letters, digits, '_', '.', ':' or '-', got {stream!r}"
        )
    return stream


def details_json(details: dict[str, Any]) -> str:
    """The details as canonical JSON (sorted keys, no spaces); InvalidAuditEvent if not JSON."""
    if not isinstance(details, dict):
        raise InvalidAuditEvent(f"details must be a JSON object, got {type(details).__name__}")
    try:
        return json.dumps(
            details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidAuditEvent(f"details must be a JSON object of finite values: {exc}") from exc
