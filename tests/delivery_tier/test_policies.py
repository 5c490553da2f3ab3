"""The delivery tier's pure parts: the segments mode, the restart backoff, the catch-up test."""

from __future__ import annotations

import os

import pytest

from cdn_edge.delivery_tier import SegmentsChoice, SegmentsModeUnavailable, choose_segments
from cdn_edge.delivery_tier.catch_up import shipped_to_end
from cdn_edge.delivery_tier.restarts import Backoff, GaveUp, Restarting, restart_delay
from cdn_edge.logship.offsets import LogPosition
from streamer.errors import ConfigError, StreamerError
from streamer.settings import load_settings

MISSING = "nginx binary 'nginx' is not on PATH; run ./dev setup"


def test_auto_is_nginx_when_installed_and_python_with_the_reason_otherwise() -> None:
    assert choose_segments("auto", None, tls=False) == SegmentsChoice("nginx")
    assert choose_segments("auto", MISSING, tls=False) == SegmentsChoice("python", MISSING)
    assert "TLS" in choose_segments("auto", None, tls=True).fallback_reason


def test_python_is_python_whatever_is_installed() -> None:
    assert choose_segments("python", None, tls=True) == SegmentsChoice("python")


@pytest.mark.parametrize(
    ("missing", "tls", "words"), [(MISSING, False, "./dev setup"), (None, True, "TLS")]
)
def test_explicit_nginx_that_cannot_run_is_an_error_naming_the_way_out(
    missing: str | None, tls: bool, words: str
) -> None:
    with pytest.raises(SegmentsModeUnavailable, match=words) as caught:
        choose_segments("nginx", missing, tls)
    assert "--segments python" in str(caught.value)


def test_the_setting_is_checked_at_load() -> None:
    assert load_settings(environ={}).segments == "auto"
    assert load_settings(environ={"STREAMER_SEGMENTS": "nginx"}).segments == "nginx"
    with pytest.raises(ConfigError, match="STREAMER_SEGMENTS is 'apache'"):
        load_settings(environ={"STREAMER_SEGMENTS": "apache"})


def test_the_shippers_niceness_is_checked_at_load() -> None:
    assert load_settings(environ={}).shipper_nice == 10
    assert load_settings(environ={"STREAMER_SHIPPER_NICE": "0"}).shipper_nice == 0
    for bad in ("-1", "20"):
        with pytest.raises(ConfigError, match=f"STREAMER_SHIPPER_NICE is {bad}; use 0"):
            load_settings(environ={"STREAMER_SHIPPER_NICE": bad})


def test_restart_delay_doubles_up_to_the_cap() -> None:
    policy = Backoff(initial_s=0.5, max_s=4.0)
    assert [restart_delay(policy, n) for n in range(6)] == [0.0, 0.5, 1.0, 2.0, 4.0, 4.0]


class _Proc:
    def __init__(self) -> None:
        self.alive = True
        self.stopped = False

    def running(self) -> bool:
        return self.alive

    def stop(self) -> int | None:
        self.stopped = True
        return -9


class _Starts:
    """A start function: hands out processes, or fails while `failing`."""

    def __init__(self) -> None:
        self.started: list[_Proc] = []
        self.failing = False

    def __call__(self) -> _Proc:
        if self.failing:
            raise StreamerError("port taken")
        self.started.append(_Proc())
        return self.started[-1]


def test_a_dead_child_is_reaped_and_restarted_after_its_backoff() -> None:
    starts = _Starts()
    child = Restarting("nginx", starts, Backoff(initial_s=1.0, max_s=8.0, stable_s=60.0))
    child.start(now=0.0)
    starts.started[0].alive = False
    child.check(now=5.0)  # crashed early: first failure, 1 s
    assert starts.started[0].stopped and child.handle is None
    child.check(now=5.9)
    assert len(starts.started) == 1
    child.check(now=6.0)
    assert len(starts.started) == 2 and child.handle is starts.started[1]
    starts.started[1].alive = False
    child.check(now=7.0)  # crashed again quickly: 2 s
    child.check(now=8.9)
    assert len(starts.started) == 2
    child.check(now=9.0)
    assert len(starts.started) == 3


def test_a_child_that_ran_long_starts_again_from_the_first_delay() -> None:
    starts = _Starts()
    child = Restarting("shipper", starts, Backoff(initial_s=1.0, max_s=8.0, stable_s=60.0))
    child.start(now=0.0)
    now = 0.0
    for _ in range(2):  # a crash loop: 1, 2, then 4 s
        starts.started[-1].alive = False
        child.check(now := now + 0.5)
        child.check(now := now + 2.0)
    starts.started[-1].alive = False
    child.check(now := now + 0.5)
    child.check(now + 3.9)
    assert len(starts.started) == 3
    child.check(now := now + 4.0)
    assert len(starts.started) == 4
    starts.started[-1].alive = False
    child.check(now := now + 900.0)  # it ran 900 s: back to 1 s
    child.check(now + 1.0)
    assert len(starts.started) == 5


def test_failed_starts_give_up_after_the_limit() -> None:
    starts = _Starts()
    child = Restarting("nginx", starts, Backoff(initial_s=1.0, max_s=1.0, max_failures=2))
    child.start(now=0.0)
    starts.failing = True
    starts.started[0].alive = False
    child.check(now=1.0)  # failure 1: the crash
    child.check(now=2.0)  # failure 2: a failed start
    with pytest.raises(GaveUp, match="nginx: restart failed: port taken"):
        child.check(now=3.0)


def _stat(size: int, ino: int = 7, dev: int = 1) -> os.stat_result:
    return os.stat_result((0o100644, ino, dev, 1, 0, 0, size, 0, 0, 0))


def test_shipped_to_end_only_at_the_end_of_the_current_file() -> None:
    at = LogPosition(device=1, inode=7, offset=100, head_len=100, head_sha256="x")
    assert shipped_to_end(at, _stat(100))
    assert not shipped_to_end(at, _stat(101))
    assert not shipped_to_end(at, _stat(0, ino=8))  # still on the rotated file
    assert shipped_to_end(None, _stat(0)) and not shipped_to_end(None, _stat(5))
    assert shipped_to_end(None, None)
