"""Reading the log by whole lines across torn writes, rotations and truncations."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdn_edge.logship.errors import ShipperStateError
from cdn_edge.logship.log_line import TOO_LONG, TORN
from cdn_edge.logship.offsets import HEAD_BYTES, LogPosition, OffsetFile
from cdn_edge.logship.tailer import LogRead, LogTailer
from tests.logship.builders import line


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


def drain(tailer: LogTailer, max_lines: int = 1000) -> list[bytes]:
    """Every complete line readable now."""
    lines: list[bytes] = []
    while True:
        read = tailer.read(max_lines, 1 << 20)
        lines.extend(read.lines)
        if not (read.lines or read.skipped or read.switched):
            return lines


def test_reads_whole_lines_and_leaves_a_torn_last_line(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    a, b = line(), line()
    log.write_bytes(a + b[:10])
    tailer = LogTailer(log)
    assert drain(tailer) == [a.rstrip(b"\n")]
    assert tailer.position is not None and tailer.position.offset == len(a)
    append(log, b[10:])
    assert drain(tailer) == [b.rstrip(b"\n")]


def test_batches_are_bounded_by_lines(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [line() for _ in range(5)]
    log.write_bytes(b"".join(lines))
    tailer = LogTailer(log)
    first = tailer.read(2, 1 << 20)
    assert first.lines == tuple(x.rstrip(b"\n") for x in lines[:2])
    assert first.first_offset == 0 and first.position is not None
    assert tailer.read(2, 1 << 20).first_offset == first.position.offset


def test_resumes_from_a_saved_position(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    lines = [line() for _ in range(4)]
    log.write_bytes(b"".join(lines))
    tailer = LogTailer(log)
    tailer.read(2, 1 << 20)
    saved = tailer.position
    tailer.close()
    assert drain(LogTailer(log, saved)) == [x.rstrip(b"\n") for x in lines[2:]]


def test_rename_rotation_finishes_the_old_file_before_the_new_one(tmp_path: Path) -> None:
    log, rotated = tmp_path / "access.log", tmp_path / "access.log.1"
    clock = Clock()
    old = [line() for _ in range(3)]
    log.write_bytes(old[0])
    tailer = LogTailer(log, clock=clock, rotate_wait_s=5.0)
    assert drain(tailer) == [old[0].rstrip(b"\n")]
    os.rename(log, rotated)  # logrotate's `create`
    append(rotated, old[1])  # nginx writes on to the renamed file until it reopens
    new = [line() for _ in range(2)]
    log.write_bytes(new[0])  # nginx reopened (SIGUSR1)
    append(rotated, old[2])  # a worker that had not reopened yet
    assert drain(tailer) == [x.rstrip(b"\n") for x in old[1:]]
    assert drain(tailer) == []  # still inside the wait: the old file may grow
    clock.now += 6
    assert drain(tailer) == [new[0].rstrip(b"\n")]
    append(log, new[1])
    assert drain(tailer) == [new[1].rstrip(b"\n")]
    assert tailer.position is not None
    assert tailer.position.inode == os.stat(log).st_ino


def test_a_rotated_file_ending_in_a_torn_line_skips_it(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    a = line()
    log.write_bytes(a + b'{"ts": "17335')
    tailer = LogTailer(log, rotate_wait_s=0.0)
    assert drain(tailer) == [a.rstrip(b"\n")]
    os.rename(log, tmp_path / "access.log.1")
    b = line()
    log.write_bytes(b)
    read = tailer.read(100, 1 << 20)
    assert read.switched and read.skipped[0].reason == TORN
    assert read.skipped[0].offset == len(a)
    assert drain(tailer) == [b.rstrip(b"\n")]


def test_restart_after_rotation_finds_the_old_file_by_inode(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    old = [line() for _ in range(3)]
    log.write_bytes(old[0])
    tailer = LogTailer(log)
    drain(tailer)
    saved = tailer.position
    tailer.close()
    # While the shipper was down: more lines, a rotation, and lines in the new file.
    append(log, old[1] + old[2])
    os.rename(log, tmp_path / "access.log.1")
    new = line()
    log.write_bytes(new)
    restarted = LogTailer(log, saved, rotate_wait_s=0.0)
    assert drain(restarted) == [x.rstrip(b"\n") for x in (old[1], old[2], new)]


def test_restart_when_the_old_file_is_gone_starts_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(line())
    tailer = LogTailer(log)
    drain(tailer)
    saved = tailer.position
    tailer.close()
    os.unlink(log)
    new = line()
    log.write_bytes(new)
    assert drain(LogTailer(log, saved)) == [new.rstrip(b"\n")]


def test_copytruncate_is_read_again_from_the_start(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(line() for _ in range(3)))
    tailer = LogTailer(log)
    drain(tailer)
    with log.open("r+b") as f:  # copytruncate: same inode, length 0
        f.truncate(0)
    new = line()
    append(log, new)
    assert drain(tailer) == [new.rstrip(b"\n")]


def test_copytruncate_refilled_past_the_position_is_caught_by_the_head(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(line())
    clock = Clock()
    tailer = LogTailer(log, clock=clock)
    drain(tailer)
    with log.open("r+b") as f:
        f.truncate(0)
    refill = [line() for _ in range(3)]  # longer than what was read: size says nothing
    append(log, b"".join(refill))
    clock.now += 2
    assert drain(tailer) == [x.rstrip(b"\n") for x in refill]


def test_a_saved_position_in_a_replaced_file_starts_it_over(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_bytes(b"".join(line() for _ in range(3)))
    tailer = LogTailer(log)
    drain(tailer)
    saved = tailer.position
    tailer.close()
    with log.open("r+b") as f:
        f.truncate(0)
    refill = [line() for _ in range(4)]
    append(log, b"".join(refill))
    assert drain(LogTailer(log, saved)) == [x.rstrip(b"\n") for x in refill]


def test_an_overlong_line_is_skipped_once_complete(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    a = line()
    log.write_bytes(a + b"x" * 100_000)
    tailer = LogTailer(log)
    assert drain(tailer) == [a.rstrip(b"\n")]
    b = line()
    append(log, b"\n" + b)
    reads: list[LogRead] = []
    while (read := tailer.read(100, 1 << 16)).lines or read.skipped:
        reads.append(read)
    assert reads[0].skipped[0].reason == TOO_LONG and reads[0].skipped[0].offset == len(a)
    assert reads[-1].lines == (b.rstrip(b"\n"),)


def test_a_missing_log_waits_for_its_creation(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    tailer = LogTailer(log)
    assert tailer.read(10, 1 << 20).position is None
    a = line()
    log.write_bytes(a)
    assert drain(tailer) == [a.rstrip(b"\n")]


def test_the_offset_file_round_trips_and_locks(tmp_path: Path) -> None:
    state = OffsetFile(tmp_path / "state" / "access.log.position.json")
    assert state.load() is None
    state.lock()
    position = LogPosition(1, 2, 5000, HEAD_BYTES, "ab" * 32)
    state.save(position)
    assert state.load() == position
    other = OffsetFile(state.path)
    with pytest.raises(ShipperStateError, match="another shipper"):
        other.lock()
    state.close()
    other.lock()
    other.close()
    assert not list(state.path.parent.glob("*.tmp"))
