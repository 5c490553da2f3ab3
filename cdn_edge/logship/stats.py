"""What the shipper has done and how far behind it is, and its Prometheus text exposition."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class ShipStats:
    """Counts since the shipper started, and its lag now."""

    lines: int = 0  # complete lines consumed, whatever became of them
    deliveries: int = 0  # segment deliveries written (a replay writes them again)
    cmcd_samples: int = 0
    keys_issued: int = 0  # content keys the nginx gate handed out (route "key", status 200)
    plays_counted: int = 0  # plays the store counted for the first time
    unverified: int = 0  # requests whose token did not verify (no session): counted only
    untimed: int = 0  # 200/206 of a session for an object the track record does not time
    malformed: dict[str, int] = field(default_factory=dict)  # reason -> lines skipped
    cmcd_malformed: int = 0  # CMCD fields or keys ignored (cdn_edge.telemetry.cmcd reasons)
    batches: int = 0
    write_failures: int = 0  # store writes that failed and were retried
    position_saves: int = 0  # durable saves of the position (at most two a second when busy)
    bytes_behind: int = 0  # bytes written to the log and not yet shipped
    seconds_behind: float = 0.0  # age of the newest shipped line while bytes are behind, else 0
    newest_ts: float = 0.0  # $msec of the newest line shipped
    inode: int = 0  # the file being read
    offset: int = 0


_COUNTERS = (
    ("lines", "logship_lines_total", "Access-log lines consumed"),
    ("deliveries", "logship_deliveries_total", "Segment deliveries written"),
    ("cmcd_samples", "logship_cmcd_samples_total", "CMCD samples written"),
    ("keys_issued", "logship_keys_issued_total", "Content keys the nginx gate handed out"),
    ("plays_counted", "logship_plays_counted_total", "Plays counted from shipped deliveries"),
    ("unverified", "logship_unverified_total", "Requests without a verified session"),
    ("untimed", "logship_untimed_total", "Served objects the track record does not time"),
    ("cmcd_malformed", "logship_cmcd_malformed_total", "CMCD fields or keys ignored"),
    ("batches", "logship_batches_total", "Batches written to the session store"),
    ("write_failures", "logship_write_failures_total", "Session store writes retried"),
    ("position_saves", "logship_position_saves_total", "Durable saves of the log position"),
)
_GAUGES = (
    ("bytes_behind", "logship_lag_bytes", "Bytes of the log not yet shipped"),
    ("seconds_behind", "logship_lag_seconds", "Age of the newest shipped line while behind"),
    ("newest_ts", "logship_newest_line_timestamp_seconds", "Time of the newest shipped line"),
    ("offset", "logship_offset_bytes", "Position in the current log file"),
)


_MAXIMA = frozenset({"seconds_behind", "newest_ts"})
_PER_FILE = frozenset({"inode", "offset"})  # no meaning summed over several files


def combine_stats(parts: Iterable[ShipStats]) -> ShipStats:
    """The stats of several shippers (one per log shard) as one: counts and bytes behind
    added, the lag in seconds and the newest line the largest, the file position left 0."""
    parts = list(parts)
    values: dict[str, object] = {}
    for f in fields(ShipStats):
        if f.name == "malformed":
            malformed: dict[str, int] = {}
            for part in parts:
                for reason, n in part.malformed.items():
                    malformed[reason] = malformed.get(reason, 0) + n
            values[f.name] = malformed
        elif f.name in _MAXIMA:
            values[f.name] = max((getattr(p, f.name) for p in parts), default=0.0)
        elif f.name not in _PER_FILE:
            values[f.name] = sum(getattr(p, f.name) for p in parts)
    return ShipStats(**values)  # type: ignore[arg-type]


def _label_value(value: str) -> str:
    # The exposition format's escapes for a label value.
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render_metrics(stats: ShipStats, labels: Mapping[str, str] | None = None) -> str:
    """The stats in Prometheus text format (for node_exporter's textfile collector); `labels`
    (such as the log file of a shard) are put on every sample."""
    common = ",".join(f'{k}="{_label_value(v)}"' for k, v in sorted((labels or {}).items()))
    plain = f"{{{common}}}" if common else ""
    out: list[str] = []
    for name, metric, help_text in _COUNTERS:
        out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} counter"]
        out.append(f"{metric}{plain} {getattr(stats, name)}")
    metric = "logship_malformed_lines_total"
    out += [f"# HELP {metric} Lines skipped as malformed, by reason", f"# TYPE {metric} counter"]
    prefix = f"{common}," if common else ""
    out += [f'{metric}{{{prefix}reason="{r}"}} {n}' for r, n in sorted(stats.malformed.items())]
    for name, metric, help_text in _GAUGES:
        out += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        out.append(f"{metric}{plain} {getattr(stats, name)}")
    return "\n".join(out) + "\n"
