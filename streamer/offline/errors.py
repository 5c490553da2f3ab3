"""Errors of the offline download stores.

    StreamerError (streamer.errors)
    └── OfflineError                   (500)
        └── DeviceLimitReached         (409)  the account already has its limit of devices

Store failures are streamer.errors.StorageError (503), as for every store.
"""

from __future__ import annotations

from streamer.errors import StreamerError


class OfflineError(StreamerError):
    """Base class of the offline stores' errors."""


class DeviceLimitReached(OfflineError):
    http_status = 409

    def __init__(self, user_id: str, limit: int) -> None:
        super().__init__(
            f"listener {user_id} has {limit} devices registered for downloads, the most an"
            " account may have; remove one first"
        )
        self.user_id = user_id
        self.limit = limit
