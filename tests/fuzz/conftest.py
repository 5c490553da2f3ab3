"""Fuzzing fixtures: the real edge (ingest API mounted) on a loopback port, without nginx;
and the figures at the end of the run: inputs tried and crashes or 5xx per property."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.security import figures
from tests.security.world import World, world

SUITE = "fuzzing"
FIGURE = "inputs tried {inputs}, crashes or 5xx {crashes}"


@pytest.fixture(scope="module")
def edge_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("fuzz"), nginx=False) as built:
        yield built


def pytest_terminal_summary(terminalreporter: Any) -> None:
    summary = figures.lines(SUITE, FIGURE)
    if summary:
        terminalreporter.write_sep("=", SUITE)
        for line in summary:
            terminalreporter.write_line(line)
