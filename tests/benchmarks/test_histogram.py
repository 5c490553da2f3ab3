"""The log-linear histogram against numpy on random data."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.histogram import DEFAULT_SUB_BITS, LogHistogram

PERCENTILES = (0, 1, 10, 50, 75, 90, 99, 99.9, 100)
RELATIVE_ERROR = 2.0**-DEFAULT_SUB_BITS  # a bucket is at most this wide, relative to its values


def _filled(values: np.ndarray) -> LogHistogram:
    hist = LogHistogram()
    for value in values.tolist():
        hist.record(value)
    return hist


@pytest.mark.parametrize(
    "draw",
    [
        lambda rng: rng.lognormal(7.0, 1.5, 50_000),  # latencies: ~1 ms, a long tail
        lambda rng: rng.uniform(0, 300, 5_000),  # small values, exact buckets
        lambda rng: rng.exponential(20_000, 20_000),
        lambda rng: rng.pareto(1.2, 20_000) * 1000,
    ],
    ids=["lognormal", "small-uniform", "exponential", "pareto"],
)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_percentiles_match_numpy_within_a_bucket(draw, seed):
    values = np.floor(draw(np.random.default_rng(seed))).astype(np.int64)
    hist = _filled(values)
    for p in PERCENTILES:
        exact = int(np.percentile(values, p, method="inverted_cdf"))
        got = hist.percentile(p)
        # Never below the true value (the bucket's top), never more than a bucket above it.
        assert exact <= got <= exact + max(1, int(exact * RELATIVE_ERROR)), (p, exact, got)
    assert hist.count == len(values)
    assert hist.min == values.min()
    assert hist.max == values.max()
    assert hist.mean == pytest.approx(values.mean())


def test_every_value_falls_inside_its_bucket():
    hist = LogHistogram(sub_bits=4)
    for value in [*range(5000), 2**20 - 1, 2**20, 2**40 + 12345]:
        low, high = hist.bucket_bounds(hist.bucket_of(value))
        assert low <= value <= high
        assert high - low <= max(0, value // 2**4)


def test_buckets_tile_the_line_without_gaps():
    hist = LogHistogram(sub_bits=3)
    expected_low = 0
    for index in range(hist.bucket_of(10**6) + 1):
        low, high = hist.bucket_bounds(index)
        assert low == expected_low
        expected_low = high + 1


def test_merge_equals_recording_everything_in_one():
    rng = np.random.default_rng(7)
    a_values = rng.integers(0, 10**6, 3000)
    b_values = rng.integers(0, 10**4, 3000)
    merged = _filled(a_values)
    merged.merge(_filled(b_values))
    whole = _filled(np.concatenate([a_values, b_values]))
    assert merged.to_dict() == whole.to_dict()


def test_merging_into_an_empty_histogram_keeps_the_minimum():
    empty = LogHistogram()
    empty.merge(_filled(np.array([500, 700])))
    assert (empty.min, empty.max, empty.count) == (500, 700, 2)


def test_round_trip_through_a_dict():
    hist = _filled(np.random.default_rng(3).integers(0, 10**7, 1000))
    again = LogHistogram.from_dict(hist.to_dict())
    assert again.to_dict() == hist.to_dict()
    assert again.percentile(99) == hist.percentile(99)


def test_an_empty_histogram_reports_zeros():
    hist = LogHistogram()
    assert (hist.percentile(99), hist.mean, hist.max, hist.count) == (0, 0.0, 0, 0)


def test_refuses_negative_values_and_bad_percentiles():
    hist = LogHistogram()
    with pytest.raises(ValueError, match=">= 0"):
        hist.record(-1)
    with pytest.raises(ValueError, match="outside 0 to 100"):
        hist.percentile(101)
    with pytest.raises(ValueError, match="cannot merge"):
        hist.merge(LogHistogram(sub_bits=3))


def test_record_seconds_rounds_to_microseconds():
    hist = LogHistogram()
    hist.record_seconds(0.0123456)
    assert hist.max == 12346
