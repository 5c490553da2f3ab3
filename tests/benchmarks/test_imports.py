"""Every benchmark module imports: `streamer bench` runs them as processes, so a stale import
would otherwise show only when an operator runs that benchmark."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import benchmarks
from streamer_app.cli import BENCHMARKS

MODULES = sorted(info.name for info in pkgutil.iter_modules(benchmarks.__path__))


@pytest.mark.parametrize("name", MODULES)
def test_benchmark_module_imports(name: str) -> None:
    importlib.import_module(f"benchmarks.{name}")


@pytest.mark.parametrize("name", BENCHMARKS)
def test_every_streamer_bench_name_is_a_runnable_benchmark(name: str) -> None:
    module = importlib.import_module(f"benchmarks.{name}")
    assert callable(getattr(module, "main", None)), f"benchmarks.{name} has no main()"


def test_streamer_bench_runs_the_ad_decision_benchmark() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamer_app.cli", "bench", "ad_decisions", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "--concurrency" in done.stdout
