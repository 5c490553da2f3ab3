"""The recorder keeps every event through store outages: spooled to disk, replayed once back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.model import AuditEntry
from streamer.audit.port import AuditLog
from streamer.audit.recorder import AuditRecorder
from streamer.audit.spool import AuditSpool
from streamer.audit.verify import verify_log
from streamer.errors import StorageError
from tests.contract.audit_logs import KEY, event

STREAM = "edge.host.w0"
_opened: list[AuditRecorder] = []


@pytest.fixture(autouse=True)
def close_recorders() -> Iterator[None]:
    yield
    while _opened:
        _opened.pop().close()


def recorder(log: AuditLog, spool_dir: Path, stream: str = STREAM) -> AuditRecorder:
    opened = AuditRecorder(lambda: log, KEY, stream, AuditSpool(spool_dir, stream))
    _opened.append(opened)
    return opened


def numbers(log: AuditLog, stream: str = STREAM) -> list[int]:
    return [entry.event.details["n"] for entry in log.entries(stream)]


def test_an_outage_spools_and_a_replay_loses_nothing(tmp_path: Path) -> None:
    log = InMemoryAuditLog()
    rec = recorder(log, tmp_path)
    assert rec.record([event(0)]) is True
    log.fail = "the store is down"
    assert rec.record([event(1), event(2)]) is False
    assert rec.record([event(3)]) is False
    assert rec.has_spooled()
    with pytest.raises(StorageError):
        rec.replay()  # still down: kept
    log.fail = None
    assert rec.replay() == 3
    assert not rec.has_spooled()
    assert numbers(log) == [0, 1, 2, 3]
    assert verify_log(log, KEY).problems == ()


def test_a_store_that_cannot_be_opened_costs_a_spooled_entry(tmp_path: Path) -> None:
    log = InMemoryAuditLog()
    up = False

    def open_log() -> AuditLog:
        if not up:
            raise StorageError("cannot connect")
        return log

    rec = AuditRecorder(open_log, KEY, STREAM, AuditSpool(tmp_path, STREAM))
    _opened.append(rec)
    assert rec.record([event(1)]) is False
    up = True
    assert rec.replay() == 1 and numbers(log) == [1]


class LandsThenTimesOut(InMemoryAuditLog):
    """Writes the first append, then raises as a timed-out request would."""

    def __init__(self) -> None:
        super().__init__()
        self.ambiguous = 1

    def append(self, entries: Sequence[AuditEntry]) -> None:
        super().append(entries)
        if self.ambiguous:
            self.ambiguous -= 1
            raise StorageError("request timed out")


def test_an_append_that_landed_after_all_is_not_written_twice(tmp_path: Path) -> None:
    log = LandsThenTimesOut()
    rec = recorder(log, tmp_path)
    assert rec.record([event(1), event(2)]) is False  # spooled: the outcome was unknown
    assert rec.record([event(3)]) is True
    assert rec.replay() == 2  # moved: found already in the store
    assert numbers(log) == [1, 2, 3]
    assert verify_log(log, KEY).problems == ()


def test_a_dead_process_spool_is_replayed_by_another_and_removed(tmp_path: Path) -> None:
    log = InMemoryAuditLog()
    log.fail = "down"
    dead = recorder(log, tmp_path, "cli.host")
    dead.record([event(1)])
    dead.close()  # its process ends with the event still spooled
    assert [p.name for p in tmp_path.iterdir()] == [dead._spool.path.name]  # type: ignore[union-attr]
    log.fail = None
    alive = recorder(log, tmp_path)
    assert alive.has_spooled()
    assert alive.replay() == 1
    assert numbers(log, "cli.host") == [1]  # into the stream it was meant for
    assert list(tmp_path.iterdir()) == []


def test_a_live_process_spool_is_left_to_it(tmp_path: Path) -> None:
    log = InMemoryAuditLog()
    log.fail = "down"
    owner = recorder(log, tmp_path, "cli.host")
    owner.record([event(1)])
    log.fail = None
    assert recorder(log, tmp_path).replay() == 0
    assert owner.replay() == 1 and numbers(log, "cli.host") == [1]


def test_a_torn_last_line_is_skipped_and_the_rest_replayed(tmp_path: Path) -> None:
    log = InMemoryAuditLog()
    log.fail = "down"
    dead = recorder(log, tmp_path)
    dead.record([event(1)])
    path = dead._spool.path  # type: ignore[union-attr]
    dead.close()
    with path.open("ab") as handle:
        handle.write(b'{"stream": "edge.host.w0", "after_se')  # killed mid-write
    log.fail = None
    assert recorder(log, tmp_path).replay() == 1 and numbers(log) == [1]


def test_with_store_and_disk_both_failing_the_caller_is_told(tmp_path: Path) -> None:
    log = InMemoryAuditLog()
    log.fail = "down"
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    rec = recorder(log, blocked)
    with pytest.raises(StorageError, match="cannot spool"):
        rec.record([event(1)])
