"""The HTTP ingest API: `POST /v1/ingest` streams a master in, `GET /v1/ingest/{job}` reports.

Uploads are streamed to a temporary file with a hard size bound and hashed on the way; only a
complete upload reaches the object store and the job queue, so an upload that is too large or
stops halfway leaves nothing behind. Callers present an ingest-scoped bearer token, checked by
`streamer.bearer_tokens`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from aiohttp import web
from aiohttp.typedefs import Handler

from streamer.audit.events import ingest_submitted
from streamer.audit.recorder import AuditRecorder
from streamer.bearer_tokens import (
    BearerTokenVerifier,
    TokenKind,
    bearer_credentials,
    sign_bearer_token,
)
from streamer.errors import (
    BearerScopeMissing,
    BearerTokenExpired,
    BearerTokenRefused,
    JobNotFound,
    StreamerError,
)
from streamer.jobs.port import INGEST_KINDS, Job, JobStore
from streamer.objects.port import ObjectStore
from streamer.settings import Settings
from streamer.token_secrets import load_token_secrets
from transcoder.submit import InvalidTrackId, check_track_id, submit_master

log = logging.getLogger(__name__)

INGEST_AUDIENCE = "streamer-ingest"
INGEST_SCOPE = "ingest"
INGEST_TOKEN = TokenKind("ingest token", INGEST_AUDIENCE, scope=INGEST_SCOPE)
DEV_TOKEN_TTL_S = 24 * 3600
UPLOAD_CHUNK_BYTES = 1 << 20
MAX_METADATA_CHARS = 16_384
# C0 controls and DEL: a NUL cannot be in a path (the worker names its copy after the
# extension), CR and LF would forge log lines.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

STORE_KEY = web.AppKey("ingest_object_store", ObjectStore)
JOBS_KEY = web.AppKey("ingest_job_store", JobStore)
SETTINGS_KEY = web.AppKey("ingest_settings", Settings)
VERIFY_KEY: web.AppKey[Callable[[str], dict[str, Any]]] = web.AppKey("ingest_verify")
AUDIT_KEY = web.AppKey("ingest_audit", AuditRecorder)


class ApiError(Exception):
    """An error answered as JSON `{"error": code, "message": ...}` with `status`."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def _json_errors(handler: Handler) -> Handler:
    """Answer ApiError as JSON; a decorator so the routes work on any application."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            body = {"error": exc.code, "message": str(exc)}
            return web.json_response(body, status=exc.status)

    return wrapped


def ingest_token_verifier(
    key: bytes, clock: Callable[[], float] = time.time
) -> Callable[[str], dict[str, Any]]:
    """A function checking an ingest token (audience streamer-ingest, scope ingest)."""
    tokens = BearerTokenVerifier(key, INGEST_TOKEN, clock)

    def verify(token: str) -> dict[str, Any]:
        try:
            return tokens.verify(token)
        except BearerTokenExpired as exc:
            raise ApiError(
                401, "token_expired", "the ingest token has expired; get a new one"
            ) from exc
        except BearerTokenRefused as exc:
            raise ApiError(
                401, "invalid_token", f"the ingest token is not valid: {exc.reason}"
            ) from exc
        except BearerScopeMissing as exc:
            raise ApiError(403, "insufficient_scope", str(exc)) from exc

    return verify


def issue_ingest_token(key: bytes, subject: str, ttl_s: int, now: float | None = None) -> str:
    """An ingest token as the account service would issue it."""
    return sign_bearer_token(key, INGEST_TOKEN, subject, ttl_s, time.time() if now is None else now)


def issue_dev_ingest_token(settings: Settings, user: str, ttl_s: int = DEV_TOKEN_TTL_S) -> str:
    """A development ingest token under the configured (or generated) secret: the CLI's
    `streamer token --scope ingest --user <label>`."""
    return issue_ingest_token(load_token_secrets(settings).platform_key, user, ttl_s)


def _authorize(request: web.Request) -> dict[str, Any]:
    token = bearer_credentials(request.headers.get("Authorization"))
    if token is None:
        raise ApiError(401, "missing_token", "send 'Authorization: Bearer <ingest token>'")
    return request.app[VERIFY_KEY](token)


def job_json(job: Job) -> dict[str, Any]:
    return {
        "job_id": job.job_id,
        "state": job.state,
        "track_id": job.spec.track_id,
        "kind": job.spec.kind,
        "filename": job.spec.filename,
        "attempts": job.attempts,
        "progress_percent": round(job.progress_percent, 1),
        "speed_x_realtime": job.speed_x_realtime,
        "version": job.version,
        "error": (
            {"code": job.error_code, "message": job.error_message}
            if job.state == "failed"
            else None
        ),
        "created_at": job.created_at.isoformat(),
        "updated_at": job.updated_at.isoformat(),
    }


async def _receive(request: web.Request, limit: int, spool_dir: Path) -> tuple[Path, str, int]:
    """Stream the body to a temporary file; (path, sha256, size). Deletes it on any failure."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ApiError(413, "too_large", f"the upload is {declared} bytes; the limit is {limit}")
    handle = await asyncio.to_thread(_open_spool_file, spool_dir)
    path = Path(handle.name)
    digest = hashlib.sha256()
    size = 0
    try:
        with handle:
            while chunk := await _read_chunk(request):
                size += len(chunk)
                if size > limit:
                    raise ApiError(
                        413, "too_large", f"the upload exceeds the limit of {limit} bytes"
                    )
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
        # Content-Length counts the bytes sent; aiohttp inflates a gzip or deflate body.
        encoded = bool(request.headers.get("Content-Encoding"))
        if declared is not None and size != declared and not encoded:
            raise ApiError(400, "incomplete_upload", f"received {size} of {declared} bytes")
        if size == 0:
            raise ApiError(
                400, "empty_upload", "the request body is empty; send the master's bytes"
            )
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return path, digest.hexdigest(), size


async def _read_chunk(request: web.Request) -> bytes:
    try:
        return await request.content.read(UPLOAD_CHUNK_BYTES)
    except web.RequestPayloadError as exc:
        # aiohttp inflates gzip and deflate as it reads, and checks chunked framing and length.
        reason = getattr(exc.__cause__, "message", "") or "its framing or encoding is broken"
        raise ApiError(400, "bad_body", f"the body cannot be read: {reason}") from exc


def _open_spool_file(spool_dir: Path) -> IO[bytes]:
    spool_dir.mkdir(parents=True, exist_ok=True)
    return tempfile.NamedTemporaryFile(dir=spool_dir, prefix="upload-", delete=False)


async def post_ingest(request: web.Request) -> web.Response:
    claims = _authorize(request)
    settings = request.app[SETTINGS_KEY]
    filename = request.query.get("filename", "")
    if not filename or "/" in filename or len(filename) > 255 or _CONTROL.search(filename):
        raise ApiError(
            400,
            "bad_filename",
            "give ?filename=<name.ext> (the extension hints format): at most 255 characters, "
            "no '/' and no control characters",
        )
    track_id = request.query.get("track_id")
    kind = request.query.get("kind", "track")
    if kind not in INGEST_KINDS:
        raise ApiError(
            400, "bad_kind", f"kind must be one of {', '.join(INGEST_KINDS)}, got {kind[:20]!r}"
        )
    try:
        if track_id:
            check_track_id(track_id)
        raw_metadata = request.query.get("metadata", "{}")
        if len(raw_metadata) > MAX_METADATA_CHARS:
            raise ValueError(f"metadata is over {MAX_METADATA_CHARS} characters")
        metadata = json.loads(raw_metadata)
        if not isinstance(metadata, dict):
            raise ValueError("metadata must be a JSON object")
    except (InvalidTrackId, ValueError) as exc:
        raise ApiError(400, "bad_request", str(exc)) from exc
    except RecursionError as exc:  # json's C decoder recurses once per level of nesting
        raise ApiError(400, "bad_request", "metadata is JSON nested too deeply") from exc

    path, sha, size = await _receive(
        request, settings.max_upload_bytes, settings.data_dir / "uploads"
    )
    try:
        job = await asyncio.to_thread(
            submit_master,
            path,
            store=request.app[STORE_KEY],
            jobs=request.app[JOBS_KEY],
            filename=filename,
            track_id=track_id,
            metadata={**metadata, "submitted_by": claims["sub"]},
            master_sha256=sha,
            kind="ad" if kind == "ad" else "track",
        )
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)
    log.info("ingest job %s queued: %s (%d bytes) by %s", job.job_id, filename, size, claims["sub"])
    await _audit_submission(request, job, claims["sub"])
    body = job_json(job)
    body["status_url"] = f"/v1/ingest/{job.job_id}"
    return web.json_response(body, status=202, headers={"Location": body["status_url"]})


async def _audit_submission(request: web.Request, job: Job, subject: str) -> None:
    """Keep the submission's audit entry (store or spool) before the 202 acknowledges it."""
    audit = request.app.get(AUDIT_KEY)
    if audit is None:
        return
    event = ingest_submitted(
        actor=f"ingest:{subject}",
        job_id=job.job_id,
        track_id=job.spec.track_id,
        filename=job.spec.filename,
        master_sha256=job.spec.master_sha256,
        via="http",
        kind=job.spec.kind,
        at_s=time.time(),
    )
    try:
        stored = await asyncio.to_thread(audit.record, [event])
        if stored and audit.has_spooled():  # the store is back: what waited on disk goes in
            await asyncio.to_thread(_replay_quietly, audit)
    except StreamerError as exc:
        raise ApiError(
            503,
            "audit_unavailable",
            f"job {job.job_id} is queued, but its audit entry could not be kept ({exc});"
            " submit it again later",
        ) from exc


def _replay_quietly(audit: AuditRecorder) -> None:
    try:
        audit.replay()
    except StreamerError as exc:  # left spooled for the next try
        log.warning("audit spool not replayed yet: %s", exc)


async def get_ingest(request: web.Request) -> web.Response:
    _authorize(request)
    try:
        job = await asyncio.to_thread(request.app[JOBS_KEY].get, request.match_info["job_id"])
    except JobNotFound as exc:
        raise ApiError(404, "unknown_job", str(exc)) from exc
    except StreamerError as exc:
        raise ApiError(503, "store_unavailable", str(exc)) from exc
    return web.json_response(job_json(job))


def install_ingest_api(
    app: web.Application,
    settings: Settings,
    store: ObjectStore,
    jobs: JobStore,
    verify: Callable[[str], dict[str, Any]],
    audit: AuditRecorder | None = None,
) -> None:
    """Add the ingest routes and their state to `app` (the edge's, or one of its own);
    `audit` records each submission (`mount_ingest` gives one; without it, none)."""
    app[SETTINGS_KEY] = settings
    if audit is not None:
        app[AUDIT_KEY] = audit
    app[STORE_KEY] = store
    app[JOBS_KEY] = jobs
    app[VERIFY_KEY] = verify
    app.router.add_post("/v1/ingest", _json_errors(post_ingest))
    app.router.add_get("/v1/ingest/{job_id}", _json_errors(get_ingest))
