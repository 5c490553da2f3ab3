"""The start variant from measured throughput, and the per-user throughput history."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.policy.negotiation import (
    START_THROUGHPUT_FRACTION,
    DeviceCapabilities,
    Offer,
    choose_variants,
)
from cdn_edge.steering.throughput_history import MAX_AGE_S, RecentThroughput
from transcoder.ladder import DEFAULT_LADDER

LADDER = tuple(Offer(s.name, s.codec, s.bitrate_kbps, s.tier) for s in DEFAULT_LADDER)
ALL = DeviceCapabilities(frozenset({"aac", "opus", "flac"}))
AAC = DeviceCapabilities(frozenset({"aac"}))


@pytest.mark.parametrize(
    ("tier", "device", "measured", "start"),
    [
        ("free", ALL, None, "opus_160"),  # unknown: the best within the cap, as before
        ("free", ALL, 300, "opus_160"),  # 70 % of 300 is 210: 160 fits
        ("free", ALL, 200, "opus_96"),  # 140: 160 does not
        ("free", ALL, 100, "opus_32"),
        ("free", ALL, 20, "opus_32"),  # nothing fits: the lowest, not the default
        ("free", AAC, 200, "aac_96"),
        ("free", AAC, 240, "aac_160"),
        ("premium", AAC, 10_000, "aac_256"),
        ("premium", AAC, 300, "aac_160"),
        ("premium", ALL, 100_000, "opus_160"),  # FLAC is never the start
        # The cap still bounds the offer; throughput picks within it.
        ("premium", dataclasses.replace(ALL, network="cellular"), 10_000, "opus_96"),
    ],
)
def test_start_from_measured_throughput(
    tier: str, device: DeviceCapabilities, measured: int | None, start: str
) -> None:
    assert START_THROUGHPUT_FRACTION == 0.7
    assert choose_variants(tier, device, LADDER, measured)[0] == start  # type: ignore[arg-type]


def test_measurement_only_moves_the_start() -> None:
    assert choose_variants("free", ALL, LADDER, 200) == (
        "opus_96",
        "opus_160",
        "opus_32",
        "aac_160",
        "aac_96",
    )
    assert set(choose_variants("free", ALL, LADDER, 200)) == set(
        choose_variants("free", ALL, LADDER)
    )


def test_published_bandwidth_is_what_must_fit() -> None:
    # BANDWIDTH is the peak a player compares with its estimate; nominal rates understate it.
    ladder = tuple(
        dataclasses.replace(o, bandwidth_bps=round(o.nominal_kbps * 1000 * 1.15)) for o in LADDER
    )
    assert choose_variants("free", ALL, LADDER, 240)[0] == "opus_160"  # 160 <= 168
    assert choose_variants("free", ALL, ladder, 240)[0] == "opus_96"  # 184 > 168


devices = st.builds(
    DeviceCapabilities,
    codecs=st.frozensets(st.sampled_from(["aac", "opus", "flac"])),
    max_bitrate_kbps=st.none() | st.integers(1, 3000),
    network=st.none() | st.sampled_from(["wifi", "cellular"]),
    save_data=st.booleans(),
)
NOMINAL = {o.name: o.nominal_kbps for o in LADDER}


@given(devices, st.sampled_from(["free", "premium"]), st.integers(1, 5000), st.integers(1, 5000))
def test_more_throughput_never_starts_lower(
    device: DeviceCapabilities, tier: str, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    slow = choose_variants(tier, device, LADDER, low)  # type: ignore[arg-type]
    fast = choose_variants(tier, device, LADDER, high)  # type: ignore[arg-type]
    default = choose_variants(tier, device, LADDER)  # type: ignore[arg-type]
    assert set(slow) == set(fast) == set(default)
    if not default:  # a free listener whose device decodes FLAC alone: nothing to play
        assert (tier, device.codecs) == ("free", frozenset({"flac"}))
        return
    assert NOMINAL[slow[0]] <= NOMINAL[fast[0]] <= NOMINAL[default[0]]


# The history


def test_history_is_the_median_of_recent_samples() -> None:
    history = RecentThroughput()
    assert history.get("u1", 0.0) is None
    for t, kbps in enumerate([900, 100_000, 800, 1000, 850]):
        history.record("u1", kbps, float(t))
    assert history.get("u1", 10.0) == 900  # one burst does not set the start
    history.record("u1", 0, 11.0)  # nonsense is ignored
    assert history.get("u1", 12.0) == 900
    assert history.get("u2", 12.0) is None


def test_history_keeps_the_last_few_samples_and_forgets_old_ones() -> None:
    history = RecentThroughput(samples=3)
    for t, kbps in enumerate([100, 100, 100, 5000, 5000, 5000]):
        history.record("u1", kbps, float(t))
    assert history.get("u1", 10.0) == 5000
    assert history.get("u1", 5.0 + MAX_AGE_S + 1) is None
    assert len(history) == 0  # forgotten entirely


def test_history_is_bounded_lru() -> None:
    history = RecentThroughput(max_users=2)
    history.record("a", 100, 0.0)
    history.record("b", 200, 1.0)
    history.record("a", 150, 2.0)  # a is fresher than b now
    history.record("c", 300, 3.0)
    assert len(history) == 2
    assert history.get("b", 4.0) is None
    assert (history.get("a", 4.0), history.get("c", 4.0)) == (125, 300)


def test_history_validates() -> None:
    with pytest.raises(ValueError, match="max_users"):
        RecentThroughput(max_users=0)
