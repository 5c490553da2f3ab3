"""Hypothesis budgets for the fuzzers, and the count of inputs they tried.

Each fuzz test runs at two scales: `default` (in `./dev test`; the whole directory at this
scale takes well under a minute) and `heavy`, ten times the examples, marked `slow`. Every
property counts each input it is called with into the figures printed at the end of the run.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.security import figures

SUITE = "fuzzing"
HEAVY = 10
SCALES = [
    pytest.param(1, id="default"),
    pytest.param(HEAVY, id="heavy", marks=pytest.mark.slow),
]


def budget(examples: int, scale: int) -> settings:
    """`examples` inputs at this scale, no deadline (the machine is shared)."""
    return settings(
        max_examples=examples * scale,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        database=None,  # a failure is reported with its input; runs stay independent
    )


def tried(label: str) -> None:
    """Count one input of the property `label`."""
    figures.record(SUITE, label, inputs=1)
