"""vegeta's results (`vegeta encode --to json`, a JSON object a line) read into the paced report.

Per endpoint class: requests, errors by status or kind, p50/p99/max latency. Per window of the
run: the segment p99, the errors on any endpoint and the listeners started so far (a listener
starts with its media playlist request). The run holds its listeners if every window has a
segment p99 under the target and no error.
"""

from __future__ import annotations

import json
import math
import re
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from benchmarks.histogram import LogHistogram
from benchmarks.vegeta_targets import EVENTS, INIT, KEY, PLAYLIST, SEGMENT

WINDOW_S = 5
P99_TARGET_MS = 100.0  # issue 13: p99 segment < 100 ms
ENDPOINTS = (SEGMENT, KEY, PLAYLIST, INIT, EVENTS)
NO_TARGETS = "no targets to attack"  # vegeta's last result(s) once a lazy targets file ends
# "Get \"http://...\": " before a transport error; addresses and ports inside it.
_METHOD_URL = re.compile(r'^[A-Z][a-z]+ "[^"]*": ')
_ADDRESS = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}:\d+")


@dataclass(frozen=True)
class Hit:
    kind: str  # endpoint class
    started_s: float  # Unix time the request started
    latency_us: int
    error: str | None  # None when the answer was a 2xx
    attack: str = ""  # vegeta's -name
    seq: int = 0  # the attack's request number: it was due at seq / rate after its start


def endpoint_of(method: str, url: str) -> str:
    """The endpoint class of a request from its method and URL."""
    path = url.split("?", 1)[0]
    if method == "POST" and path.endswith("/events"):
        return EVENTS
    if "/keys/" in path:
        return KEY
    if path.endswith(".m3u8"):
        return PLAYLIST
    if path.endswith("/init.mp4"):
        return INIT
    if path.endswith(".m4s"):
        return SEGMENT
    return "other"


def error_kind(code: int, error: str) -> str | None:
    """None for a 2xx answer, else "status 404" or a transport error without URL or ports."""
    if 200 <= code < 300 and not error:
        return None
    if code:
        return f"status {code}"
    text = _ADDRESS.sub("ADDR", _METHOD_URL.sub("", error))
    return text[:120] or "no answer"


def parse_hit(line: str) -> Hit | None:
    """One result line; None for vegeta's end-of-targets marker (no request was made)."""
    doc = json.loads(line)
    if not doc.get("url") and doc.get("error") == NO_TARGETS:
        return None
    started = datetime.fromisoformat(doc["timestamp"]).timestamp()
    return Hit(
        kind=endpoint_of(doc.get("method", "GET"), doc["url"]),
        started_s=started,
        latency_us=max(0, int(doc["latency"]) // 1000),  # nanoseconds
        error=error_kind(int(doc["code"]), doc.get("error") or ""),
        attack=doc.get("attack") or "",
        seq=int(doc.get("seq") or 0),
    )


@dataclass
class _Endpoint:
    latency: LogHistogram = field(default_factory=LogHistogram)
    errors: Counter[str] = field(default_factory=Counter)


@dataclass
class _Window:
    segments: LogHistogram = field(default_factory=LogHistogram)
    requests: int = 0
    errors: int = 0
    started: int = 0  # listeners whose first request (the media playlist) started in it


class PacedTally:
    """Hits folded into endpoint and window counts as they are read: the results of a 20,000
    listener run are read once, not kept.

    vegeta stamps a request when a worker sends it, not when it was due, so a generator short
    of CPU would send late and its latencies would not show it. Each attack's requests are
    due evenly (`intervals_s`, seconds between two): how late each was sent, relative to the
    most punctual one, is the generator's lag behind its schedule."""

    def __init__(
        self,
        start_s: float,
        phase_s: float,
        intervals_s: dict[str, float] | None = None,
        window_s: int = WINDOW_S,
    ) -> None:
        self.start_s = start_s
        self.phase_s = phase_s
        self.window_s = window_s
        self.intervals_s = intervals_s or {}
        # Per attack: sent - seq * interval, the attack's start as each request implies it.
        self._implied_starts: dict[str, array[float]] = {}
        # Whole windows: a request started in the last moments (or late, behind the schedule)
        # counts in the last window rather than opening a short one of its own.
        self.last_window = max(1, round(phase_s / window_s)) - 1
        self.endpoints: dict[str, _Endpoint] = {}
        self.windows: dict[int, _Window] = {}

    def add(self, hit: Hit) -> None:
        interval = self.intervals_s.get(hit.attack)
        if interval is not None:
            implied = self._implied_starts.setdefault(hit.attack, array("d"))
            implied.append(hit.started_s - hit.seq * interval)
        endpoint = self.endpoints.setdefault(hit.kind, _Endpoint())
        endpoint.latency.record(hit.latency_us)
        index = math.floor((hit.started_s - self.start_s) / self.window_s)
        index = min(max(0, index), self.last_window)
        window = self.windows.setdefault(index, _Window())
        window.requests += 1
        if hit.error is not None:
            endpoint.errors[hit.error] += 1
            window.errors += 1
        if hit.kind == SEGMENT:
            window.segments.record(hit.latency_us)
        elif hit.kind == PLAYLIST:
            window.started += 1

    def add_all(self, hits: Iterable[Hit | None]) -> None:
        for hit in hits:
            if hit is not None:
                self.add(hit)

    def endpoint_summary(self) -> dict[str, dict[str, Any]]:
        phase_s = self.phase_s
        out = {}
        for name in (*ENDPOINTS, *sorted(set(self.endpoints) - set(ENDPOINTS))):
            if name not in self.endpoints:
                continue
            e = self.endpoints[name]
            out[name] = {
                "requests": e.latency.count,
                "requests_per_s": round(e.latency.count / phase_s, 1),
                "errors": sum(e.errors.values()),
                "errors_by_kind": dict(e.errors.most_common()),
                "latency_ms": {
                    "p50": e.latency.percentile(50) / 1000,
                    "p99": e.latency.percentile(99) / 1000,
                    "max": e.latency.max / 1000,
                },
            }
        return out

    def schedule_lag(self) -> dict[str, dict[str, float]]:
        """Per attack: how late its requests were sent behind an even schedule (p99, max)."""
        out = {}
        for attack, implied in self._implied_starts.items():
            first = min(implied)
            lag = LogHistogram()
            for value in implied:
                lag.record_seconds(value - first)
            out[attack] = {"p99_ms": lag.percentile(99) / 1000, "max_ms": lag.max / 1000}
        return out

    def window_rows(self, p99_target_ms: float = P99_TARGET_MS) -> list[dict[str, Any]]:
        """Every window of the phase, those without a request included."""
        rows = []
        started = 0
        for index in range(self.last_window + 1):
            w = self.windows.get(index, _Window())
            started += w.started
            p99 = w.segments.percentile(99) / 1000
            rows.append(
                {
                    "from_s": index * self.window_s,
                    "listeners": started,
                    "requests": w.requests,
                    "segments": w.segments.count,
                    "segment_p99_ms": p99,
                    "errors": w.errors,
                    # Listeners but no segment at all is a stall, not a pass.
                    "ok": w.errors == 0 and p99 < p99_target_ms and w.segments.count > 0,
                }
            )
        return rows


def held_listeners(windows: list[dict[str, Any]], listeners: int) -> dict[str, Any]:
    """Whether the run held `listeners`, and if not, how many had started before it failed.

    Listeners all start within the first step (a segment duration or so), so a window that
    fails after that fails with all of them active: the run then holds none of its count."""
    failing = next((w for w in windows if not w["ok"]), None)
    if failing is None:
        return {"held": listeners, "held_all": bool(windows), "first_failing_window_s": None}
    before = [w for w in windows if w["from_s"] < failing["from_s"]]
    started_before = before[-1]["listeners"] if before else 0
    return {
        # Fewer than all started: the run held those, as a ramp would show; all started: none.
        "held": started_before if started_before < listeners else 0,
        "held_all": False,
        "first_failing_window_s": failing["from_s"],
        "listeners_started_before_failure": started_before,
    }
