"""The pure chain: linking, and verification naming the first broken entry and why."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streamer.audit.chain import (
    ChainKeys,
    Damage,
    canonical,
    derive_chain_key,
    head_of,
    link,
    verify_stream,
)
from streamer.audit.errors import InvalidAuditEvent
from streamer.audit.model import GENESIS_HASH, AuditAction, AuditEntry, AuditEvent
from tests.contract.audit_logs import KEY, OTHER_KEY, event


def chain(n: int = 5, stream: str = "s") -> tuple[AuditEntry, ...]:
    return link(KEY, stream, None, [event(i) for i in range(n)])


def test_entries_link_from_genesis() -> None:
    entries = chain(3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert entries[0].prev_hash == GENESIS_HASH
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    report = verify_stream(KEY, "s", entries, head_of(entries[-1]))
    assert (report.problem, report.checked, report.last_seq) == (None, 3, 3)


def test_linking_after_a_head_continues_its_chain() -> None:
    first = chain(2)
    more = link(KEY, "s", head_of(first[-1]), [event(9)])
    assert more[0].seq == 3 and more[0].prev_hash == first[-1].hash
    assert verify_stream(KEY, "s", first + more, head_of(more[0])).problem is None


def test_an_entry_forged_with_the_key_but_off_the_chain_is_found() -> None:
    entries = list(chain(4))
    forged = link(KEY, "s", dataclasses.replace(head_of(entries[0]), hash="a" * 64), [event(7)])
    entries[1] = forged[0]  # seq 2, valid hash, but not after entry 1
    problem = verify_stream(KEY, "s", entries, None).problem
    assert problem is not None and (problem.seq, problem.damage) == (2, Damage.FORGED)


def test_another_key_is_named_not_called_an_edit() -> None:
    problem = verify_stream(OTHER_KEY, "s", chain(2), None).problem
    assert problem is not None and (problem.seq, problem.damage) == (1, Damage.KEY)
    assert KEY.key_id in problem.message and OTHER_KEY.key_id in problem.message


def test_a_rotated_secret_keeps_older_entries_verifiable() -> None:
    # Rotation: the writers move to the new secret's key and go on linking the same stream.
    before = chain(3)
    after = link(OTHER_KEY, "s", head_of(before[-1]), [event(7), event(8)])
    entries = before + after
    rotated = ChainKeys(OTHER_KEY, retired=(KEY,))
    report = verify_stream(rotated, "s", entries, head_of(entries[-1]))
    assert (report.problem, report.checked) == (None, 5)
    without_retired = verify_stream(OTHER_KEY, "s", entries, head_of(entries[-1])).problem
    assert without_retired is not None and (without_retired.seq, without_retired.damage) == (
        1,
        Damage.KEY,
    )
    assert "STREAMER_PREVIOUS_TOKEN_SECRETS" in without_retired.message


def test_a_retired_key_cannot_write_after_a_newer_one() -> None:
    # Someone holding the retired (perhaps leaked) secret appends to a stream that has moved
    # on: the hashes are valid, the order of keys is not.
    after_rotation = link(OTHER_KEY, "s", None, [event(1), event(2)])
    forged = link(KEY, "s", head_of(after_rotation[-1]), [event(3)])
    entries = after_rotation + forged
    problem = verify_stream(ChainKeys(OTHER_KEY, (KEY,)), "s", entries, head_of(forged[-1]))
    assert problem.problem is not None
    assert (problem.problem.seq, problem.problem.damage) == (3, Damage.KEY)
    assert "retired" in problem.problem.message


def test_an_edit_under_a_retired_key_is_still_an_edit() -> None:
    entries = list(chain(3))
    entries[1] = dataclasses.replace(entries[1], event=event(42))
    problem = verify_stream(ChainKeys(OTHER_KEY, (KEY,)), "s", entries, None).problem
    assert problem is not None and (problem.seq, problem.damage) == (2, Damage.EDITED)


def test_since_takes_earlier_entries_on_trust() -> None:
    entries = list(chain(5))
    entries[0] = dataclasses.replace(entries[0], hash="b" * 64)  # broken, but before `since`
    entries[1] = dataclasses.replace(entries[1], prev_hash="b" * 64)
    since_us = entries[2].event.at_us
    report = verify_stream(KEY, "s", entries, head_of(entries[-1]), since_us=since_us)
    assert report.problem is None and report.checked == 3
    assert verify_stream(KEY, "s", entries, None).problem is not None


def test_the_encoding_is_canonical() -> None:
    one = AuditEvent("0" * 32, 1, AuditAction.KEY_GRANTED, "a", "b", {"x": 1, "y": [2]})
    two = dataclasses.replace(one, details={"y": [2], "x": 1})
    assert canonical("s", 1, "k", GENESIS_HASH, one) == canonical("s", 1, "k", GENESIS_HASH, two)


def test_the_key_is_derived_and_its_id_reveals_nothing_of_it() -> None:
    key = derive_chain_key(b"m" * 32)
    assert key == derive_chain_key(b"m" * 32) != derive_chain_key(b"n" * 32)
    assert key.secret.hex() not in repr(key) and len(key.key_id) == 16


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("event_id", "short"),
        ("at_us", -1),
        ("actor", ""),
        ("subject", "x" * 257),
        ("details", {"nan": float("nan")}),
        ("details", {"big": "x" * 9000}),
        ("details", {"set": {1}}),
    ],
)
def test_bad_events_are_refused_naming_the_field(field: str, value: object) -> None:
    fields = dataclasses.asdict(event(1))
    fields[field] = value
    with pytest.raises(
        InvalidAuditEvent, match=field.split("_")[0] if field != "at_us" else "at_us"
    ):
        AuditEvent(**fields)


@given(
    st.lists(
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=8), max_size=3),
        min_size=1,
        max_size=6,
    ),
    st.data(),
)
def test_any_single_edit_is_found_at_its_entry(
    details: list[dict[str, object]], data: st.DataObject
) -> None:
    events = [dataclasses.replace(event(i), details=d) for i, d in enumerate(details)]
    entries = list(link(KEY, "s", None, events))
    victim = data.draw(st.integers(0, len(entries) - 1))
    changed = dataclasses.replace(entries[victim].event, actor="someone-else")
    entries[victim] = dataclasses.replace(entries[victim], event=changed)
    problem = verify_stream(KEY, "s", entries, head_of(entries[-1])).problem
    assert problem is not None and (problem.seq, problem.damage) == (victim + 1, Damage.EDITED)
