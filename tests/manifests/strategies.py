"""Hypothesis strategies for valid playlists, for round-trip properties."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from typing import TypeVar

from hypothesis import strategies as st

from manifests import (
    ByteRange,
    ContentSteering,
    DateRange,
    Key,
    Map,
    MediaPlaylist,
    MultivariantPlaylist,
    Segment,
    SessionData,
    SessionKey,
    VariantStream,
)
from manifests.duration import rounded_duration

MAX_INTEGER = 2**64 - 1
PATHWAY_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_"

# Any character a playlist may hold (no control characters, RFC 8216 4.1; no surrogates).
ANY_TEXT = st.characters(exclude_categories=("Cc", "Cs"))
# Plain characters, for checks against the third-party m3u8 parser.
PLAIN_TEXT = st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789-._/:?=&")


T = TypeVar("T")


def _optional(strategy: st.SearchStrategy[T]) -> st.SearchStrategy[T | None]:
    return st.none() | strategy


def quoted(chars: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[str]:
    return st.text(chars.filter(lambda c: c != '"'), min_size=1, max_size=24)


def uri_lines(chars: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[str]:
    return st.text(chars, min_size=1, max_size=32).filter(
        lambda s: s == s.strip() and not s.startswith("#")
    )


# Written with six decimals, so generate whole microseconds: those survive text exactly.
durations = st.integers(1, 120_000_000).map(lambda us: us / 1_000_000)
ivs = _optional(st.binary(min_size=16, max_size=16))
keyformatversions = st.lists(st.integers(1, 99), min_size=1, max_size=3).map(
    lambda versions: "/".join(map(str, versions))
)
byte_counts = st.integers(1, MAX_INTEGER)
offsets = st.integers(0, MAX_INTEGER)
pathway_ids = st.text(st.sampled_from(PATHWAY_ALPHABET), min_size=1, max_size=8)
stable_variant_ids = st.text(st.sampled_from(PATHWAY_ALPHABET + "+/="), min_size=1, max_size=8)


def keys(chars: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[Key]:
    return st.just(Key("NONE")) | st.builds(
        Key,
        method=st.sampled_from(["AES-128", "SAMPLE-AES"]),
        uri=quoted(chars),
        iv=ivs,
        keyformat=_optional(quoted(chars)),
        keyformatversions=_optional(keyformatversions),
    )


def maps(chars: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[Map]:
    return st.builds(Map, quoted(chars), _optional(st.builds(ByteRange, byte_counts, offsets)))


# date-time-msec (4.3.2.6) in UTC ("Z") or at an offset, as ISO 8601 text.
_zones = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5))])
date_times = st.builds(
    lambda moment, zone, z: (
        moment.replace(tzinfo=UTC).astimezone(zone).isoformat(timespec="milliseconds")
    ).replace("+00:00", "Z" if z else "+00:00"),
    st.datetimes(datetime(1990, 1, 1), datetime(2100, 1, 1)),
    _zones,
    st.booleans(),
)
client_names = st.text(
    st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-"), min_size=1, max_size=10
)


def date_ranges(chars: st.SearchStrategy[str] = ANY_TEXT) -> st.SearchStrategy[DateRange]:
    clients = st.lists(
        st.tuples(client_names.map(lambda n: f"X-{n}"), quoted(chars) | durations | st.just(0.0)),
        max_size=3,
        unique_by=lambda pair: pair[0],
    ).map(tuple)
    return st.builds(
        DateRange,
        id=quoted(chars),
        start_date=date_times,
        class_name=_optional(quoted(chars)),
        duration=_optional(durations | st.just(0.0)),
        cue=_optional(st.sampled_from(["PRE", "POST", "ONCE", "PRE,ONCE"])),
        client_attributes=clients,
    )


@st.composite
def media_playlists(
    draw: st.DrawFn, chars: st.SearchStrategy[str] = ANY_TEXT, max_segments: int = 8
) -> MediaPlaylist:
    segments: list[Segment] = []
    for _ in range(draw(st.integers(0, max_segments))):
        previous = segments[-1] if segments else None
        byterange: ByteRange | None
        # An offset-less range continues the previous sub-range of the same URI (4.3.2.2).
        if previous is not None and previous.byterange is not None and draw(st.booleans()):
            uri, byterange = previous.uri, ByteRange(draw(byte_counts))
        else:
            uri = draw(uri_lines(chars))
            byterange = draw(_optional(st.builds(ByteRange, byte_counts, offsets)))
        segments.append(
            Segment(
                uri=uri,
                duration=draw(durations),
                title=draw(st.text(chars, max_size=16)),
                key=draw(_optional(keys(chars))),
                map=draw(_optional(maps(chars))),
                byterange=byterange,
                discontinuity=draw(st.booleans()),
                program_date_time=draw(_optional(date_times)),
                date_ranges=tuple(draw(st.lists(date_ranges(chars), max_size=2))),
            )
        )
    if any(s.date_ranges for s in segments) and segments[0].program_date_time is None:
        # Date ranges need a program date time on the first segment (4.3.2.7).
        segments[0] = dataclasses.replace(segments[0], program_date_time=draw(date_times))
    longest = max([1, *(rounded_duration(s.duration) for s in segments)])
    playlist_type = draw(st.sampled_from([None, "VOD", "EVENT"]))
    return MediaPlaylist(
        target_duration=longest + draw(st.integers(0, 3)),
        segments=tuple(segments),
        version=draw(st.integers(1, 12)),
        media_sequence=draw(offsets),
        playlist_type=playlist_type,
        independent_segments=draw(st.booleans()),
        endlist=playlist_type == "VOD" or draw(st.booleans()),
    )


def multivariant_playlists(
    chars: st.SearchStrategy[str] = ANY_TEXT, max_bandwidth: int = MAX_INTEGER
) -> st.SearchStrategy[MultivariantPlaylist]:
    variants = st.builds(
        VariantStream,
        uri=uri_lines(chars),
        bandwidth=st.integers(1, max_bandwidth),
        average_bandwidth=_optional(st.integers(1, max_bandwidth)),
        codecs=_optional(quoted(chars)),
        pathway_id=_optional(pathway_ids),
        stable_variant_id=_optional(stable_variant_ids),
        audio=_optional(quoted(chars)),
    )
    session_keys = st.builds(
        SessionKey,
        method=st.sampled_from(["AES-128", "SAMPLE-AES"]),
        uri=quoted(chars),
        iv=ivs,
        keyformat=_optional(quoted(chars)),
        keyformatversions=_optional(keyformatversions),
    )
    session_data = st.builds(
        SessionData, data_id=quoted(chars), value=quoted(chars), language=_optional(quoted(chars))
    ) | st.builds(
        SessionData, data_id=quoted(chars), uri=quoted(chars), language=_optional(quoted(chars))
    )
    return st.builds(
        MultivariantPlaylist,
        variants=st.lists(variants, min_size=1, max_size=5).map(tuple),
        session_keys=st.lists(session_keys, max_size=3, unique=True).map(tuple),
        session_data=st.lists(
            session_data, max_size=3, unique_by=lambda d: (d.data_id, d.language)
        ).map(tuple),
        content_steering=_optional(
            st.builds(ContentSteering, quoted(chars), _optional(pathway_ids))
        ),
        independent_segments=st.booleans(),
        version=st.integers(1, 12),
    )
