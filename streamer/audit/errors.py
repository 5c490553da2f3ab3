"""Errors of the audit log.

    StreamerError (streamer.errors)
    ├── StorageError                          (503)
    │   └── StreamConflict                    (503)  another writer took a (stream, seq) first
    ├── InvalidAuditEvent                     (400)  an event that cannot be recorded as given
    └── CorruptEntry                          (500)  a stored row that is no entry any more

A broken chain is not an error: `streamer.audit.chain.verify_stream` reports it as a
`ChainProblem`, the finding of a check rather than a failure of the program.
"""

from __future__ import annotations

from streamer.errors import StorageError, StreamerError


class StreamConflict(StorageError):
    """An append found an entry at one of its (stream, seq) positions; nothing was written."""

    def __init__(self, stream: str, seq: int) -> None:
        super().__init__(f"audit stream {stream!r} already holds an entry at seq {seq}")
        self.stream = stream
        self.seq = seq


class InvalidAuditEvent(StreamerError):
    """An audit event with a field out of bounds; the message names the field."""

    http_status = 400


class CorruptEntry(StreamerError):
    """A stored row that does not decode as an entry: someone changed it to an invalid value."""

    def __init__(self, stream: str, seq: int, reason: str) -> None:
        super().__init__(f"audit entry {stream}#{seq} does not decode: {reason}")
        self.stream = stream
        self.seq = seq
        self.reason = reason
