"""Errors of the access-log shipper.

    LogshipError                    base
    ├── MalformedLine               a complete log line that is not an access-log record
    ├── ShipperStateError           the offset file is unreadable or held by another shipper
    ├── ShipperStopped              asked to stop while a batch was still failing
    └── ShardFailed                 the shipper process of one log file exited with an error

None of them maps to an HTTP status: the shipper is a process, not a handler.
"""

from __future__ import annotations


class LogshipError(Exception):
    """Base class of the shipper's deliberate errors."""


class MalformedLine(LogshipError):
    """A complete line that cannot be shipped; `reason` is a short code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class ShipperStateError(LogshipError):
    """The offset file cannot be read, written or locked."""


class ShipperStopped(LogshipError):
    """Asked to stop while retrying a batch: its position is not saved, so it ships again."""


class ShardFailed(LogshipError):
    """One log file's shipper process failed: the others were stopped (their positions are
    saved), and a supervisor restarting `streamer logship` resumes every file."""
