"""The hash chain: canonical encoding, linking and verification. Pure: no I/O, no clock.

Each entry's hash is HMAC-SHA256, under the chain key, of its canonical encoding: a JSON
array (no spaces; the details' keys sorted) of the format version, stream, seq, key id,
previous entry's hash, and the event's id, time, action, actor, subject and details. So an
entry cannot be edited, moved to another seq or stream, or dropped from the middle without
breaking either its own hash or its successor's `prev_hash`. The key (derived from the
token secret, held by the servers, not by the store) is what makes the chain tamper-evident
against someone who can write the database: without it, editing an entry and recomputing
every hash after it would go unseen. The stream's checkpoint (`StreamHead`) catches a
removed tail.

`verify_stream` walks one stream in seq order and stops at the first broken entry, saying
which kind of damage it is (`Damage`) and where.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from streamer.audit.errors import CorruptEntry
from streamer.audit.model import (
    GENESIS_HASH,
    AuditEntry,
    AuditEvent,
    StreamHead,
    check_stream_name,
    details_json,
)

FORMAT_VERSION = 1
# A moved entry is recognised by trying the seqs within this distance of where it lies.
REORDER_WINDOW = 1000
KEY_LABEL = b"streamer/audit-chain/v1"


@dataclass(frozen=True)
class ChainKey:
    """The HMAC key of the chain; `key_id` names it in entries without revealing it."""

    secret: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.secret) < 32:
            raise ValueError(f"a chain key needs at least 32 bytes, got {len(self.secret)}")

    @property
    def key_id(self) -> str:
        return hashlib.sha256(b"key-id:" + self.secret).hexdigest()[:16]


def derive_chain_key(master: bytes) -> ChainKey:
    """The chain key derived from the platform secret under its own label."""
    return ChainKey(hmac.digest(master, KEY_LABEL, hashlib.sha256))


@dataclass(frozen=True)
class ChainKeys:
    """The keys a verifier accepts: the current one, and those retired by rotating the token
    secret, oldest first. Writers hash under the current key only. Within a stream the keys
    may only move forward: an entry under a retired key after one under a newer key was not
    written by a server (a leaked retired key is the usual reason to rotate)."""

    current: ChainKey
    retired: tuple[ChainKey, ...] = ()

    def rank(self, key_id: str) -> int | None:
        """The key's place in rotation order (the current key last), None if unknown."""
        for rank, key in enumerate((*self.retired, self.current)):
            if key.key_id == key_id:
                return rank
        return None

    def by_rank(self, rank: int) -> ChainKey:
        return (*self.retired, self.current)[rank]


def _as_keys(keys: ChainKey | ChainKeys) -> ChainKeys:
    return keys if isinstance(keys, ChainKeys) else ChainKeys(keys)


def canonical(stream: str, seq: int, key_id: str, prev_hash: str, event: AuditEvent) -> bytes:
    """The bytes an entry's hash covers."""
    fields = [
        FORMAT_VERSION,
        stream,
        seq,
        key_id,
        prev_hash,
        event.event_id,
        event.at_us,
        event.action.value,
        event.actor,
        event.subject,
        details_json(event.details),
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(key: ChainKey, stream: str, seq: int, prev_hash: str, event: AuditEvent) -> str:
    return hmac.new(
        key.secret, canonical(stream, seq, key.key_id, prev_hash, event), hashlib.sha256
    ).hexdigest()


def link(
    key: ChainKey, stream: str, after: StreamHead | None, events: Sequence[AuditEvent]
) -> tuple[AuditEntry, ...]:
    """`events` as the entries that follow `after` (None: the stream's start) in `stream`."""
    check_stream_name(stream)
    seq, prev = (0, GENESIS_HASH) if after is None else (after.seq, after.hash)
    entries = []
    for event in events:
        seq += 1
        digest = entry_hash(key, stream, seq, prev, event)
        entries.append(AuditEntry(stream, seq, event, key.key_id, prev, digest))
        prev = digest
    return tuple(entries)


def head_of(entry: AuditEntry) -> StreamHead:
    return StreamHead(entry.stream, entry.seq, entry.hash)


class Damage(StrEnum):
    """The kinds of broken chain `verify_stream` tells apart."""

    EDITED = "edited"  # an entry's fields no longer match its hash
    REMOVED = "removed"  # a seq is missing, in the middle or at the tail
    REORDERED = "reordered"  # an intact entry sits at another seq than it was written at
    FORGED = "forged"  # an entry with a valid hash that does not follow its predecessor
    HEAD = "head"  # the checkpoint names a hash no entry at its seq has
    KEY = "key"  # the entry was hashed under another chain key than the verifier's


@dataclass(frozen=True)
class ChainProblem:
    """The first broken place of a stream: `seq` is where the walk stopped."""

    stream: str
    seq: int
    damage: Damage
    message: str


@dataclass(frozen=True)
class StreamReport:
    """What a walk of one stream found: entries checked, the last seq seen, the problem."""

    stream: str
    checked: int
    last_seq: int
    problem: ChainProblem | None


def verify_stream(
    keys: ChainKey | ChainKeys,
    stream: str,
    entries: Iterable[AuditEntry],
    head: StreamHead | None,
    since_us: int | None = None,
) -> StreamReport:
    """Check `entries` (the stream in seq order, as stored) against each other and `head`.

    With `since_us`, entries before that time are taken on trust and the walk checks from
    the first entry at or after it.
    """
    keyring = _as_keys(keys)
    expected, prev, checked, key_rank = 1, GENESIS_HASH, 0, 0
    last: AuditEntry | None = None

    def report(seq: int, damage: Damage, message: str) -> StreamReport:
        problem = ChainProblem(stream, seq, damage, f"{stream}#{seq}: {message}")
        return StreamReport(stream, checked, last.seq if last else 0, problem)

    trusting = since_us is not None
    walk = iter(entries)
    while True:
        try:
            entry = next(walk)
        except StopIteration:
            break
        except CorruptEntry as exc:  # a value changed to one no entry can hold
            return report(exc.seq, Damage.EDITED, f"a field no longer decodes ({exc.reason})")
        if trusting and since_us is not None and entry.event.at_us < since_us:
            expected, prev, last = entry.seq + 1, entry.hash, entry
            continue
        trusting = False
        if entry.stream != stream:
            return report(entry.seq, Damage.EDITED, f"the entry names stream {entry.stream!r}")
        if entry.seq > expected:
            gap = f"{expected}" if entry.seq == expected + 1 else f"{expected} to {entry.seq - 1}"
            return report(expected, Damage.REMOVED, f"entries {gap} are missing")
        if entry.seq < expected:  # a store that returned a seq twice or out of order
            return report(entry.seq, Damage.REORDERED, f"seq {entry.seq} came after {expected - 1}")
        rank = keyring.rank(entry.key_id)
        if rank is None:
            return report(
                entry.seq,
                Damage.KEY,
                f"hashed under chain key {entry.key_id}, not this verifier's"
                f" {keyring.current.key_id} (was the token secret changed? give the retired"
                " secrets in STREAMER_PREVIOUS_TOKEN_SECRETS)",
            )
        if rank < key_rank:
            return report(
                entry.seq,
                Damage.KEY,
                f"hashed under retired chain key {entry.key_id} after entries under a newer one",
            )
        key_rank, key = rank, keyring.by_rank(rank)
        if entry_hash(key, stream, entry.seq, entry.prev_hash, entry.event) != entry.hash:
            written_at = _written_seq(key, entry)
            if written_at is not None:
                return report(
                    entry.seq, Damage.REORDERED, f"the entry written as seq {written_at} lies here"
                )
            return report(
                entry.seq,
                Damage.EDITED,
                f"its fields do not match its hash ({entry.event.action} by {entry.event.actor}"
                f" on {entry.event.subject})",
            )
        if entry.prev_hash != prev:
            return report(
                entry.seq,
                Damage.FORGED,
                "its hash is valid but it does not follow the entry before it",
            )
        if head is not None and head.seq == entry.seq and head.hash != entry.hash:
            return report(entry.seq, Damage.HEAD, "the checkpoint's hash is not this entry's")
        expected, prev, last = entry.seq + 1, entry.hash, entry
        checked += 1
    # The checkpoint may lag the entries (a writer that died between the two writes), never
    # lead them.
    if head is not None:
        last_seq = last.seq if last else 0
        if head.seq > last_seq:
            gap = f"{last_seq + 1}" if head.seq == last_seq + 1 else f"{last_seq + 1} to {head.seq}"
            return report(
                last_seq + 1,
                Damage.REMOVED,
                f"the checkpoint says {head.seq}; entries {gap} are missing",
            )
    return StreamReport(stream, checked, last.seq if last else 0, None)


def _written_seq(key: ChainKey, entry: AuditEntry) -> int | None:
    """The seq the entry's hash was made at, if it is intact but moved."""
    low = max(1, entry.seq - REORDER_WINDOW)
    for seq in range(low, entry.seq + REORDER_WINDOW + 1):
        if seq != entry.seq and (
            entry_hash(key, entry.stream, seq, entry.prev_hash, entry.event) == entry.hash
        ):
            return seq
    return None
