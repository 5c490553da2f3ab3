"""`verify_log` catches rows edited, deleted and reordered directly in SQLite and Cassandra."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from streamer.audit.chain import Damage
from streamer.audit.port import AuditLog
from streamer.audit.recorder import AuditRecorder
from streamer.audit.verify import verify_log
from tests.backends.services import backend_params
from tests.contract.audit_logs import (
    AUDIT_LOGS,
    KEY,
    delete_entry,
    delete_head,
    edit_action,
    edit_actor,
    event,
    set_head,
    swap_entries,
)

STREAM = "edge.host.w0"
ENTRIES = 5


@pytest.fixture(params=backend_params(("sqlite", "scylla")))
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[AuditLog]:
    """A log holding one intact stream of five entries (and another stream beside it)."""
    opened = AUDIT_LOGS[request.param](tmp_path)
    recorder = AuditRecorder(lambda: opened, KEY, STREAM, None)
    for n in range(ENTRIES):
        recorder.record([event(n)])
    AuditRecorder(lambda: opened, KEY, "cli.host", None).record([event(99)])
    yield opened
    opened.close()


def test_an_intact_log_verifies(log: AuditLog) -> None:
    report = verify_log(log, KEY)
    assert report.problems == ()
    assert report.checked == ENTRIES + 1


Tamper = Callable[[AuditLog], None]


def _truncate_and_move_head(log: AuditLog) -> None:
    delete_entry(log, STREAM, 5)
    set_head(log, STREAM, 4, "f" * 64)  # without the chain key, the right hash is unknown


CASES: dict[str, tuple[Tamper, int, Damage]] = {
    "edited field": (lambda log: edit_actor(log, STREAM, 3, "listener:mallory"), 3, Damage.EDITED),
    "edited to an unknown action": (
        lambda log: edit_action(log, STREAM, 2, "key.stolen"),
        2,
        Damage.EDITED,
    ),
    "removed from the middle": (lambda log: delete_entry(log, STREAM, 3), 3, Damage.REMOVED),
    "removed at the tail": (lambda log: delete_entry(log, STREAM, 5), 5, Damage.REMOVED),
    "removed at the start": (lambda log: delete_entry(log, STREAM, 1), 1, Damage.REMOVED),
    "reordered": (lambda log: swap_entries(log, STREAM, 2, 4), 2, Damage.REORDERED),
    "checkpoint moved back over a removed tail": (_truncate_and_move_head, 4, Damage.HEAD),
    "checkpoint deleted": (lambda log: delete_head(log, STREAM), 5, Damage.HEAD),
}


@pytest.mark.parametrize("case", list(CASES))
def test_tampering_is_caught_at_the_first_broken_entry(log: AuditLog, case: str) -> None:
    tamper, seq, damage = CASES[case]
    tamper(log)
    report = verify_log(log, KEY)
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert (problem.stream, problem.seq, problem.damage) == (STREAM, seq, damage), problem
    assert problem.message.startswith(f"{STREAM}#{seq}: ")


def test_the_other_streams_still_verify(log: AuditLog) -> None:
    edit_actor(log, STREAM, 1, "listener:mallory")
    reports = {r.stream: r for r in verify_log(log, KEY).streams}
    assert reports["cli.host"].problem is None and reports["cli.host"].checked == 1
    assert reports[STREAM].problem is not None
