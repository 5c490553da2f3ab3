"""Fuzzing fixtures: the real edge (ingest API mounted) on a loopback port, without nginx;
and the figures at the end of the run: inputs tried per property, and properties failed."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.fuzz.counting import SUITE
from tests.security import figures
from tests.security.world import World, world


@pytest.fixture(scope="module")
def edge_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("fuzz"), nginx=False) as built:
        yield built


def pytest_terminal_summary(terminalreporter: Any) -> None:
    summary = figures.lines(SUITE, "inputs tried {inputs}")
    if not summary:
        return
    failed = [r for r in terminalreporter.stats.get("failed", []) if "tests/fuzz/" in r.nodeid]
    terminalreporter.write_sep("=", SUITE)
    for line in summary:
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"properties failed (a crash or a 5xx): {len(failed)}")


@pytest.fixture(scope="module")
def tier_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The same, with the nginx tier in front (its Lua gate serves segments and playlists)."""
    with world(tmp_path_factory.mktemp("fuzz-tier")) as built:
        yield built
