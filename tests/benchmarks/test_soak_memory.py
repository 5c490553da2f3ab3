"""The soak's split of RSS into private and shared pages, and the nginx gate's status as
series: a process's own growth is judged apart from pages it shares (nginx's zones)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from benchmarks.procstat import rss_bytes, rss_split
from benchmarks.soak_judge import MIB, judge_all
from benchmarks.soak_report import series_of
from benchmarks.soak_sampler import ProcessSample, Sample

SHARED_MIB = 16
# A parent and its child both touch every page of one shared anonymous mapping (as nginx's
# workers touch the zones), and the child waits to be read.
SHARE_PAGES = f"""
import mmap, os, sys, time
m = mmap.mmap(-1, {SHARED_MIB} * 2**20)  # MAP_SHARED | MAP_ANONYMOUS, as an nginx zone
m.write(b"x" * len(m))
if os.fork() == 0:
    sum(m[i] for i in range(0, len(m), 4096))
    print(os.getpid(), flush=True)
    time.sleep(60)
else:
    time.sleep(60)
"""


@pytest.fixture
def sharing_child() -> Iterator[int]:
    parent = subprocess.Popen([sys.executable, "-c", SHARE_PAGES], stdout=subprocess.PIPE)
    child = None
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        yield child
    finally:
        if child is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)
        parent.kill()
        parent.wait(timeout=10)
        if parent.stdout is not None:
            parent.stdout.close()


def test_pages_mapped_by_two_processes_are_shared_and_the_rest_private(
    sharing_child: int,
) -> None:
    split = rss_split(sharing_child)
    assert split is not None
    private, shared = split
    assert shared >= SHARED_MIB * MIB  # the mapping, touched by both (and code pages)
    assert private < SHARED_MIB * MIB  # the child's own pages alone
    assert abs(private + shared - rss_bytes(sharing_child)) <= 1 * MIB  # two reads of one RSS


def test_a_process_that_is_gone_has_no_split() -> None:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    assert rss_split(int(done.stdout)) is None


def _sample(t_s: float, private_mib: float, shared_mib: float, lua_kib: float, free: int) -> Sample:
    worker = ProcessSample(
        "nginx worker 1", "nginx", 40, int((private_mib + shared_mib) * MIB), 18, 60, 0,
        private_bytes=int(private_mib * MIB), shared_bytes=int(shared_mib * MIB),
    )  # fmt: skip
    return Sample(
        t_s=t_s,
        wall_s=1_800_000_000 + t_s,
        processes=(worker,),
        spool_bytes=0,
        nginx_cache_bytes=0,
        shipper_lag_bytes=0,
        stores_bytes={},
        machine_busy_ticks=0,
        telemetry_dropped=None,
        gate={
            "workers": {"40": {"pid": 40, "at": t_s, "lua_kib": lua_kib, "worker_tokens": 9}},
            "zones": {"streamer_budgets": {"capacity": 32 * MIB, "free_space": free}},
        },
    )


def test_private_growth_fails_while_shared_pages_are_reported() -> None:
    # Shared pages grow by half (a zone's pages touched as run F saw) and the total by 25 %:
    # the total and the private part are judged, the shared part is only reported.
    samples = [
        _sample(0, 20, 10, 900, 30 * MIB),
        _sample(60, 20, 10, 1000, 30 * MIB),
        _sample(120, 20.5, 15, 1100, 29 * MIB),
    ]
    series = {s.name: s for s in series_of(samples)}
    verdicts = {v.series: v for v in judge_all(list(series.values()), [], 60, 60, 100)}
    assert verdicts["private RSS nginx worker 1"].ok is True  # +2.5 %
    assert verdicts["RSS nginx worker 1"].ok is False  # +18 %
    assert "shared RSS nginx worker 1" not in verdicts
    assert [v for _, v in series["shared RSS nginx worker 1"].points] == [
        10 * MIB, 10 * MIB, 15 * MIB,
    ]  # fmt: skip
    # A leak of the worker's own fails on its own series, whatever the shared pages do.
    leaking = [*samples[:2], _sample(120, 24, 10, 1100, 30 * MIB)]
    verdicts = {v.series: v for v in judge_all(series_of(leaking), [], 60, 60, 100)}
    assert verdicts["private RSS nginx worker 1"].ok is False


def test_the_gate_status_becomes_reported_series_named_by_worker() -> None:
    samples = [_sample(0, 20, 10, 900, 30 * MIB), _sample(60, 20, 10, 1000, 29 * MIB)]
    series = {s.name: s for s in series_of(samples)}
    heap = series["Lua heap nginx worker 1"]
    assert [v for _, v in heap.points] == [900 * 1024, 1000 * 1024]
    assert heap.judged is False
    zone = series["zone free streamer_budgets"]
    assert [v for _, v in zone.points] == [30 * MIB, 29 * MIB] and zone.judged is False


def test_samples_without_a_split_or_status_add_no_series() -> None:
    bare = ProcessSample("edge worker 1", "edge", 20, 100 * MIB, 30, 20, 0)
    sample = Sample(0, 0, (bare,), 0, 0, 0, {}, 0, None)
    names = [s.name for s in series_of([sample])]
    assert "RSS edge worker 1" in names
    assert not any(
        n.startswith(("private RSS", "shared RSS", "Lua heap", "zone free")) for n in names
    )
