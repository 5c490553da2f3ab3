"""The chaos suite: each scenario kills a process with SIGKILL under load and counts what
survived. Its figures are printed at the end of the run (docs/reliability.md, "Chaos")."""

from __future__ import annotations

from typing import Any

from tests.chaos import figures

SUITE = "chaos"


def pytest_terminal_summary(terminalreporter: Any) -> None:
    summary = figures.lines()
    if summary:
        terminalreporter.write_sep("=", SUITE)
        for line in summary:
            terminalreporter.write_line(line)
