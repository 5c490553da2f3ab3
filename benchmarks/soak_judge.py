"""Whether a soak's series stayed flat after its warm-up: pure, over numbers already sampled.

The rule for a growth series (RSS or open files but sockets of one process, the telemetry
spool, nginx's caches, the shipper's lag), with v0 its first sample at or after the warm-up
and v1..vn the samples after it:

    limit = v0 + max(GROWTH_LIMIT * v0, floor)        GROWTH_LIMIT = 10 %
    flat  = every vi <= limit, and the process is the same one throughout (same pid, present)

`floor` is the series' resolution: a change smaller than it is noise, not growth (a series at
0, such as an empty spool, may grow by that much). A series with fewer than two samples after
the warm-up is not judged. Latency is judged against the target instead of its own start:
every window starting at or after the warm-up must have a segment p99 under 100 ms, no error
and at least one segment (vegeta_results' rule for a window).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

GROWTH_LIMIT = 0.10  # issue 15: no growth beyond 10 % after warm-up
MIB = 2**20


@dataclass(frozen=True)
class Series:
    """One quantity sampled over the soak: (seconds since the load started, value or None when
    it could not be read or its process was not there)."""

    name: str
    unit: str  # "bytes", "files", "ms"
    points: tuple[tuple[float, float | None], ...]
    floor: float = 0.0
    pids: tuple[int | None, ...] = ()  # a process series: whose value each point is
    judged: bool = True  # False: reported only (stores grow by design)


@dataclass(frozen=True)
class Verdict:
    series: str
    unit: str
    ok: bool | None  # None: not judged
    baseline: float | None = None  # v0; for latency, the target
    baseline_t_s: float | None = None
    worst: float | None = None
    worst_t_s: float | None = None
    limit: float | None = None
    note: str = ""

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "not judged"}[self.ok]


def judge_flat(series: Series, warmup_s: float) -> Verdict:
    """The growth rule above, for one series."""
    indexes = [i for i, (t, _) in enumerate(series.points) if t >= warmup_s]
    if len(indexes) < 2:
        return Verdict(series.name, series.unit, None, note="fewer than two samples after warm-up")
    first = indexes[0]
    t0, v0 = series.points[first]
    if v0 is None:
        return Verdict(series.name, series.unit, None, note=f"not there at {t0:.0f} s")
    limit = v0 + max(GROWTH_LIMIT * v0, series.floor)
    worst_t, worst = t0, v0
    problems = []
    for i in indexes[1:]:
        t, v = series.points[i]
        if v is None:
            problems.append(f"gone at {t:.0f} s")
            break
        if series.pids and series.pids[i] != series.pids[first]:
            problems.append(
                f"restarted at {t:.0f} s (pid {series.pids[first]} -> {series.pids[i]})"
            )
            break
        if v > worst:
            worst_t, worst = t, v
    if worst > limit:
        problems.insert(0, f"grew {_growth(v0, worst)} by {worst_t:.0f} s")
    return Verdict(
        series.name, series.unit, not problems, v0, t0, worst, worst_t, limit, "; ".join(problems)
    )


def _growth(v0: float, v: float) -> str:
    return f"{(v - v0) / v0:+.1%}" if v0 else f"from 0 to {v:,.0f}"


def judge_latency(
    windows: Sequence[dict[str, Any]], window_s: float, warmup_s: float, target_ms: float
) -> Verdict:
    """Every window from the warm-up on: segment p99 < target, no error, some segments. Times
    are the windows' ends, as the samples beside them."""
    after = [w for w in windows if w["from_s"] >= warmup_s]
    name = "segment p99 per window"
    if not after:
        return Verdict(name, "ms", None, note="no window after warm-up")
    worst = max(after, key=lambda w: w["segment_p99_ms"])
    failed = [w for w in after if not w["ok"]]
    errors = sum(w["errors"] for w in after)
    note = ""
    if failed:
        note = (
            f"{len(failed)} of {len(after)} windows failed, the first ending at "
            f"{failed[0]['from_s'] + window_s:.0f} s" + (f"; {errors:,} errors" if errors else "")
        )
    return Verdict(
        name,
        "ms",
        not failed,
        baseline=target_ms,
        worst=worst["segment_p99_ms"],
        worst_t_s=worst["from_s"] + window_s,
        limit=target_ms,
        note=note,
    )


def judge_all(
    series: Sequence[Series],
    windows: Sequence[dict[str, Any]],
    window_s: float,
    warmup_s: float,
    target_ms: float,
) -> list[Verdict]:
    """The latency verdict, then one per judged series."""
    return [
        judge_latency(windows, window_s, warmup_s, target_ms),
        *(judge_flat(s, warmup_s) for s in series if s.judged),
    ]


def overall(verdicts: Sequence[Verdict]) -> bool | None:
    """False if any failed; True if all judged passed; None if none was judged."""
    judged = [v.ok for v in verdicts if v.ok is not None]
    if not judged:
        return None
    return all(judged)
