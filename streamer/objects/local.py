"""LocalObjectStore: the object store as a directory, the embedded default.

Each object is a plain file at `root/<key>`. Its metadata (etag, content type, cache control)
lives in a sidecar `<name>~<stamp>.json` beside it, where the stamp is the body file's inode and
modification time. A put writes the body to a temporary file, writes the sidecar for that file's
stamp, then renames the body into place; the sidecar of the replaced body goes last. A reader
that opened a body therefore finds the sidecar written for exactly that body, and takes the
size from the open file: it never pairs one version's bytes with another's metadata.

`~` never occurs in a key (see `check_key`), so temporary files and sidecars cannot collide with
objects and `list` skips them. A copied tree has new inodes; `stat` then hashes the body once
and adopts the sidecar whose etag matches.

Known limit of a file system: `a` and `a/b` cannot both be objects (S3 allows it); the second
put fails with StorageError.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat as stat_mode
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from streamer.errors import InvalidObjectKey, ObjectNotFound, StorageError
from streamer.objects.port import ObjectInfo, check_key

COPY_CHUNK_BYTES = 1024 * 1024  # few system calls per master, yet a 16 GB WAV streams through
_STAT_ATTEMPTS = 5  # each retry means a concurrent put replaced the body we had opened
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)

# (etag, size) of what a writer wrote into the temporary body file.
_BodyWriter = Callable[[BinaryIO], tuple[str, int]]


class LocalObjectStore:
    """Objects as files under `root`, each with a JSON sidecar of its metadata."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"LocalObjectStore({str(self.root)!r})"

    # Reading

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise self._read_error(exc, key, "read") from exc

    def get_range(self, key: str, start: int, length: int) -> bytes:
        if start < 0 or length < 0:
            raise ValueError(
                f"range of {key!r} needs start >= 0 and length >= 0, got {start} and {length}"
            )
        path = self._path(key)
        try:
            with path.open("rb") as body:
                body.seek(start)
                return body.read(length)
        except OSError as exc:
            raise self._read_error(exc, key, "read") from exc

    def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            for _ in range(_STAT_ATTEMPTS):
                with path.open("rb") as body:
                    status = os.fstat(body.fileno())
                    meta = _read_sidecar(_sidecar_path(path, _stamp(status)))
                    if meta is None and _stamp(os.stat(path)) == _stamp(status):
                        # Still the current body, yet no sidecar: the tree was copied.
                        meta = self._adopt_sidecar(key, path, body, _stamp(status))
                if meta is not None:
                    return _info(key, status.st_size, meta)
                # Otherwise a put replaced the body (and retired its sidecar) under us.
        except OSError as exc:
            raise self._read_error(exc, key, "stat") from exc
        raise StorageError(
            f"object {key!r} in {self.root} was replaced {_STAT_ATTEMPTS} times while being read"
        )

    def list(self, prefix: str) -> Iterator[str]:
        # Start in the deepest directory the prefix names; no key lies under an invalid one.
        directory, _, _ = prefix.rpartition("/")
        if directory:
            try:
                check_key(directory)
            except InvalidObjectKey:
                return iter(())
            return self._walk(self.root / directory, directory + "/", prefix)
        return self._walk(self.root, "", prefix)

    # Writing

    def put(
        self, key: str, data: bytes, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        path = self._path(key)

        def write(out: BinaryIO) -> tuple[str, int]:
            out.write(data)
            return hashlib.sha256(data).hexdigest(), len(data)

        return self._store(key, path, write, content_type, cache_control)

    def put_file(
        self, key: str, path: Path, content_type: str, cache_control: str | None = None
    ) -> ObjectInfo:
        target = self._path(key)
        try:
            with Path(path).open("rb") as source:

                def copy(out: BinaryIO) -> tuple[str, int]:
                    digest = hashlib.sha256()
                    size = 0
                    while chunk := source.read(COPY_CHUNK_BYTES):
                        digest.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                    return digest.hexdigest(), size

                # _store turns its own OSErrors into StorageError; what is left is the source's.
                return self._store(key, target, copy, content_type, cache_control)
        except OSError as exc:
            raise StorageError(
                f"cannot read {str(path)!r} to store it as {key!r}: {exc.strerror or exc}"
            ) from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            status = os.stat(path)
            if not stat_mode.S_ISREG(status.st_mode):
                return  # a directory of other keys, not an object
            path.unlink(missing_ok=True)
            _sidecar_path(path, _stamp(status)).unlink(missing_ok=True)
        except _MISSING:
            return
        except OSError as exc:
            raise self._write_error(exc, key, "delete") from exc

    # Internals

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _store(
        self,
        key: str,
        path: Path,
        write_body: _BodyWriter,
        content_type: str,
        cache_control: str | None,
    ) -> ObjectInfo:
        temp = _temp_path(path)
        sidecar: Path | None = None
        committed = False
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with temp.open("xb") as out:
                etag, size = write_body(out)
                out.flush()
                os.fsync(out.fileno())
            stamp = _stamp(os.stat(temp))
            meta = {"etag": etag, "content_type": content_type, "cache_control": cache_control}
            sidecar = _write_sidecar(path, stamp, meta)
            previous = _current_stamp(path)
            os.replace(temp, path)
            committed = True
            _fsync_directory(path.parent)
        except OSError as exc:
            raise self._write_error(exc, key, "put") from exc
        finally:
            if not committed:
                _remove_quietly(temp)
                if sidecar is not None:
                    _remove_quietly(sidecar)
        if previous is not None and previous != stamp:
            _remove_quietly(_sidecar_path(path, previous))
        return ObjectInfo(key, size, etag, content_type, cache_control)

    def _adopt_sidecar(self, key: str, path: Path, body: BinaryIO, stamp: str) -> dict[str, Any]:
        """Find the sidecar whose etag matches the body's content and file it under `stamp`."""
        digest = hashlib.sha256()
        while chunk := body.read(COPY_CHUNK_BYTES):
            digest.update(chunk)
        etag = digest.hexdigest()
        for candidate in sorted(path.parent.glob(f"{path.name}~*.json")):
            meta = _read_sidecar(candidate)
            if meta is not None and meta["etag"] == etag:
                # A read-only copy: hash again next time rather than fail the read.
                with contextlib.suppress(OSError):
                    _write_sidecar(path, stamp, meta)
                return meta
        raise StorageError(
            f"object {key!r} in {self.root} has no metadata sidecar matching its content "
            f"(sha256 {etag}); it was not written by put, or its sidecar was removed"
        )

    def _walk(self, directory: Path, key_prefix: str, wanted: str) -> Iterator[str]:
        """Keys under `directory` that start with `wanted`, in lexicographic order."""
        try:
            with os.scandir(directory) as scan:
                entries = [(entry.name, entry.is_dir()) for entry in scan]
        except _MISSING:
            return
        except OSError as exc:
            raise StorageError(
                f"cannot list {wanted!r} in {self.root}: {exc.strerror or exc}"
            ) from exc
        # A directory `d` holds keys `d/...`; sorting it as "d/" puts its keys where they belong
        # among the plain names (".", "-" sort before "/", letters and digits after).
        children = sorted((name + "/" if is_dir else name, is_dir) for name, is_dir in entries)
        for sort_name, is_dir in children:
            key = key_prefix + sort_name
            try:
                check_key(key.rstrip("/"))  # skips sidecars, temporary files and strays
            except InvalidObjectKey:
                continue
            if not is_dir:
                if key.startswith(wanted):
                    yield key
            elif key.startswith(wanted) or wanted.startswith(key):
                yield from self._walk(directory / sort_name[:-1], key, wanted)

    def _read_error(self, exc: OSError, key: str, action: str) -> StorageError:
        if isinstance(exc, _MISSING):
            return ObjectNotFound(key)
        return self._write_error(exc, key, action)

    def _write_error(self, exc: OSError, key: str, action: str) -> StorageError:
        return StorageError(
            f"cannot {action} object {key!r} in {self.root}: {exc.strerror or exc}"
            + (f" ({exc.filename})" if exc.filename else "")
        )


def _stamp(status: os.stat_result) -> str:
    """Names one body file: live files never share an inode, mtime guards against reuse."""
    return f"{status.st_ino}-{status.st_mtime_ns}"


def _current_stamp(path: Path) -> str | None:
    try:
        return _stamp(os.stat(path))
    except FileNotFoundError:
        return None


def _sidecar_path(path: Path, stamp: str) -> Path:
    return path.with_name(f"{path.name}~{stamp}.json")


def _temp_path(path: Path) -> Path:
    return path.with_name(f"{path.name}~{uuid.uuid4().hex}.tmp")


def _write_sidecar(path: Path, stamp: str, meta: dict[str, Any]) -> Path:
    sidecar = _sidecar_path(path, stamp)
    temp = _temp_path(path)
    try:
        with temp.open("xb") as out:
            out.write(json.dumps(meta, sort_keys=True).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, sidecar)
    finally:
        _remove_quietly(temp)
    return sidecar


def _read_sidecar(sidecar: Path) -> dict[str, Any] | None:
    """The sidecar's metadata, or None when it is missing or unreadable (a crash mid-write)."""
    try:
        meta = json.loads(sidecar.read_bytes())
    except FileNotFoundError:
        return None
    except ValueError:
        return None
    if not (
        isinstance(meta, dict)
        and isinstance(meta.get("etag"), str)
        and isinstance(meta.get("content_type"), str)
        and isinstance(meta.get("cache_control"), str | None)
    ):
        return None
    return meta


def _info(key: str, size: int, meta: dict[str, Any]) -> ObjectInfo:
    return ObjectInfo(key, size, meta["etag"], meta["content_type"], meta["cache_control"])


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX: the new directory entry is data of the directory)."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _remove_quietly(path: Path) -> None:
    # Best effort: leftovers carry "~" in their names and are never listed.
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)
