"""The access-log shipper (`streamer logship`): nginx's JSON access log into the session store.

nginx serves segments and writes one JSON line per request; nothing is written to the store
on the serving path. The shipper tails the log with a durable position and turns each line
into the telemetry the Python edge records for the same request (a segment delivery, a CMCD
sample, and the play claims deliveries complete), exactly once across crashes and rotations.
"""

from cdn_edge.logship.log_line import AccessLogLine, parse_line
from cdn_edge.logship.offsets import LogPosition, OffsetFile
from cdn_edge.logship.shards import expand_logs
from cdn_edge.logship.shipper import Shipper
from cdn_edge.logship.stats import ShipStats, combine_stats, render_metrics
from cdn_edge.logship.tailer import LogTailer
from cdn_edge.logship.timelines import TrackTimelines

__all__ = [
    "AccessLogLine",
    "LogPosition",
    "LogTailer",
    "OffsetFile",
    "ShipStats",
    "Shipper",
    "TrackTimelines",
    "combine_stats",
    "expand_logs",
    "parse_line",
    "render_metrics",
]
