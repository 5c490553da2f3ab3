"""Structured access logs: one JSON object per request, with its request id.

Paths are never logged: playlist paths and query strings carry bearer-like tokens. The route
name and the fields handlers add (session id, track, key id) say what was asked instead.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

ACCESS_LOGGER = "cdn_edge.access"
access_logger = logging.getLogger(ACCESS_LOGGER)

# Attributes every LogRecord has; whatever else a record carries came in through `extra`.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES:
                doc[name] = value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str, separators=(",", ":"))


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


def log_access(fields: dict[str, Any]) -> None:
    if access_logger.isEnabledFor(logging.INFO):
        access_logger.info("request", extra=fields)
