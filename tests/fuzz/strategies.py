"""Hostile values for the fuzzers: JSON of every shape, near-valid request bodies, and text
from the alphabets parsers care about."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

# Values that break number handling: past float range, past 2**53, not finite.
EDGE_NUMBERS = st.sampled_from(
    [10**400, -(10**400), 2**53, 2**63, 2**64, -1, 0, 1e308, -0.0, float("nan"), float("inf")]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | EDGE_NUMBERS
    | st.floats()
    | st.text(max_size=40)
    | st.sampled_from(["", "\ud800", "../..", "a" * 200, "free", "premium", "heartbeat"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


def maybe(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or any JSON in its place."""
    return value | JSON


@st.composite
def mutated(draw: st.DrawFn, valid: st.SearchStrategy[dict[str, Any]]) -> dict[str, Any]:
    """A valid document with up to three fields replaced by any JSON, dropped or added: the
    parser gets past its first checks and meets the bad value deep inside."""
    doc = dict(draw(valid))
    for _ in range(draw(st.integers(0, 3))):
        # Mostly a field the parser knows, mostly a value that breaks numbers or types.
        known = doc and draw(st.integers(0, 4)) > 0
        name = draw(st.sampled_from(sorted(doc)) if known else st.text(max_size=12))
        if name in doc and draw(st.integers(0, 4)) == 0:
            del doc[name]
            continue
        kind = draw(st.integers(0, 3))
        doc[name] = draw((EDGE_NUMBERS, EDGE_NUMBERS, SCALARS, JSON)[kind])
    return doc


DEVICES = st.fixed_dictionaries(
    {"codecs": st.lists(st.sampled_from(["mp4a.40.2", "opus", "fLaC", "ac-3"]), min_size=1)},
    optional={
        "max_bitrate_kbps": st.integers(1, 100_000),
        "network": st.sampled_from(["wifi", "cellular"]),
        "save_data": st.booleans(),
    },
)
SESSION_BODIES = (
    st.builds(
        lambda track, device: {"track_id": track, "device": device},
        st.sampled_from(["TRKA00000001", "TRKB00000002", "nope"]),
        mutated(DEVICES),
    ).flatmap(lambda doc: mutated(st.just(doc)))
    | JSON
)

_ID = st.text(st.sampled_from("abcXYZ019_.:-"), min_size=1, max_size=20)
_COMMON = {
    "event_id": _ID,
    "ts_ms": st.integers(0, 2**53 - 1),
    "position_s": st.floats(0, 1e6),
}
_OPTIONAL = {"seq": st.integers(0, 2**53 - 1), "offline": st.booleans(), "pathway": _ID}
# Valid events of each type (cdn_edge/events_api.py: which fields each type needs or takes).
_BY_TYPE: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "play": ({}, {"bitrate_kbps": st.integers(1, 10_000), "rendition": _ID,
                  "startup_ms": st.integers(0, 600_000)}),
    "bitrate_switch": ({"bitrate_kbps": st.integers(1, 10_000)}, {"rendition": _ID}),
    "seek": ({"from_s": st.floats(0, 1e6)}, {}),
    "error": ({"code": _ID}, {"message": st.text(max_size=100), "fatal": st.booleans()}),
    "heartbeat": ({}, {}),
    "end": ({}, {}),
    "stall_start": ({}, {}),
}  # fmt: skip
_VALID_EVENTS = st.one_of(
    [
        st.fixed_dictionaries(
            {**_COMMON, **required, "type": st.just(kind)}, optional={**_OPTIONAL, **optional}
        )
        for kind, (required, optional) in _BY_TYPE.items()
    ]
)
EVENT_BODIES = (
    st.builds(lambda events: {"events": events}, st.lists(mutated(_VALID_EVENTS), max_size=5))
    | JSON
)

# Header-ish text: printable ASCII, tabs, and Latin-1 (what HTTP/1.1 lets through).
HEADER_TEXT = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f")
    | st.just("\t"),
    max_size=120,
)
