"""The figures the suites report (docs/reliability.md quotes them), collected while they run
and printed at the end of the pytest run by the suites' conftest files."""

from __future__ import annotations

from collections import defaultdict

_FIGURES: dict[str, dict[str, dict[str, int]]] = defaultdict(dict)


def record(suite: str, label: str, **numbers: int) -> None:
    """Add `numbers` to the figures of `label` in `suite`."""
    figures = _FIGURES[suite].setdefault(label, {})
    for name, value in numbers.items():
        figures[name] = figures.get(name, 0) + value


def totals(suite: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for figures in _FIGURES[suite].values():
        for name, value in figures.items():
            out[name] = out.get(name, 0) + value
    return out


def lines(suite: str, template: str) -> list[str]:
    """One line per label, then the total, each `template` filled with the numbers."""
    labels = _FIGURES.get(suite, {})
    if not labels:
        return []
    out = [f"{label}: {template.format(**figures)}" for label, figures in labels.items()]
    return [*out, f"total: {template.format(**totals(suite))}"]
