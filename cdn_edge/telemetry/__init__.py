"""The edge's telemetry path: what the playback path gives off, and how it reaches the store.

`cmcd`, `cmsd` and `structured_fields` are the wire formats; `capture` turns requests into
telemetry items; `writer` batches them off the event loop into `sink` (the session store),
through `spooling_sink` (a disk spool while the store is slow or down); `session_recorder`
records sessions; `metrics` are their Prometheus series.
"""

__all__ = [
    "capture",
    "cmcd",
    "cmsd",
    "metrics",
    "session_recorder",
    "sink",
    "spooling_sink",
    "structured_fields",
    "writer",
]
