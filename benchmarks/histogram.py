"""A log-linear latency histogram in the manner of HdrHistogram: fixed relative precision.

Values are whole microseconds. Below `2 * 2**sub_bits` every value has its own bucket; above,
each power of two is split into `2**sub_bits` equal buckets, so a bucket is never wider than
1/2**sub_bits of its values (0.8 % with the default 7 bits). Recording is one `bit_length`,
a shift and a dict update; histograms of several processes merge by adding counts.

Percentiles use the nearest-rank definition (the smallest recorded value with at least p % of
the samples at or below it, numpy's `inverted_cdf`) and report the bucket's highest value, as
HdrHistogram does, so a reported percentile is never below the true one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

DEFAULT_SUB_BITS = 7  # 128 buckets per power of two: at most 1/128 (0.8 %) relative error


class LogHistogram:
    """Counts of non-negative integer values (microseconds) in log-linear buckets."""

    __slots__ = ("_counts", "_max", "_min", "_sum", "count", "sub_bits")

    def __init__(self, sub_bits: int = DEFAULT_SUB_BITS) -> None:
        if not 1 <= sub_bits <= 16:
            raise ValueError(f"sub_bits is {sub_bits}; use 1 to 16 (precision 2**-sub_bits)")
        self.sub_bits = sub_bits
        self._counts: dict[int, int] = {}
        self.count = 0
        self._sum = 0
        self._min = 0
        self._max = 0

    # Buckets

    def bucket_of(self, value: int) -> int:
        shift = value.bit_length() - self.sub_bits - 1
        if shift <= 0:
            return value
        return (shift << self.sub_bits) + (value >> shift)

    def bucket_bounds(self, index: int) -> tuple[int, int]:
        """The lowest and highest value that fall into bucket `index`."""
        shift = (index >> self.sub_bits) - 1
        if shift <= 0:
            return index, index
        top = index - (shift << self.sub_bits)
        return top << shift, ((top + 1) << shift) - 1

    # Recording

    def record(self, value: int, times: int = 1) -> None:
        if value < 0:
            raise ValueError(f"histogram values are >= 0, got {value}")
        index = self.bucket_of(value)
        self._counts[index] = self._counts.get(index, 0) + times
        if self.count == 0 or value < self._min:
            self._min = value
        if value > self._max:
            self._max = value
        self.count += times
        self._sum += value * times

    def record_seconds(self, seconds: float) -> None:
        self.record(max(0, round(seconds * 1_000_000)))

    def merge(self, other: LogHistogram) -> None:
        if other.sub_bits != self.sub_bits:
            raise ValueError(
                f"cannot merge a histogram of {other.sub_bits} sub-bucket bits "
                f"into one of {self.sub_bits}"
            )
        if other.count == 0:
            return
        for index, n in other._counts.items():
            self._counts[index] = self._counts.get(index, 0) + n
        self._min = other._min if self.count == 0 else min(self._min, other._min)
        self._max = max(self._max, other._max)
        self.count += other.count
        self._sum += other._sum

    # Reading

    @property
    def min(self) -> int:
        return self._min

    @property
    def max(self) -> int:
        return self._max

    @property
    def mean(self) -> float:
        return self._sum / self.count if self.count else 0.0

    def percentile(self, p: float) -> int:
        """The value at percentile `p` (0 to 100), nearest rank; 0 when empty."""
        if not 0 <= p <= 100:
            raise ValueError(f"percentile {p} is outside 0 to 100")
        if self.count == 0:
            return 0
        rank = max(1, math.ceil(p / 100 * self.count))
        seen = 0
        for index in sorted(self._counts):
            seen += self._counts[index]
            if seen >= rank:
                # Clamped to what was recorded: the top bucket's bound may exceed the max.
                return min(self.bucket_bounds(index)[1], self._max)
        return self._max

    def percentiles(self, ps: Iterable[float]) -> dict[float, int]:
        return {p: self.percentile(p) for p in ps}

    def buckets(self) -> Iterator[tuple[int, int, int]]:
        """(lowest value, highest value, count) of each non-empty bucket, ascending."""
        for index in sorted(self._counts):
            low, high = self.bucket_bounds(index)
            yield low, high, self._counts[index]

    # Transport between processes and into reports

    def to_dict(self) -> dict[str, object]:
        return {
            "sub_bits": self.sub_bits,
            "count": self.count,
            "sum": self._sum,
            "min": self._min,
            "max": self._max,
            "counts": {str(i): n for i, n in sorted(self._counts.items())},
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> LogHistogram:
        """The histogram `to_dict` wrote, read back from JSON or a pipe."""
        hist = cls(int(doc["sub_bits"]))
        counts = doc["counts"]
        if not isinstance(counts, Mapping):
            raise ValueError("histogram 'counts' must be a mapping of bucket index to count")
        hist._counts = {int(i): int(n) for i, n in counts.items()}
        hist.count = int(doc["count"])
        hist._sum = int(doc["sum"])
        hist._min = int(doc["min"])
        hist._max = int(doc["max"])
        if sum(hist._counts.values()) != hist.count:
            raise ValueError("histogram counts do not add up to its count")
        return hist
