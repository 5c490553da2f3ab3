"""The object store interface: where masters and published renditions live.

Two implementations pass one contract suite: `LocalObjectStore` (a directory, the embedded
default) and `S3ObjectStore` (MinIO, Ceph RGW, SeaweedFS, ...). The edge only ever holds an
`ObjectReader`: data flows from ingest to the store to the edge, never back.

Calls are synchronous and may block; async callers run them in a thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Protocol, runtime_checkable

from streamer.errors import InvalidObjectKey

# Keys are plain relative paths of safe characters; this keeps them valid as file paths, S3 keys
# and URL path segments alike, and makes traversal impossible by construction.
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
MAX_KEY_LENGTH = 512

# An upload untouched this long is abandoned: masters are at most a few GB and go up in
# minutes, so a day is far beyond any live upload (and AWS's usual lifecycle rule).
ABANDONED_UPLOAD_AGE = timedelta(hours=24)

IMMUTABLE = "public, max-age=31536000, immutable"
"""Cache-Control for content-addressed objects (segments, init, versioned playlists)."""


def check_key(key: str) -> str:
    """Return `key` if it is a safe object key, else raise InvalidObjectKey."""
    if (
        len(key) > MAX_KEY_LENGTH
        or not _KEY_PATTERN.match(key)
        or any(part in (".", "..") for part in key.split("/"))
    ):
        raise InvalidObjectKey(
            f"object key {key[:80]!r} is not a relative path of letters, digits, '_', '-', '.'"
        )
    return key


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    etag: str  # strong validator; hex sha256 of the content where the backend allows it
    content_type: str
    cache_control: str | None = None


class ObjectReader(Protocol):
    """Read-only view of the store: what the edge is given."""

    def get(self, key: str) -> bytes:
        """The whole object. Raises ObjectNotFound."""
        ...

    def get_range(self, key: str, start: int, length: int) -> bytes:
        """`length` bytes from `start` (fewer at the end). Raises ObjectNotFound."""
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Metadata without the body. Raises ObjectNotFound."""
        ...

    def list(self, prefix: str) -> Iterator[str]:
        """Keys that start with `prefix`, in lexicographic order."""
        ...


class ObjectStore(ObjectReader, Protocol):
    """The writable store: what ingest is given."""

    def put(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Store `data` atomically: readers see the old object or the new one, never a part."""
        ...

    def put_file(
        self, key: str, path: Path, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        """Store a file's bytes atomically, in parts when large (masters)."""
        ...

    def delete(self, key: str) -> None:
        """Remove an object; removing a missing object is not an error."""
        ...


@runtime_checkable
class IncompleteUploads(Protocol):
    """A store whose interrupted uploads leave parts on the server (S3 multipart uploads).

    The local store has none: a put writes a temporary file and renames it into place (a crash
    mid-put leaves that file, which `list` skips; nothing sweeps it yet).
    """

    def cleanup_incomplete_uploads(self, older_than: timedelta) -> int:
        """Abort uploads started more than `older_than` ago; return how many."""
        ...
