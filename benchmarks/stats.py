"""Small summaries for benchmark runs: medians with min and max, never a single sample."""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    median: float
    low: float
    high: float
    runs: int

    def __str__(self) -> str:
        return f"{self.median:.2f} (min {self.low:.2f}, max {self.high:.2f}, n={self.runs})"


def summarize(samples: list[float]) -> Summary:
    if not samples:
        raise ValueError("no samples to summarise")
    return Summary(statistics.median(samples), min(samples), max(samples), len(samples))
