"""Writes key_budgets.json: `python -m tests.vectors.generate_key_budgets`.

Key budgets are enforced in two places: the Python edge (`cdn_edge.playback.key_service`,
`spend_key`) and the nginx gate (`cdn_edge/nginx_tier/streamer_budget.lua`, `spend`). Both must
answer every step of these cases alike. The first two cases' answers are worked out by hand in
their notes (and asserted so by tests/edge/test_key_budget_vectors.py); the rest are what the
Python edge answers, pinned. The vectors are committed and checked as they are; run this only
to add cases, then review the diff.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from cdn_edge.errors import RateLimited
from cdn_edge.playback.key_service import spend_key
from cdn_edge.policy.key_budget import (
    LISTENER_BUDGET,
    SESSION_MARGIN,
    SESSION_RETRY_FACTOR,
    KeyBudget,
)
from cdn_edge.policy.rate_limit import TokenBuckets

OUT = Path(__file__).with_name("key_budgets.json")


def _steps(*rows: tuple[float, str, str]) -> list[dict[str, Any]]:
    return [{"at": at, "session": sid, "listener": uid} for at, sid, uid in rows]


def _pseudo_random_steps(count: int) -> list[dict[str, Any]]:
    """Two sessions of one listener fetching at uneven times (a fixed LCG, no `random`)."""
    state, at, rows = 12345, 0.0, []
    for _ in range(count):
        state = (1103515245 * state + 12345) % 2**31
        at = round(at + (state % 1000) / 250.0, 3)  # 0-4 s apart, ms resolution
        rows.append((at, "s-a" if state % 3 else "s-b", "u-1"))
    return _steps(*rows)


def _real_track_budget() -> KeyBudget:
    # 6 renditions of a 7-minute track, 8 key periods each: ceil(48 x 1.5) + 20 keys,
    # refilled over the track (cdn_edge.policy.key_budget's rule, worked by hand).
    capacity = 92
    assert capacity == math.ceil(6 * 8 * SESSION_RETRY_FACTOR) + SESSION_MARGIN
    return KeyBudget(capacity, capacity / 420.0)


CASES: list[dict[str, Any]] = [
    {
        "name": "session burst, then its refill",
        "note": "3 keys at 0 s; the 4th waits 2 s (1 token at 0.5/s); at 1 s 0.5 is back, so "
        "1 s more; at 2 s one token is back: granted, and the next waits 2 s again",
        "session_budget": [3, 0.5],
        "listener_budget": [100, 1.0],
        "steps": _steps(
            (0.0, "s1", "u1"),
            (0.0, "s1", "u1"),
            (0.0, "s1", "u1"),
            (0.0, "s1", "u1"),
            (1.0, "s1", "u1"),
            (2.0, "s1", "u1"),
            (2.0, "s1", "u1"),
        ),
        "expect": [
            [200, None, None],
            [200, None, None],
            [200, None, None],
            [429, 2, "session"],
            [429, 1, "session"],
            [200, None, None],
            [429, 2, "session"],
        ],
    },
    {
        "name": "listener across sessions",
        "note": "2 keys for the listener; the third session's key waits 20 s (1 at 0.05/s), "
        "10 s later 10 s more; the session's own token is spent even when the listener refuses",
        "session_budget": [10, 1.0],
        "listener_budget": [2, 0.05],
        "steps": _steps(
            (0.0, "s1", "u1"),
            (0.0, "s2", "u1"),
            (0.0, "s3", "u1"),
            (10.0, "s3", "u1"),
            (20.0, "s3", "u1"),
            (20.0, "s4", "u2"),
        ),
        "expect": [
            [200, None, None],
            [200, None, None],
            [429, 20, "listener"],
            [429, 10, "listener"],
            [200, None, None],
            [200, None, None],
        ],
    },
    {
        "name": "a real track's session budget, uneven times",
        "note": "what the Python edge answers (pinned)",
        "session_budget": None,  # filled below from the edge's sizing
        "listener_budget": [LISTENER_BUDGET.capacity, LISTENER_BUDGET.refill_per_s],
        "steps": _pseudo_random_steps(400),
    },
    {
        "name": "a tight listener budget, uneven times",
        "note": "what the Python edge answers (pinned)",
        "session_budget": [7, 0.3],
        "listener_budget": [5, 0.2],
        "steps": _pseudo_random_steps(200),
    },
]


def python_answers(case: dict[str, Any]) -> list[list[Any]]:
    """Each step's [status, Retry-After or None, refusing budget or None] from the edge."""
    now = [0.0]
    sessions = TokenBuckets(1, 1.0, lambda: now[0])
    listeners = TokenBuckets(1, 1.0, lambda: now[0])
    budget = KeyBudget(*case["session_budget"])
    listener = KeyBudget(*case["listener_budget"])
    answers: list[list[Any]] = []
    for step in case["steps"]:
        now[0] = step["at"]
        try:
            spend_key(sessions, listeners, step["session"], step["listener"], budget, listener)
        except RateLimited as exc:
            by = "session" if str(exc).startswith("session ") else "listener"
            answers.append([429, exc.retry_after_s, by])
        else:
            answers.append([200, None, None])
    return answers


def main() -> None:
    real = _real_track_budget()
    cases = []
    for case in CASES:
        case = dict(case)
        if case["session_budget"] is None:
            case["session_budget"] = [real.capacity, real.refill_per_s]
        answers = python_answers(case)
        if "expect" in case and case["expect"] != answers:
            raise SystemExit(f"{case['name']}: the edge answers {answers}, not the worked answers")
        case["expect"] = answers
        cases.append(case)
    OUT.write_text(json.dumps({"cases": cases}, indent=1) + "\n")


if __name__ == "__main__":
    main()
