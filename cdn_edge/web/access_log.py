"""Logs as JSON lines: the process's log records, and the access log of every request.

Paths are never logged: playlist paths and query strings carry bearer-like tokens. The route
name and the fields handlers add (session id, track, key id) say what was asked instead.

The access log does not go through `logging`: a record, its handler lock and an unbuffered
write per request cost a fifth of a playlist's CPU. Lines are buffered and written when
`FLUSH_BYTES` have gathered or at the latest every `FLUSH_INTERVAL_S`, as nginx's
`access_log ... buffer= flush=` does, to the same stream as the other logs.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

ACCESS_LOGGER = "cdn_edge.access"  # its level switches the access log on (INFO) or off
FLUSH_BYTES = 64 * 1024
FLUSH_INTERVAL_S = 0.5
# Workers share stderr; on a pipe (journald, a container runtime) writes of at most PIPE_BUF
# bytes are never interleaved with another process's, so lines go out in chunks this size.
ATOMIC_WRITE_BYTES = 4096

# Attributes every LogRecord has; whatever else a record carries came in through `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
_dumps = json.JSONEncoder(default=str, separators=(",", ":")).encode


def iso_utc(seconds: float) -> str:
    return (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
        + f".{int(seconds % 1 * 1000):03d}Z"
    )


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": iso_utc(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return _dumps(doc)


def configure_logging(level: int = logging.INFO, json_lines: bool = True) -> None:
    """Log to stderr, as JSON lines by default; called by `server.run`, not at import."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else logging.Formatter("%(asctime)s %(levelname)s %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLog:
    """One JSON line per request, in the shape of the other log lines, buffered.

    `stream` None switches it off. `flush()` writes what is buffered; the app calls it every
    `FLUSH_INTERVAL_S` and at shutdown, so a line is at most that late.
    """

    def __init__(self, stream: TextIO | None, clock: Any = time.time) -> None:
        self._stream = stream
        self._clock = clock
        self._lines: list[str] = []
        self._buffered = 0
        self._second = -1
        self._second_text = ""

    @classmethod
    def from_logging(cls) -> AccessLog:
        """On stderr when the access logger is enabled for INFO (as `configure_logging` sets
        it for the server), off otherwise (as in tests and library use)."""
        enabled = logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
        return cls(sys.stderr if enabled else None)

    @property
    def enabled(self) -> bool:
        return self._stream is not None

    def write(self, fields: dict[str, Any]) -> None:
        if self._stream is None:
            return
        extra = _dumps(fields)[1:]  # '"k":v,...}' or, for no fields, '}'
        line = f'{{"ts":"{self._timestamp()}","level":"info","logger":"{ACCESS_LOGGER}",'
        line += f'"msg":"request"{"," if len(extra) > 1 else ""}{extra}\n'
        self._lines.append(line)
        self._buffered += len(line)
        if self._buffered >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._stream is None or not self._lines:
            return
        lines, self._lines, self._buffered = self._lines, [], 0
        try:
            for chunk in _whole_line_chunks(lines, ATOMIC_WRITE_BYTES):
                self._stream.write(chunk)
                self._stream.flush()  # one write(2) per chunk
        except (OSError, ValueError):  # a closed or broken log stream never fails a request
            pass

    def _timestamp(self) -> str:
        now = self._clock()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a request
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int(now % 1 * 1000):03d}Z"


def _whole_line_chunks(lines: list[str], limit: int) -> list[str]:
    """The lines joined into chunks of at most `limit` characters (a longer line alone)."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for line in lines:
        if current and size + len(line) > limit:
            chunks.append("".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        chunks.append("".join(current))
    return chunks
