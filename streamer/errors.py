"""Errors shared by every application of the server.

    StreamerError                      (500)
    ├── ConfigError                    (500)  a setting is missing or malformed
    ├── StorageError                   (503)  a backend failed; retry later
    │   ├── ObjectNotFound             (404)
    │   └── JobNotFound                (404)
    ├── InvalidObjectKey               (400)  a key that could escape its prefix
    ├── CatalogError                   (500)  a stored track record does not decode
    ├── BearerTokenRefused             (401)  forged, malformed, for another audience, not yet valid
    │   └── BearerTokenExpired         (401)
    └── BearerScopeMissing             (403)  a genuine token without the scope asked for

Each error carries the HTTP status it maps to so handlers never parse messages.
"""

from __future__ import annotations


class StreamerError(Exception):
    """Base class of every error the server raises on purpose."""

    http_status = 500


class ConfigError(StreamerError):
    """A setting is missing or malformed; the message names the variable."""


class StorageError(StreamerError):
    """A storage backend failed in a way that may pass; the caller may retry."""

    http_status = 503


class ObjectNotFound(StorageError):
    http_status = 404

    def __init__(self, key: str) -> None:
        super().__init__(f"no object at key {key!r}")
        self.key = key


class JobNotFound(StorageError):
    http_status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no ingest job with id {job_id!r}")
        self.job_id = job_id


class InvalidObjectKey(StreamerError):
    http_status = 400


class CatalogError(StreamerError):
    """A stored track record could not be decoded."""


class BearerTokenRefused(StreamerError):
    """A bearer token that proves nothing: forged, malformed, expired or for another audience.

    The message names the kind ("listener token refused: Signature verification failed");
    `reason` is the failed check alone, for apps that word their own message.
    """

    http_status = 401

    def __init__(self, message: str, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


class BearerTokenExpired(BearerTokenRefused):
    """A genuine token past its `exp` (and the clock leeway)."""


class BearerScopeMissing(StreamerError):
    """A genuine token of the right audience that does not grant the scope asked for."""

    http_status = 403
