"""Whether each pathway is healthy: a pure state machine fed by probes and listener reports.

    healthy ──(FAILURES_TO_FAIL failed probes in a row)────────────────▶ unhealthy
    healthy ──(listener error ratio >= MAX_ERROR_RATIO over the window)─▶ unhealthy
    unhealthy ──(SUCCESSES_TO_RECOVER successful probes in a row)──────▶ healthy

Probes are the edge's own GET {base_url}/healthz (see `pathway_probes`); reports come from
listeners: a steering reload naming the pathway it plays from is a success, and telemetry
(CMCD, player events) may report errors. Time is passed in, never read: tests use a manual
clock, and nothing here sleeps.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass

FAILURES_TO_FAIL = 2  # one lost probe is noise; two in a row (20 s at the default) is an outage
SUCCESSES_TO_RECOVER = 3  # come back only once steadily up, so a flapping CDN stays last
ERROR_WINDOW_S = 60.0  # listener reports older than this no longer count
# The window is kept as this many counters, not one entry per report: a report counts for
# between one window and one window plus a bucket (60 to 70 s).
ERROR_BUCKETS = 6
MIN_WINDOW_REPORTS = 20  # below this many reports a ratio says nothing
MAX_ERROR_RATIO = 0.5


@dataclass(frozen=True)
class HealthPolicy:
    """The thresholds of the state machine; the defaults are the module constants."""

    failures_to_fail: int = FAILURES_TO_FAIL
    successes_to_recover: int = SUCCESSES_TO_RECOVER
    error_window_s: float = ERROR_WINDOW_S
    min_window_reports: int = MIN_WINDOW_REPORTS
    max_error_ratio: float = MAX_ERROR_RATIO

    def __post_init__(self) -> None:
        if self.failures_to_fail < 1 or self.successes_to_recover < 1:
            raise ValueError(
                f"failures_to_fail ({self.failures_to_fail}) and successes_to_recover "
                f"({self.successes_to_recover}) must be at least 1"
            )
        if self.error_window_s <= 0 or self.min_window_reports < 1:
            raise ValueError(
                f"error_window_s ({self.error_window_s}) must be positive and "
                f"min_window_reports ({self.min_window_reports}) at least 1"
            )
        if not 0 < self.max_error_ratio <= 1:
            raise ValueError(f"max_error_ratio must be in (0, 1], got {self.max_error_ratio}")

    @property
    def bucket_s(self) -> float:
        return self.error_window_s / ERROR_BUCKETS


@dataclass(frozen=True)
class ReportBucket:
    """Listener reports received in [start, start + bucket_s)."""

    start: float
    ok: int = 0
    errors: int = 0


@dataclass(frozen=True)
class PathwayState:
    """One pathway's health and the evidence behind it."""

    healthy: bool = True
    failed_probes: int = 0  # in a row, while healthy
    good_probes: int = 0  # in a row, while unhealthy
    buckets: tuple[ReportBucket, ...] = ()  # oldest first, within the error window
    since: float = 0.0  # when `healthy` last changed
    reason: str = ""  # why it is unhealthy, for logs and the health endpoint

    def window(self) -> tuple[int, int]:
        """(ok, errors) reported within the window, as of the last report."""
        return sum(b.ok for b in self.buckets), sum(b.errors for b in self.buckets)


def after_probe(
    state: PathwayState, ok: bool, now: float, policy: HealthPolicy = HealthPolicy()
) -> PathwayState:
    """The state after an active probe succeeded (`ok`) or failed."""
    if state.healthy:
        if ok:
            if state.failed_probes == 0:
                return state
            return dataclasses.replace(state, failed_probes=0)
        failed = state.failed_probes + 1
        if failed >= policy.failures_to_fail:
            return PathwayState(
                healthy=False,
                since=now,
                reason=f"{failed} health probes failed in a row",
            )
        return dataclasses.replace(state, failed_probes=failed)
    if not ok:
        return state if state.good_probes == 0 else dataclasses.replace(state, good_probes=0)
    good = state.good_probes + 1
    if good >= policy.successes_to_recover:
        # Back with a clean slate: errors from the outage must not fail it again at once.
        return PathwayState(healthy=True, since=now)
    return dataclasses.replace(state, good_probes=good)


def after_report(
    state: PathwayState, ok: bool, now: float, policy: HealthPolicy = HealthPolicy()
) -> PathwayState:
    """The state after a listener reported a success (`ok`) or an error on this pathway."""
    horizon = now - policy.error_window_s
    buckets = [b for b in state.buckets if b.start + policy.bucket_s > horizon]
    if buckets and now < buckets[-1].start + policy.bucket_s:
        last = buckets[-1]
    else:
        last = ReportBucket(now - now % policy.bucket_s)
        buckets.append(last)
    buckets[-1] = dataclasses.replace(last, ok=last.ok + ok, errors=last.errors + (not ok))
    state = dataclasses.replace(state, buckets=tuple(buckets))
    if not state.healthy or ok:
        return state
    good, bad = state.window()
    total = good + bad
    if total >= policy.min_window_reports and bad >= policy.max_error_ratio * total:
        return PathwayState(
            healthy=False,
            since=now,
            reason=(
                f"listeners reported {bad} errors in {total} reports within "
                f"{policy.error_window_s:g} s"
            ),
        )
    return state


class HealthBoard:
    """The current state of every pathway; the one mutable holder around the pure functions."""

    def __init__(self, pathway_ids: Iterable[str], policy: HealthPolicy = HealthPolicy()) -> None:
        self.policy = policy
        self._states = {pathway_id: PathwayState() for pathway_id in pathway_ids}
        self._unhealthy: frozenset[str] = frozenset()

    def probe(self, pathway_id: str, ok: bool, now: float) -> None:
        self._set(pathway_id, after_probe(self._states[pathway_id], ok, now, self.policy))

    def report(self, pathway_id: str, ok: bool, now: float) -> None:
        """A listener's word on a pathway; unknown ids are ignored (players send anything)."""
        state = self._states.get(pathway_id)
        if state is not None:
            self._set(pathway_id, after_report(state, ok, now, self.policy))

    def state(self, pathway_id: str) -> PathwayState:
        return self._states[pathway_id]

    def is_healthy(self, pathway_id: str) -> bool:
        return pathway_id not in self._unhealthy

    @property
    def unhealthy(self) -> frozenset[str]:
        """Ids of the unhealthy pathways; cheap, read on every playlist and steering request."""
        return self._unhealthy

    def _set(self, pathway_id: str, state: PathwayState) -> None:
        self._states[pathway_id] = state
        if state.healthy == (pathway_id in self._unhealthy):
            self._unhealthy = frozenset(p for p, s in self._states.items() if not s.healthy)
