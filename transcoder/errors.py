"""Errors of the ingest path.

    IngestError                 (500)
    ├── MasterRejected          (422)  the master itself is unusable; retrying will not help
    ├── EncodeFailed            (500)  ffmpeg failed on a master that probed fine
    ├── EncodeTimeout           (504)  ffmpeg ran past its deadline and was killed
    ├── PublishFailed           (503)  the object store failed mid-publish; the job is retried
    └── LeaseLost               (409)  another worker owns the job now; stop without publishing

Every error has a stable `code` that job records, the CLI and the HTTP API report.
"""

from __future__ import annotations


class IngestError(Exception):
    http_status = 500
    code = "ingest_failed"
    retryable = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        return str(self.args[0])


class MasterRejected(IngestError):
    """The master is not something we can publish; the message tells the ingest team why."""

    http_status = 422
    code = "rejected"


class EncodeFailed(IngestError):
    code = "encode_failed"


class EncodeTimeout(IngestError):
    http_status = 504
    code = "encode_timeout"
    retryable = True


class PublishFailed(IngestError):
    http_status = 503
    code = "publish_failed"
    retryable = True


class LeaseLost(IngestError):
    http_status = 409
    code = "lease_lost"
