"""Walking the whole log: `verify_log` checks every stream, `find_entries` lists entries.

Both read every stream from its start: they are operators' tools (`streamer audit verify`,
`streamer audit list`), never on a request path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from streamer.audit.chain import (
    ChainKey,
    ChainKeys,
    ChainProblem,
    Damage,
    StreamReport,
    verify_stream,
)
from streamer.audit.errors import CorruptEntry
from streamer.audit.model import AuditAction, AuditEntry
from streamer.audit.port import AuditLog


@dataclass(frozen=True)
class LogReport:
    """Every stream's report, by stream name."""

    streams: tuple[StreamReport, ...]

    @property
    def checked(self) -> int:
        return sum(report.checked for report in self.streams)

    @property
    def problems(self) -> tuple[ChainProblem, ...]:
        return tuple(r.problem for r in self.streams if r.problem is not None)


def verify_log(log: AuditLog, keys: ChainKey | ChainKeys, since_us: int | None = None) -> LogReport:
    """Walk every stream; a stream with entries and no checkpoint is damaged too."""
    heads = {head.stream: head for head in log.heads()}
    reports = []
    for stream in log.streams():
        head = heads.get(stream)
        report = verify_stream(keys, stream, log.entries(stream), head, since_us)
        if report.problem is None and head is None and report.last_seq > 0:
            problem = ChainProblem(
                stream,
                report.last_seq,
                Damage.HEAD,
                f"{stream}#{report.last_seq}: the stream has entries but no checkpoint",
            )
            report = StreamReport(stream, report.checked, report.last_seq, problem)
        reports.append(report)
    return LogReport(tuple(reports))


def find_entries(
    log: AuditLog,
    *,
    action: AuditAction | None = None,
    actor: str | None = None,
    since_us: int | None = None,
) -> list[AuditEntry]:
    """The entries that match every filter given, oldest first (rows that no longer decode
    are left out: `verify_log` reports them)."""
    found = [
        entry
        for stream in log.streams()
        for entry in _readable(log, stream)
        if (action is None or entry.event.action == action)
        and (actor is None or entry.event.actor == actor)
        and (since_us is None or entry.event.at_us >= since_us)
    ]
    return sorted(found, key=lambda e: (e.event.at_us, e.stream, e.seq))


def _readable(log: AuditLog, stream: str) -> Iterator[AuditEntry]:
    after = 0
    while True:
        try:
            for entry in log.entries(stream, after):
                after = entry.seq
                yield entry
            return
        except CorruptEntry as exc:
            after = exc.seq
