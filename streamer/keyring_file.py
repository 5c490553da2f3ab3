"""The key ring file: the key encryption keys (KEKs) that wrap every content key at rest.

Format, JSON: ``{"active": "kek-1a2b3c4d", "keys": {"kek-1a2b3c4d": "<base64 of 32 bytes>"}}``.
The file is written atomically (temporary file, fsync, rename) with mode 0600. When it does not
exist, `load_or_create_keyring` creates a development ring with one fresh KEK and says so loudly:
lose that file and every wrapped content key is lost with it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

from drm import DrmError, KeyEncryptionKey, KeyRing, new_kek
from streamer.errors import ConfigError

logger = logging.getLogger(__name__)

FILE_MODE = 0o600  # secrets: owner only
DIR_MODE = 0o700


def load_or_create_keyring(path: Path) -> KeyRing:
    """The ring in `path`; if there is no file, a new one-KEK development ring saved there."""
    try:
        return _load(path)
    except FileNotFoundError:
        pass
    ring = _new_ring()
    if _create(path, _encode(ring)):
        logger.warning(
            "generated a development key encryption key %s in %s; back this file up, "
            "every content key is wrapped with it",
            ring.active_id,
            path,
        )
        return ring
    # Another process created the file first; use its ring, not ours, or both would diverge.
    return _load(path)


def save_keyring(path: Path, ring: KeyRing) -> None:
    """Write `ring` to `path` atomically, mode 0600, replacing any previous ring."""
    tmp = _write_temp(path, _encode(ring))
    try:
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write key ring file {path}: {exc.strerror}") from exc
    _fsync_dir(path.parent)


def _new_ring() -> KeyRing:
    kek = new_kek()
    return KeyRing(kek.kek_id, (kek,))


def _encode(ring: KeyRing) -> bytes:
    keys = {k.kek_id: base64.b64encode(k.secret).decode("ascii") for k in ring.keys}
    return (json.dumps({"active": ring.active_id, "keys": keys}, indent=2) + "\n").encode()


def _load(path: Path) -> KeyRing:
    """Raises FileNotFoundError if `path` does not exist, ConfigError if it is not a ring."""
    try:
        text = path.read_bytes()
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read key ring file {path}: {exc.strerror}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        logger.warning(
            "key ring file %s has mode %o; other users may read it, use 0600",
            path,
            stat.S_IMODE(mode),
        )
    return _decode(path, text)


def _decode(path: Path, text: bytes) -> KeyRing:
    try:
        doc = json.loads(text, object_pairs_hook=_no_duplicates)
    except _DuplicateKey as exc:
        raise ConfigError(f"key ring file {path} names {exc.args[0]!r} twice") from None
    except ValueError as exc:
        # Only the position, never the text: the document holds secrets.
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        raise ConfigError(f"key ring file {path} is not valid UTF-8 JSON{where}") from None
    if not isinstance(doc, dict) or set(doc) != {"active", "keys"}:
        raise ConfigError(f'key ring file {path} must be an object of exactly "active" and "keys"')
    active, entries = doc["active"], doc["keys"]
    if not isinstance(active, str):
        raise ConfigError(f'key ring file {path}: "active" must be a KEK id string')
    if not isinstance(entries, dict) or not entries:
        raise ConfigError(f'key ring file {path}: "keys" must be a non-empty object of id: base64')
    keks = []
    for kek_id, encoded in entries.items():
        try:
            if not isinstance(encoded, str):
                raise ValueError
            secret = base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise ConfigError(
                f"key ring file {path}: secret of KEK {kek_id!r} is not a base64 string"
            ) from None
        try:
            keks.append(KeyEncryptionKey(kek_id, secret))
        except DrmError as exc:
            raise ConfigError(f"key ring file {path}: {exc}") from exc
    try:
        return KeyRing(active, tuple(keks))
    except DrmError as exc:
        raise ConfigError(f"key ring file {path}: {exc}") from exc


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict[str, object]:
    # json.loads keeps the last of two equal names; two secrets for one KEK id must not pass.
    doc: dict[str, object] = {}
    for name, value in pairs:
        if name in doc:
            raise _DuplicateKey(name)
        doc[name] = value
    return doc


def _write_temp(path: Path, data: bytes) -> Path:
    """`data` in a fsynced 0600 temporary file beside `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise ConfigError(f"cannot write key ring file {path}: {exc.strerror}") from exc
    tmp = Path(name)
    try:
        # mkstemp already uses 0600; fchmod makes it exact whatever the umask.
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write key ring file {path}: {exc.strerror}") from exc
    return tmp


def _create(path: Path, data: bytes) -> bool:
    """Atomically create `path` holding `data`; False if it already exists."""
    tmp = _write_temp(path, data)
    try:
        # link() publishes the complete file and, unlike replace(), fails if `path` exists:
        # two processes starting at once must not each generate and keep a different KEK.
        os.link(tmp, path)
    except FileExistsError:
        return False
    except OSError as exc:
        raise ConfigError(f"cannot create key ring file {path}: {exc.strerror}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)
    return True


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable; some filesystems cannot fsync directories, which is fine."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
