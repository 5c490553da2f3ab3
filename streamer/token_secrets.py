"""Token keys: the secret shared with the platform's account service, and one derived from it.

`settings.token_secret` is shared with the account service, which signs listener and ingest
JWTs with it directly (HS256; the `aud` claim keeps the two kinds apart). The key for our own
playback tokens (session, key and segment URLs) is derived from it with HMAC-SHA256 under a
label, so no JWT can ever be replayed as a playback token or the other way round.

In development (`token_secret` empty) a random secret is created once in
`settings.secrets_dir / "token_secret"`, mode 0600, and shared by every worker process.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from streamer.errors import ConfigError
from streamer.settings import Settings

logger = logging.getLogger(__name__)

TOKEN_SECRET_FILE = "token_secret"
MIN_SECRET_CHARS = 32  # HS256 wants a key of at least 256 bits (RFC 7518 section 3.2)
DEV_SECRET_BYTES = 32
PLAYBACK_LABEL = b"streamer-edge/playback-token/v1"


@dataclass(frozen=True)
class TokenSecrets:
    """The keys; the repr never shows them."""

    platform_key: bytes = field(repr=False)  # the shared secret: listener and ingest JWTs (HS256)
    playback_key: bytes = field(repr=False)  # signs session tokens (every playback URL)


def derive_secrets(master: bytes) -> TokenSecrets:
    return TokenSecrets(
        platform_key=master,
        playback_key=hmac.digest(master, PLAYBACK_LABEL, hashlib.sha256),
    )


def load_token_secrets(settings: Settings) -> TokenSecrets:
    """The configured secret, or the development one (created on first use). Blocks: startup."""
    if settings.token_secret:
        if len(settings.token_secret) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"STREAMER_TOKEN_SECRET has {len(settings.token_secret)} characters; "
                f"use at least {MIN_SECRET_CHARS} (64 hex digits from a random source is best)"
            )
        return derive_secrets(settings.token_secret.encode())
    return derive_secrets(_load_or_create(settings.secrets_dir / TOKEN_SECRET_FILE))


def previous_platform_keys(settings: Settings) -> tuple[bytes, ...]:
    """The platform keys retired by rotation, oldest first (`previous_token_secrets`)."""
    keys = tuple(
        part.strip().encode() for part in settings.previous_token_secrets.split(",") if part.strip()
    )
    for n, key in enumerate(keys, 1):
        if len(key) < MIN_SECRET_CHARS:
            raise ConfigError(
                f"STREAMER_PREVIOUS_TOKEN_SECRETS: secret {n} has {len(key)} characters;"
                f" a token secret has at least {MIN_SECRET_CHARS}"
            )
    return keys


def _load_or_create(path: Path) -> bytes:
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    text = secrets.token_hex(DEV_SECRET_BYTES)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "w") as f:  # mkstemp creates it 0600
                f.write(text + "\n")
                f.flush()
                os.fsync(f.fileno())
            # link() publishes a complete file and fails if one exists: two workers starting
            # at once must not each keep a different secret, nor read a half-written one.
            os.link(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except FileExistsError:
        return _read(path)
    except OSError as exc:
        raise ConfigError(f"cannot create development token secret {path}: {exc}") from exc
    logger.warning(
        "generated a development token secret in %s; set STREAMER_TOKEN_SECRET in production",
        path,
    )
    return text.encode()


def _read(path: Path) -> bytes:
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"cannot read token secret file {path}: {exc}") from exc
    if len(text) < MIN_SECRET_CHARS:
        raise ConfigError(f"token secret file {path} holds fewer than {MIN_SECRET_CHARS} chars")
    return text.encode()
