"""Ids unique across processes without a random draw per id (which costs more than the rest
of a request's id handling): a random prefix per process, then a counter."""

from __future__ import annotations

import itertools
import secrets

PREFIX_BYTES = 5  # 40 random bits per process: collisions need about a million processes


class UniqueIds:
    def __init__(self) -> None:
        self._prefix = secrets.token_hex(PREFIX_BYTES)
        self._counter = itertools.count(1)

    def next(self) -> str:
        """A new id: 10 hex characters of prefix, then at least 6 of counter."""
        return f"{self._prefix}{next(self._counter):06x}"
