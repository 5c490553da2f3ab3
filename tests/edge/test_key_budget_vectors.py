"""The edge's key budgets answer every step of tests/vectors/key_budgets.json (the nginx gate's
budgets answer the same: tests/nginx_tier/test_key_budget_vectors.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.vectors.generate_key_budgets import CASES, python_answers

VECTORS = json.loads((Path(__file__).parent.parent / "vectors" / "key_budgets.json").read_text())[
    "cases"
]


@pytest.mark.parametrize("case", VECTORS, ids=[c["name"] for c in VECTORS])
def test_the_edge_answers_each_step(case: dict[str, Any]) -> None:
    assert python_answers(case) == case["expect"]


def test_the_worked_cases_are_in_the_vectors_as_worked_out() -> None:
    worked = [c for c in CASES if "expect" in c]
    assert len(worked) == 2
    for case in worked:
        (stored,) = [c for c in VECTORS if c["name"] == case["name"]]
        assert stored["expect"] == case["expect"]


def test_the_vectors_refuse_by_both_budgets_and_grant_after_refusals() -> None:
    answers = [tuple(step) for case in VECTORS for step in case["expect"]]
    assert {a[2] for a in answers} == {None, "session", "listener"}
    assert {a[1] for a in answers if a[0] == 429} > {1, 2}  # several Retry-After values
