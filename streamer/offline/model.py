"""Offline downloads: the devices a premium listener registers and their download licences."""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = re.compile(r"[A-Za-z0-9_\-]{1,64}")  # device and licence ids: URL-safe, no '.' or ':'
MAX_DEVICE_NAME_CHARS = 80
PUBLIC_KEY_SIZE = 32  # X25519, RFC 7748


def _check_id(what: str, value: str) -> None:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{what} must be 1 to 64 of A-Z a-z 0-9 _ -, got {value!r}")


def _check_time(what: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be int unix seconds >= 0, got {value!r}")


@dataclass(frozen=True)
class Device:
    """A listener's device that may hold downloads; it proves itself with its X25519 key."""

    device_id: str
    user_id: str
    public_key: bytes  # raw X25519 public key: content keys are wrapped for it
    name: str
    registered_at: int  # unix seconds

    def __post_init__(self) -> None:
        _check_id("device_id", self.device_id)
        if not isinstance(self.user_id, str) or not 0 < len(self.user_id) <= 128:
            raise ValueError("a device needs a user_id of 1 to 128 characters")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValueError(f"device {self.device_id}: public_key must be {PUBLIC_KEY_SIZE} bytes")
        if not isinstance(self.name, str) or len(self.name) > MAX_DEVICE_NAME_CHARS:
            raise ValueError(f"device {self.device_id}: name must be at most 80 characters")
        _check_time("registered_at", self.registered_at)


@dataclass(frozen=True)
class Licence:
    """A device's right to hold one version of a track's premium renditions until `expires_at`.

    Renewing moves `expires_at`; revoking sets `revoked_at` for good. Plays made offline count
    only while the licence was valid (streamer.offline.policy.valid_at).
    """

    licence_id: str
    device_id: str
    user_id: str
    track_id: str
    version: str
    renditions: tuple[str, ...]
    granted_at: int  # unix seconds
    expires_at: int  # unix seconds, exclusive
    revoked_at: int | None = None
    revoked_by: str = ""  # "listener" or "admin:<subject>"

    def __post_init__(self) -> None:
        _check_id("licence_id", self.licence_id)
        _check_id("device_id", self.device_id)
        object.__setattr__(self, "renditions", tuple(self.renditions))
        _check_time("granted_at", self.granted_at)
        _check_time("expires_at", self.expires_at)
        if self.expires_at <= self.granted_at:
            raise ValueError(
                f"licence {self.licence_id} expires at {self.expires_at}, not after it was"
                f" granted at {self.granted_at}"
            )
        if self.revoked_at is not None:
            _check_time("revoked_at", self.revoked_at)
