"""The shared session-token vectors (tests/vectors/session_tokens.json), loaded once."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

VECTORS_FILE = Path(__file__).parent.parent / "vectors" / "session_tokens.json"


@functools.cache
def vectors() -> dict[str, Any]:
    return json.loads(VECTORS_FILE.read_text())


def vector_secrets() -> tuple[bytes, ...]:
    """The TEST-ONLY playback keys the vectors are signed with, newest first."""
    return tuple(bytes.fromhex(h) for h in vectors()["secrets_hex_test_only"])


def object_bytes(key: str, size: int) -> bytes:
    """Deterministic, key-specific content for a fake published object."""
    seed = key.encode()
    return (seed * (size // len(seed) + 1))[:size]


def cases() -> list[dict[str, Any]]:
    return list(vectors()["cases"])
