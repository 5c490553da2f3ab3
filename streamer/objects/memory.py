"""InMemoryObjectStore: a dict behind a lock, for tests and throwaway runs."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from pathlib import Path

from streamer.errors import ObjectNotFound, StorageError
from streamer.objects.port import ObjectInfo, check_key

_READ_CHUNK_BYTES = 1024 * 1024


class InMemoryObjectStore:
    """Objects held in memory; every operation is atomic under one lock."""

    def __init__(self) -> None:
        self._objects: dict[str, tuple[bytes, ObjectInfo]] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"InMemoryObjectStore({len(self._objects)} objects)"

    def get(self, key: str) -> bytes:
        return self._entry(key)[0]

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(
                f"range of {key!r} needs start >= 0 and length >= 0, got {start} and {length}"
            )
        return self._entry(key)[0][start : start + length]

    def stat(self, key: str) -> ObjectInfo:
        return self._entry(key)[1]

    def list(self, prefix: str) -> Iterator[str]:
        with self._lock:
            keys = sorted(key for key in self._objects if key.startswith(prefix))
        return iter(keys)

    def put(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        check_key(key)
        body = bytes(data)
        info = ObjectInfo(
            key, len(body), hashlib.sha256(body).hexdigest(), content_type, cache_control
        )
        with self._lock:
            self._objects[key] = (body, info)
        return info

    def put_file(
        self, key: str, path: Path, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        check_key(key)
        body = bytearray()
        try:
            with Path(path).open("rb") as source:
                while chunk := source.read(_READ_CHUNK_BYTES):
                    body += chunk
        except OSError as exc:
            raise StorageError(
                f"cannot read {str(path)!r} to store it as {key!r}: {exc.strerror or exc}"
            ) from exc
        return self.put(key, bytes(body), content_type, cache_control)

    def delete(self, key: str) -> None:
        check_key(key)
        with self._lock:
            self._objects.pop(key, None)

    def _entry(self, key: str) -> tuple[bytes, ObjectInfo]:
        check_key(key)
        with self._lock:
            entry = self._objects.get(key)
        if entry is None:
            raise ObjectNotFound(key)
        return entry
