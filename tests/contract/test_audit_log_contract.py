"""The AuditLog contract, run against every log in `AUDIT_LOGS`; the recorder over each."""

from __future__ import annotations

import threading

import pytest

from streamer.audit.chain import head_of, link, verify_stream
from streamer.audit.errors import StreamConflict
from streamer.audit.model import StreamHead
from streamer.audit.port import AuditLog
from streamer.audit.recorder import AuditRecorder
from streamer.audit.verify import verify_log
from tests.contract import audit_logs
from tests.contract.audit_logs import KEY, OpenLog, event
from tests.contract.session_stores import in_threads

open_log = audit_logs.open_log
audit_log = audit_logs.audit_log


def test_appended_entries_read_back_equal_in_order(audit_log: AuditLog) -> None:
    entries = link(KEY, "edge.h.w0", None, [event(n, extra={"a": [1, "é"]}) for n in range(5)])
    audit_log.append(entries[:2])
    audit_log.append(entries[2:])
    assert tuple(audit_log.entries("edge.h.w0")) == entries
    assert tuple(audit_log.entries("edge.h.w0", after_seq=3)) == entries[3:]
    assert audit_log.tail("edge.h.w0") == head_of(entries[-1])
    assert audit_log.heads() == [head_of(entries[-1])]
    assert audit_log.streams() == ["edge.h.w0"]


def test_an_unknown_stream_is_empty(audit_log: AuditLog) -> None:
    assert audit_log.tail("nobody") is None
    assert list(audit_log.entries("nobody")) == []
    assert audit_log.heads() == [] and audit_log.streams() == []


def test_streams_are_kept_apart(audit_log: AuditLog) -> None:
    a = link(KEY, "a", None, [event(1), event(2)])
    b = link(KEY, "b", None, [event(3)])
    audit_log.append(a)
    audit_log.append(b)
    assert tuple(audit_log.entries("a")) == a and tuple(audit_log.entries("b")) == b
    assert [h.stream for h in audit_log.heads()] == ["a", "b"]
    assert audit_log.streams() == ["a", "b"]


def test_a_taken_position_is_a_conflict_and_nothing_is_written(audit_log: AuditLog) -> None:
    first = link(KEY, "s", None, [event(1), event(2)])
    audit_log.append(first)
    rival = link(KEY, "s", head_of(first[0]), [event(7), event(8), event(9)])  # seqs 2, 3, 4
    with pytest.raises(StreamConflict) as caught:
        audit_log.append(rival)
    assert caught.value.stream == "s"
    assert tuple(audit_log.entries("s")) == first
    assert audit_log.tail("s") == head_of(first[-1])


def test_concurrent_appends_at_one_position_have_one_winner(audit_log: AuditLog) -> None:
    base = link(KEY, "s", None, [event(0)])
    audit_log.append(base)
    rivals = [link(KEY, "s", head_of(base[0]), [event(n)]) for n in range(1, 5)]
    start = threading.Barrier(len(rivals))

    def append(n: int) -> bool:
        start.wait()
        try:
            audit_log.append(rivals[n])
            return True
        except StreamConflict:
            return False

    won = in_threads(append, len(rivals))
    assert won.count(True) == 1
    assert tuple(audit_log.entries("s")) == (base[0], rivals[won.index(True)][0])


def test_entries_outlive_the_connection(open_log: OpenLog) -> None:
    first = open_log()
    entries = link(KEY, "s", None, [event(1)])
    first.append(entries)
    first.close()
    assert tuple(open_log().entries("s")) == entries


def test_recorders_sharing_a_stream_never_fork_it(open_log: OpenLog) -> None:
    recorders = [AuditRecorder(open_log, KEY, "cli.host", None) for _ in range(3)]

    def record(n: int) -> None:
        for i in range(8):
            recorders[n].record([event(100 * n + i)])

    in_threads(record, len(recorders))
    log = open_log()
    entries = list(log.entries("cli.host"))
    assert [e.seq for e in entries] == list(range(1, 25))
    assert sorted(e.event.details["n"] for e in entries) == sorted(
        100 * n + i for n in range(3) for i in range(8)
    )
    report = verify_log(log, KEY)
    assert report.problems == () and report.checked == 24


def test_a_checkpoint_behind_its_entries_is_read_past(audit_log: AuditLog) -> None:
    entries = link(KEY, "s", None, [event(n) for n in range(3)])
    audit_log.append(entries)
    assert audit_log.tail("s") == StreamHead("s", 3, entries[-1].hash)
    assert verify_stream(KEY, "s", audit_log.entries("s"), head_of(entries[0])).problem is None
