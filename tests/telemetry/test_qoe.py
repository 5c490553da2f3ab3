"""Per-session QoE from player events: a table of sessions and what they experienced."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.qoe import SessionQoe, played_progress, session_qoe
from streamer.telemetry.model import PlayerEvent
from tests.telemetry.builders import event, listening


def _played(events: list[PlayerEvent]) -> float:
    return session_qoe(events).played_s


CLEAN = [
    event("play", 0, 0, startup_ms=850, bitrate_kbps=96, pathway="edge"),
    event("heartbeat", 10, 10),
    event("bitrate_switch", 15, 15, bitrate_kbps=160),
    event("heartbeat", 25, 25),
    event("end", 30, 30),
]
STALLED = [
    event("play", 0, 0, startup_ms=1200, bitrate_kbps=160),
    event("heartbeat", 10, 10),
    event("stall_start", 12, 12),
    event("stall_end", 15, 12),
    event("heartbeat", 23, 20),
    event("error", 24, 21, error_code="media_error"),
    event("end", 26, 23),
]
SEEKED = [
    event("play", 0, 0, bitrate_kbps=96),
    event("heartbeat", 10, 10),
    event("seek", 12, 100, from_s=12),  # jumped ahead: only 12 s were played
    event("heartbeat", 20, 108),
    event("pause", 21, 109),
    event("play", 300, 109),  # five minutes of pause count nothing
    event("heartbeat", 310, 119),
    event("end", 311, 120),
]
UNREPORTED_SKIP = [
    event("play", 0, 0),
    event("heartbeat", 10, 10),
    event("heartbeat", 20, 200),  # 190 s in 10 s: a skip, not playback
    event("heartbeat", 30, 210),
]
NOTHING = [event("play", 0, 0), event("error", 1, 0, error_code="fatal_net", fatal=True)]


@pytest.mark.parametrize(
    ("events", "expected"),
    [
        (
            CLEAN,
            SessionQoe(
                played_s=30,
                startup_s=0.85,
                average_bitrate_kbps=(96 * 15 + 160 * 15) / 30,
                bitrate_switches=1,
                ended=True,
                pathway="edge",
            ),
        ),
        (
            STALLED,
            SessionQoe(
                played_s=23,
                startup_s=1.2,
                stalls=1,
                stalled_s=3,
                rebuffer_ratio=3 / 26,
                average_bitrate_kbps=160,
                errors=1,
                ended=True,
            ),
        ),
        (
            SEEKED,
            SessionQoe(played_s=12 + 8 + 1 + 10 + 1, average_bitrate_kbps=96, ended=True),
        ),
        (UNREPORTED_SKIP, SessionQoe(played_s=20)),
        (NOTHING, SessionQoe(errors=1, fatal_errors=1)),
        ([], SessionQoe()),
    ],
    ids=["clean", "stalled", "seeked", "unreported_skip", "fatal_error", "empty"],
)
def test_session_qoe(events: list[PlayerEvent], expected: SessionQoe) -> None:
    got = session_qoe(events)
    for name in SessionQoe.__dataclass_fields__:
        want, have = getattr(expected, name), getattr(got, name)
        if isinstance(want, float):
            assert have == pytest.approx(want), name
        else:
            assert have == want, name


def test_stall_left_open_ends_at_the_last_event() -> None:
    events = [event("play", 0, 0), event("stall_start", 5, 5), event("heartbeat", 9, 5)]
    qoe = session_qoe(events)
    assert (qoe.stalls, qoe.stalled_s) == (1, 4)


def test_stalls_before_the_first_play_are_startup_not_rebuffering() -> None:
    events = [event("stall_start", 0, 0), event("stall_end", 2, 0), *listening(10, start_s=2)]
    assert session_qoe(events).stalls == 0


def test_double_speed_counts_but_faster_does_not() -> None:
    assert _played([event("play", 0, 0), event("heartbeat", 10, 20)]) == 20
    assert _played([event("play", 0, 0), event("heartbeat", 10, 22)]) == 0


def test_progress_is_cumulative_per_event() -> None:
    steps = [total for _, total in played_progress(listening(30))]
    assert steps == [0, 10, 20, 30]


@given(st.randoms(use_true_random=False), st.integers(0, 3))
def test_duplicated_and_reordered_events_change_nothing(rng: random.Random, copies: int) -> None:
    events = SEEKED + STALLED[1:3]
    shuffled = events + [rng.choice(events) for _ in range(copies)]
    rng.shuffle(shuffled)
    assert session_qoe(shuffled) == session_qoe(events)
