"""S3ObjectStore: the object store on an S3 server (versitygw, Ceph RGW, SeaweedFS, AWS S3, ...).

It talks S3 through the minio SDK, whose client is thread-safe: async callers run these blocking
calls in threads and share one store.

Integrity. S3's ETag is an MD5 or a multipart composite, not the sha256 that `ObjectInfo.etag`
promises, so `put` stores the content's sha256 hex as user metadata (`x-amz-meta-sha256`), and
`stat` returns it. On plain HTTP the SDK also signs each request's payload hash, so the server
rejects a body damaged in transit. `put_file` hashes the file once before the upload (the
metadata travels with its first request), again while its parts are read, and checks with
`stat` afterwards that the stored size and hash are the ones it meant.

Atomicity. An S3 PUT, and the completion of a multipart upload, replace an object whole: a GET
returns the old object or the new one. A HEAD may not be as whole: versitygw's POSIX backend
reads each header from its own extended attribute, so a HEAD racing a PUT can mix the headers
of two versions. So `put` also writes everything `stat` returns (sha256, size, content type,
cache control) into one user metadata value, `x-amz-meta-object-info`, and `stat` takes its
answer from that value alone, asking again when its size disagrees with the body's.

Time. Every request runs under a connect and a read timeout (urllib3's, per socket operation),
and urllib3 retries nothing: our loop alone retries transient failures (refused or reset
connections, timeouts, 5xx, SlowDown) with exponential backoff until `retry_deadline_s` has
passed since the first attempt. A call therefore fails within about the deadline plus one
attempt's timeouts. Anything else fails at once.

Abandoned multipart uploads. The SDK aborts an upload whose part fails, but a crash, or an abort
that fails too, leaves its parts on the server. `cleanup_incomplete_uploads(older_than)` lists
and aborts them through minio 7.2's `_list_multipart_uploads` and `_abort_multipart_upload`,
the only way that SDK exposes (they are private, so a minio upgrade may need a look here). A
bucket lifecycle rule `AbortIncompleteMultipartUpload` is the server-side alternative where the
server supports it.

Errors. `NoSuchKey` becomes ObjectNotFound(key); everything else becomes StorageError naming the
operation, key, bucket and endpoint. No minio or urllib3 exception leaves this module.

One module on purpose (about 530 lines): the adapter's retries, multipart uploads and their
cleanup share one client and one error policy, and are read together.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import BinaryIO, NoReturn, TypeVar, cast
from urllib.parse import quote, unquote

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name

from streamer.errors import ConfigError, InvalidObjectKey, ObjectNotFound, StorageError
from streamer.objects.port import ObjectInfo, check_key
from streamer.settings import ENV_PREFIX, Settings

SHA256_METADATA = "x-amz-meta-sha256"  # the content's sha256 hex, for people and other tools
# Everything `stat` returns, in one value (see `_info_value`): a server may read each header of a
# HEAD separately while a PUT replaces the object (versitygw's POSIX backend reads one extended
# attribute at a time), and only one value is read whole.
INFO_METADATA = "x-amz-meta-object-info"
_STAT_ATTEMPTS = 5  # each retry means a concurrent put replaced the object during our HEAD

MIN_PART_SIZE = 5 * 1024**2  # S3's smallest part (all but the last)
# Objects above one part go up in parts of this size. 16 MiB keeps a 16 GB master (four hours
# of 192 kHz/24-bit stereo WAV) near 1,000 parts, far below S3's limit of 10,000.
PART_SIZE = 16 * 1024**2
# One part at a time: a failed part then stops the upload at once, instead of after the SDK has
# read the rest of a multi-gigabyte master into its queue. Loopback and LAN servers keep up.
PARALLEL_PARTS = 1

CONNECT_TIMEOUT_S = 5.0  # a server on the same network accepts in milliseconds or not at all
READ_TIMEOUT_S = 30.0  # per socket read: a stalled response, not a long download
RETRY_DEADLINE_S = 20.0  # rides out a server restart, yet fails before a player gives up
FIRST_BACKOFF_S = 0.1
MAX_BACKOFF_S = 2.0
POOL_CONNECTIONS = 16  # the edge reads from many threads at once; extra requests open more
HASH_CHUNK_BYTES = 1024 * 1024

# S3 error codes that say "try again"; every 5xx does too.
_TRANSIENT_CODES = frozenset(
    {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout", "OperationAborted"}
)
# What the SDK and urllib3 raise. OSError covers refused and reset connections.
_SDK_ERRORS = (MinioException, urllib3.exceptions.HTTPError, OSError)

_T = TypeVar("_T")


class S3ObjectStore:
    """Objects in one bucket of an S3 server; metadata as S3 headers and user metadata."""

    def __init__(
        self,
        client: Minio,
        bucket: str,
        endpoint: str,
        *,
        retry_deadline_s: float = RETRY_DEADLINE_S,
        part_size: int = PART_SIZE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        try:
            check_bucket_name(bucket)
        except ValueError as exc:
            raise ConfigError(f"{ENV_PREFIX}S3_BUCKET is {bucket!r}: {exc}") from None
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"part size {part_size} is below S3's minimum of {MIN_PART_SIZE}")
        self._client = client
        self.bucket = bucket
        self.endpoint = endpoint
        self.retry_deadline_s = retry_deadline_s
        self.part_size = part_size
        self._sleep = sleep
        self._clock = clock

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        retry_deadline_s: float = RETRY_DEADLINE_S,
        part_size: int = PART_SIZE,
    ) -> S3ObjectStore:
        """Open the bucket that `settings` name, creating it if it is missing."""
        store = cls(
            make_client(settings),
            settings.s3_bucket,
            settings.s3_endpoint,
            retry_deadline_s=retry_deadline_s,
            part_size=part_size,
        )
        store.ensure_bucket()
        return store

    def __repr__(self) -> str:
        return f"S3ObjectStore(bucket={self.bucket!r}, endpoint={self.endpoint!r})"

    # Reading

    def get(self, key: str) -> bytes:
        check_key(key)
        return self._call(self._about("get", key), key, lambda: self._read(key, 0, 0))

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(
                f"range of {key!r} needs start >= 0 and length >= 0, got {start} and {length}"
            )
        check_key(key)
        if length == 0:
            self.stat(key)  # an empty range of a missing object is still missing
            return b""
        return self._call(self._about("read", key), key, lambda: self._read(key, start, length))

    def stat(self, key: str) -> ObjectInfo:
        check_key(key)
        for _ in range(_STAT_ATTEMPTS):
            found = self._call(
                self._about("stat", key), key, lambda: self._client.stat_object(self.bucket, key)
            )
            info = _parse_info(key, (found.metadata or {}).get(INFO_METADATA))
            # The body's size comes from the file, our value from its metadata: if they
            # disagree, the HEAD straddled two versions.
            if info is not None and info.size == found.size:
                return info
        if info is None:
            raise StorageError(
                f"object {key!r} in bucket {self.bucket!r} has no readable {INFO_METADATA}"
                " metadata; it was not stored through this server's object store"
            )
        raise StorageError(
            f"object {key!r} in bucket {self.bucket!r} was replaced {_STAT_ATTEMPTS} times"
            " while being read"
        )

    def list(self, prefix: str) -> Iterator[str]:
        return self._list(prefix)

    # Writing

    def put(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        check_key(key)
        etag = hashlib.sha256(data).hexdigest()
        headers = _headers(ObjectInfo(key, len(data), etag, content_type, cache_control))
        self._call(
            self._about("put", key),
            key,
            lambda: self._client.put_object(
                self.bucket,
                key,
                io.BytesIO(data),
                len(data),
                content_type=content_type,
                metadata=headers,
                part_size=self.part_size,
                num_parallel_uploads=PARALLEL_PARTS,
            ),
        )
        return ObjectInfo(key, len(data), etag, content_type, cache_control)

    def put_file(
        self, key: str, path: Path, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        check_key(key)
        source = Path(path)
        try:
            etag, size = _hash_file(source)
        except OSError as exc:
            raise StorageError(
                f"cannot read {str(path)!r} to store it as {key!r}: {exc.strerror or exc}"
            ) from exc
        headers = _headers(ObjectInfo(key, size, etag, content_type, cache_control))

        def upload() -> None:
            with source.open("rb") as body:
                reader = _HashingReader(body)
                try:
                    self._client.put_object(
                        self.bucket,
                        key,
                        cast(BinaryIO, reader),
                        size,
                        content_type=content_type,
                        metadata=headers,
                        part_size=self.part_size,
                        num_parallel_uploads=PARALLEL_PARTS,
                    )
                except OSError:
                    if os.fstat(body.fileno()).st_size != size:
                        raise _SourceChanged(path, "its size changed") from None
                    raise
            if reader.hexdigest() != etag:
                raise _SourceChanged(path, "its content changed")

        try:
            self._call(self._about("put", key), key, upload)
        except _SourceChanged as changed:
            # What was stored claims a hash it does not have: remove it rather than serve it.
            self.delete(key)
            raise StorageError(
                f"{str(path)!r} changed while it was stored as {key!r} ({changed.what}); "
                "the object was removed, store the file again"
            ) from None
        stored = self.stat(key)
        if (stored.size, stored.etag) != (size, etag):
            raise StorageError(
                f"object {key!r} in bucket {self.bucket!r} holds {stored.size} bytes with sha256 "
                f"{stored.etag} after storing {size} bytes with sha256 {etag} from {str(path)!r}"
            )
        return ObjectInfo(key, size, etag, content_type, cache_control)

    def delete(self, key: str) -> None:
        check_key(key)
        try:
            self._call(
                self._about("delete", key),
                key,
                lambda: self._client.remove_object(self.bucket, key),
            )
        except ObjectNotFound:
            return  # S3 answers 204 for a missing key; some servers say NoSuchKey

    # Administration

    def ensure_bucket(self) -> None:
        """Create the bucket unless it exists."""

        def ensure() -> None:
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket)
            except S3Error as exc:
                # Another process created it between our check and our request.
                if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise

        self._call(f"create bucket {self.bucket!r}", "", ensure)

    def cleanup_incomplete_uploads(self, older_than: timedelta) -> int:
        """Abort multipart uploads started more than `older_than` ago; return how many."""
        cutoff = datetime.now(UTC) - older_than
        aborted = 0
        key_marker: str | None = None
        upload_marker: str | None = None
        while True:
            page = self._call(
                f"list multipart uploads in bucket {self.bucket!r}",
                "",
                partial(
                    self._client._list_multipart_uploads,
                    self.bucket,
                    key_marker=key_marker,
                    upload_id_marker=upload_marker,
                ),
            )
            for upload in page.uploads:
                key, upload_id = upload.object_name, upload.upload_id
                started = upload.initiated_time
                if upload_id is None or (started is not None and started > cutoff):
                    continue
                if self._call(
                    f"abort an upload of {self._about('', key)}",
                    key,
                    partial(self._abort_upload, key, upload_id),
                ):
                    aborted += 1
            if not page.is_truncated or not page.uploads:
                return aborted
            # minio 7.2 misspells NextUploadIdMarker, so resume after the last upload listed.
            key_marker = page.next_key_marker or page.uploads[-1].object_name
            upload_marker = page.uploads[-1].upload_id

    # Internals

    def _about(self, operation: str, key: str) -> str:
        return f"{operation} object {key!r} in bucket {self.bucket!r}".lstrip()

    def _abort_upload(self, key: str, upload_id: str) -> bool:
        try:
            self._client._abort_multipart_upload(self.bucket, key, upload_id)
        except S3Error as exc:
            if exc.code == "NoSuchUpload":
                return False  # completed or aborted meanwhile
            raise
        return True

    def _read(self, key: str, offset: int, length: int) -> bytes:
        try:
            response = self._client.get_object(self.bucket, key, offset=offset, length=length)
        except S3Error as exc:
            if exc.code == "InvalidRange":
                return b""  # the range starts at or past the end; the object exists
            raise
        try:
            return response.read()
        finally:
            response.close()
            response.release_conn()

    def _list(self, prefix: str) -> Iterator[str]:
        # The SDK pages lazily; after a transient failure the listing resumes after the last key
        # it returned, so a retry never yields a key twice.
        subject = f"list keys under {prefix!r} in bucket {self.bucket!r}"
        attempts: _Attempts | None = None
        last: str | None = None
        while True:
            resumed_after = last
            try:
                for item in self._client.list_objects(
                    self.bucket, prefix=prefix, recursive=True, start_after=last
                ):
                    name = item.object_name
                    if name is None or item.is_dir:
                        continue
                    last = name
                    try:
                        yield check_key(name)
                    except InvalidObjectKey:
                        continue  # written by another tool; no caller could ask for it
                return
            except _SDK_ERRORS as exc:
                if attempts is None or last != resumed_after:
                    attempts = _Attempts(self, subject, "")  # progress earns a new deadline
                attempts.failed(exc)

    def _call(self, subject: str, key: str, action: Callable[[], _T]) -> _T:
        """Run `action` with retries; `subject` says what it does, `key` what NoSuchKey means."""
        attempts = _Attempts(self, subject, key)
        while True:
            try:
                return action()
            except _SDK_ERRORS as exc:
                attempts.failed(exc)


class _Attempts:
    """Attempts of one operation: translates each failure, backs off until the deadline."""

    def __init__(self, store: S3ObjectStore, subject: str, key: str) -> None:
        self._store = store
        self._subject = subject
        self._key = key
        self._started = store._clock()
        self._count = 0
        self._backoff = FIRST_BACKOFF_S

    def failed(self, exc: BaseException) -> None:
        """Return after a backoff if `exc` is worth another attempt; raise otherwise."""
        self._count += 1
        if isinstance(exc, S3Error) and exc.code == "NoSuchKey":
            raise ObjectNotFound(self._key) from exc
        if not _is_transient(exc):
            self._give_up(exc, "")
        remaining = self._started + self._store.retry_deadline_s - self._store._clock()
        if remaining <= 0:
            elapsed = self._store._clock() - self._started
            self._give_up(exc, f" (gave up after {self._count} attempts in {elapsed:.1f} s)")
        # Jitter keeps many threads retrying against one server from moving in lockstep.
        self._store._sleep(min(remaining, random.uniform(0.5, 1.0) * self._backoff))
        self._backoff = min(self._backoff * 2, MAX_BACKOFF_S)

    def _give_up(self, exc: BaseException, attempts: str) -> NoReturn:
        raise StorageError(
            f"cannot {self._subject} at {self._store.endpoint}: {_describe(exc)}{attempts}"
        ) from exc


class _SourceChanged(Exception):
    def __init__(self, path: Path, what: str) -> None:
        super().__init__(f"{path}: {what}")
        self.what = what


class _HashingReader:
    """A binary file that hashes what the SDK reads from it."""

    def __init__(self, body: io.BufferedReader) -> None:
        self._body = body
        self._digest = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        chunk = self._body.read(size)
        self._digest.update(chunk)
        return chunk

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def make_client(settings: Settings) -> Minio:
    """A minio client with our timeouts and no retries of its own."""
    endpoint = settings.s3_endpoint
    if "://" in endpoint or "/" in endpoint or not endpoint:
        raise ConfigError(
            f"{ENV_PREFIX}S3_ENDPOINT is {endpoint!r}; expected host:port (such as"
            f" 127.0.0.1:18333), with {ENV_PREFIX}S3_SECURE saying whether it speaks TLS"
        )
    if not settings.s3_access_key or not settings.s3_secret_key:
        raise ConfigError(
            f"{ENV_PREFIX}S3_ACCESS_KEY and {ENV_PREFIX}S3_SECRET_KEY must both be set"
            " for the s3 object store"
        )
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=READ_TIMEOUT_S),
        retries=urllib3.Retry(total=0, redirect=0, raise_on_redirect=False),
        maxsize=POOL_CONNECTIONS,
        cert_reqs="CERT_REQUIRED",
    )
    try:
        return Minio(
            endpoint,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            secure=settings.s3_secure,
            http_client=http,
        )
    except ValueError as exc:
        raise ConfigError(f"{ENV_PREFIX}S3_ENDPOINT is {endpoint!r}: {exc}") from exc


def _headers(info: ObjectInfo) -> dict[str, str | list[str] | tuple[str]]:
    """Request headers of a put: S3's own (for clients reading S3 directly) and ours."""
    headers: dict[str, str | list[str] | tuple[str]] = {
        SHA256_METADATA: info.etag,
        INFO_METADATA: _info_value(info),
    }
    if info.cache_control is not None:
        headers["Cache-Control"] = info.cache_control
    return headers


def _info_value(info: ObjectInfo) -> str:
    """`v1 <sha256> <size> <content type> <cache control>`, fields percent-encoded.

    The cache control is `-` when there is none and `+<value>` when there is one (a quoted
    field never starts with `+`), so that "-" and "" stay values of their own.
    """
    cache_control = "-" if info.cache_control is None else "+" + quote(info.cache_control, safe="")
    fields = [quote(field, safe="") for field in (info.etag, str(info.size), info.content_type)]
    return " ".join(["v1", *fields, cache_control])


def _parse_info(key: str, value: str | None) -> ObjectInfo | None:
    """The ObjectInfo in `value`, or None when it is missing or not ours."""
    parts = (value or "").split(" ")
    if len(parts) != 5 or parts[0] != "v1" or not parts[2].isdigit():
        return None
    etag, size, content_type = unquote(parts[1]), int(parts[2]), unquote(parts[3])
    if parts[4] != "-" and not parts[4].startswith("+"):
        return None
    cache_control = None if parts[4] == "-" else unquote(parts[4][1:])
    return ObjectInfo(key, size, etag, content_type, cache_control)


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as body:
        while chunk := body.read(HASH_CHUNK_BYTES):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _is_transient(exc: BaseException) -> bool:
    if isinstance(exc, S3Error):
        return exc.code in _TRANSIENT_CODES or exc.response.status >= 500
    if isinstance(exc, ServerError):
        return exc.status_code >= 500
    # Not XML: a proxy or gateway answered (502, 504) or the body was cut off.
    return isinstance(exc, InvalidResponseError | urllib3.exceptions.HTTPError | OSError)


def _describe(exc: BaseException) -> str:
    """A short reason without credentials (urllib3 and minio never put them in messages)."""
    if isinstance(exc, S3Error):
        return f"{exc.code} ({exc.response.status}): {exc.message}"
    if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
        exc = exc.reason
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return f"cannot connect: {str(exc).rpartition(': ')[2]}"
    return f"{type(exc).__name__}: {exc}"
