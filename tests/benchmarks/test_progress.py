"""The progress line: drawn on a terminal, silent otherwise."""

from __future__ import annotations

import io

from benchmarks.progress import ProgressLine


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_draws_a_bar_on_a_terminal_and_clears_it():
    out = Terminal()
    line = ProgressLine(out)
    line.show("run 1: edge playlist", 5.0, 10.0, 500, 1, 0)
    assert "[############............]     5/10 s" in out.getvalue()
    assert "100/s" in out.getvalue() and "1 err" in out.getvalue()
    line.clear()
    assert out.getvalue().endswith("\r")


def test_says_starting_before_the_clients_start():
    out = Terminal()
    ProgressLine(out).show("paced", -1.0, 10.0, 0, 0, 0)
    assert "starting" in out.getvalue()


def test_writes_nothing_when_not_a_terminal():
    out = io.StringIO()
    line = ProgressLine(out)
    line.show("x", 1.0, 2.0, 3, 4, 5)
    line.clear()
    assert out.getvalue() == ""
