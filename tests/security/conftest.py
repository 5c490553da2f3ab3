"""The attack suite's world (one per module: building it starts the edge and nginx) and its
figures at the end of the run: "attempts made N, leaked 0" per front."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.security import figures
from tests.security.world import World, world

SUITE = "attack suite"
FIGURE = "attempts made {attempts}, leaked {leaked}"


@pytest.fixture(scope="module")
def attack_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with world(tmp_path_factory.mktemp("attack")) as built:
        yield built


def pytest_terminal_summary(terminalreporter: Any) -> None:
    summary = figures.lines(SUITE, FIGURE)
    if summary:
        terminalreporter.write_sep("=", SUITE)
        for line in summary:
            terminalreporter.write_line(line)
