"""The chaos suite's figures (docs/reliability.md quotes them): one line per scenario, collected
while the scenarios run and printed at the end of the pytest run by tests/chaos/conftest.py."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Figures:
    """What one scenario counted; `extra` holds what only that scenario measures."""

    attempts: int = 0
    lost: int = 0  # acknowledged (202) events not in the store afterwards
    double_counted: int = 0  # plays counted beyond one per session
    partial_publishes: int = 0  # times current.json pointed at a version with objects missing
    recover_s: float = 0.0  # the longest time to recover over the attempts
    extra: dict[str, float] = field(default_factory=dict)

    def line(self, scenario: str) -> str:
        extra = "".join(f", {name} {value:g}" for name, value in self.extra.items())
        return (
            f"{scenario}: attempts {self.attempts}, events lost {self.lost}, plays"
            f" double-counted {self.double_counted}, partial publishes visible"
            f" {self.partial_publishes}, time to recover {self.recover_s:.1f} s{extra}"
        )


_FIGURES: dict[str, Figures] = {}


def record(
    scenario: str,
    *,
    lost: int = 0,
    double_counted: int = 0,
    partial_publishes: int = 0,
    recover_s: float = 0.0,
    **extra: float,
) -> None:
    """Add one attempt of `scenario`; counts add up, the time to recover keeps its maximum."""
    figures = _FIGURES.setdefault(scenario, Figures())
    figures.attempts += 1
    figures.lost += lost
    figures.double_counted += double_counted
    figures.partial_publishes += partial_publishes
    figures.recover_s = max(figures.recover_s, recover_s)
    for name, value in extra.items():
        figures.extra[name] = figures.extra.get(name, 0) + value


def lines() -> list[str]:
    return [figures.line(scenario) for scenario, figures in _FIGURES.items()]
