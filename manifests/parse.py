"""Playlist text to the model, the inverse of `render`: one small function per tag.

`strict=True` (the default) reads exactly what RFC 8216 allows and we model, and fails on
the first line that is anything else. `strict=False` reads what other writers produce:
unknown tags and attributes are skipped, a repeated tag replaces the earlier one, and a
target duration too short for its segments (ffmpeg's hls muxer writes those) is raised.

One module on purpose (about 420 lines): a small reader per tag, in the order of `render`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from manifests.attributes import Attributes, byterange, decimal_float, decimal_integer
from manifests.duration import DURATION_DECIMALS, format_duration, rounded_duration
from manifests.errors import PlaylistParseError
from manifests.model import (
    PLAYLIST_TYPES,
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
from manifests.reader import State, built, independent_segments, no_value, read_lines, version

# Tags that mark the other kind of playlist; a playlist holding both is invalid (4.3.4).
_MEDIA_ONLY = frozenset(
    {
        "#EXTINF",
        "#EXT-X-BYTERANGE",
        "#EXT-X-DISCONTINUITY",
        "#EXT-X-KEY",
        "#EXT-X-MAP",
        "#EXT-X-PROGRAM-DATE-TIME",
        "#EXT-X-DATERANGE",
        "#EXT-X-GAP",
        "#EXT-X-BITRATE",
        "#EXT-X-PART",
        "#EXT-X-TARGETDURATION",
        "#EXT-X-MEDIA-SEQUENCE",
        "#EXT-X-DISCONTINUITY-SEQUENCE",
        "#EXT-X-ENDLIST",
        "#EXT-X-PLAYLIST-TYPE",
        "#EXT-X-I-FRAMES-ONLY",
        "#EXT-X-PART-INF",
        "#EXT-X-SERVER-CONTROL",
    }
)
_MULTIVARIANT_ONLY = frozenset(
    {
        "#EXT-X-MEDIA",
        "#EXT-X-STREAM-INF",
        "#EXT-X-I-FRAME-STREAM-INF",
        "#EXT-X-SESSION-DATA",
        "#EXT-X-SESSION-KEY",
        "#EXT-X-CONTENT-STEERING",
    }
)

_KEY_ATTRIBUTES = frozenset({"METHOD", "URI", "IV", "KEYFORMAT", "KEYFORMATVERSIONS"})
_MAP_ATTRIBUTES = frozenset({"URI", "BYTERANGE"})
_SESSION_DATA_ATTRIBUTES = frozenset({"DATA-ID", "VALUE", "URI", "LANGUAGE"})
_STEERING_ATTRIBUTES = frozenset({"SERVER-URI", "PATHWAY-ID"})
# The EXT-X-DATERANGE attributes we model, besides X- ones; END-DATE, PLANNED-DURATION,
# END-ON-NEXT and SCTE35-* fail strictly and are skipped leniently.
# date-time-msec (4.3.2.6): ISO 8601 date and time with a time zone; checked by shape only (no
# calendar here: the library reads no clock and holds no date arithmetic).
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})")
_DATE_RANGE_ATTRIBUTES = frozenset({"ID", "CLASS", "START-DATE", "CUE", "DURATION"})
_STREAM_INF_ATTRIBUTES = frozenset(
    {"BANDWIDTH", "AVERAGE-BANDWIDTH", "CODECS", "PATHWAY-ID", "STABLE-VARIANT-ID", "AUDIO"}
)


@dataclass
class _MediaState(State):
    target_duration: int | None = None
    media_sequence: int = 0
    playlist_type: str | None = None
    endlist: bool = False
    segments: list[Segment] = field(default_factory=list)
    extinf_lines: list[int] = field(default_factory=list)
    # Tags read since the last URI line, for the segment that URI line ends.
    extinf: tuple[float, str, int] | None = None
    key: Key | None = None
    map: Map | None = None
    byterange: ByteRange | None = None
    discontinuity: bool = False
    program_date_time: str | None = None
    date_ranges: list[DateRange] = field(default_factory=list)
    pending: dict[str, int] = field(default_factory=dict)

    def segment_tag(self, tag: str, line: int) -> None:
        """Note a tag for the next segment; we model one of each per segment."""
        first = self.pending.get(tag)
        if first is not None and self.strict:
            raise PlaylistParseError(
                f"{tag} appears twice before one segment (first on line {first}); "
                "expected one per segment",
                line,
            )
        self.pending[tag] = line


@dataclass
class _MultivariantState(State):
    content_steering: ContentSteering | None = None
    session_data: list[SessionData] = field(default_factory=list)
    session_keys: list[SessionKey] = field(default_factory=list)
    variants: list[VariantStream] = field(default_factory=list)
    stream_inf: tuple[Attributes, int] | None = None


# Media Playlist tags (4.3.3)


def _target_duration(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-TARGETDURATION (4.3.3.1)."""
    state.once("#EXT-X-TARGETDURATION", line)
    target = decimal_integer(value, "#EXT-X-TARGETDURATION", line)
    if target < 1:
        raise PlaylistParseError(
            f"expected #EXT-X-TARGETDURATION of at least 1, got {target}", line
        )
    state.target_duration = target


def _media_sequence(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-MEDIA-SEQUENCE (4.3.3.2), which must come before the first segment."""
    state.once("#EXT-X-MEDIA-SEQUENCE", line)
    if state.strict and (state.segments or state.extinf):
        raise PlaylistParseError("expected #EXT-X-MEDIA-SEQUENCE before the first segment", line)
    state.media_sequence = decimal_integer(value, "#EXT-X-MEDIA-SEQUENCE", line)


def _playlist_type(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-PLAYLIST-TYPE (4.3.3.5)."""
    state.once("#EXT-X-PLAYLIST-TYPE", line)
    if value not in PLAYLIST_TYPES:
        raise PlaylistParseError(f"expected #EXT-X-PLAYLIST-TYPE VOD or EVENT, got {value!r}", line)
    state.playlist_type = value


def _endlist(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-ENDLIST (4.3.3.4)."""
    no_value("#EXT-X-ENDLIST", value, line)
    state.once("#EXT-X-ENDLIST", line)
    state.endlist = True


# Media Segment tags (4.3.2)


def _extinf(state: _MediaState, value: str, line: int) -> None:
    """EXTINF:<duration>,[<title>] (4.3.2.1)."""
    if state.extinf is not None:
        raise PlaylistParseError(
            f"expected a URI line after the #EXTINF on line {state.extinf[2]}, got another #EXTINF",
            line,
        )
    duration, comma, title = value.partition(",")
    if not comma and state.strict:
        raise PlaylistParseError(f"expected #EXTINF:<duration>,[<title>], got {value!r}", line)
    seconds = decimal_float(duration, "#EXTINF duration", line)
    if round(seconds, DURATION_DECIMALS) <= 0:
        raise PlaylistParseError(f"expected a positive #EXTINF duration, got {duration!r}", line)
    state.extinf = (seconds, title, line)


def _byterange(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-BYTERANGE:<n>[@<o>] (4.3.2.2)."""
    state.segment_tag("#EXT-X-BYTERANGE", line)
    state.byterange = built(line, lambda: byterange(value, "#EXT-X-BYTERANGE", line))


def _discontinuity(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-DISCONTINUITY (4.3.2.3)."""
    no_value("#EXT-X-DISCONTINUITY", value, line)
    state.segment_tag("#EXT-X-DISCONTINUITY", line)
    state.discontinuity = True


def _key(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-KEY (4.3.2.4)."""
    state.segment_tag("#EXT-X-KEY", line)
    attrs = state.attributes("#EXT-X-KEY", value, line, _KEY_ATTRIBUTES)
    method = attrs.required_enumerated("METHOD")
    uri, iv = attrs.quoted("URI"), attrs.iv("IV")
    keyformat, versions = attrs.quoted("KEYFORMAT"), attrs.quoted("KEYFORMATVERSIONS")
    state.key = built(line, lambda: Key(method, uri, iv, keyformat, versions))


def _map(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-MAP (4.3.2.5)."""
    state.segment_tag("#EXT-X-MAP", line)
    attrs = state.attributes("#EXT-X-MAP", value, line, _MAP_ATTRIBUTES)
    uri, text = attrs.required_quoted("URI"), attrs.quoted("BYTERANGE")
    byte_range = (
        None if text is None else built(line, lambda: byterange(text, "#EXT-X-MAP BYTERANGE", line))
    )
    if byte_range is not None and byte_range.offset is None and not state.strict:
        byte_range = ByteRange(byte_range.length, 0)  # nothing precedes an init section
    state.map = built(line, lambda: Map(uri, byte_range))


def _date_time(text: str, what: str, line: int) -> str:
    """date-time-msec (ISO 8601 with a time zone, 4.3.2.6), kept as its text."""
    if not _DATE_TIME.fullmatch(text):
        raise PlaylistParseError(
            f"expected an ISO 8601 date and time with a time zone for {what}, got {text[:40]!r}",
            line,
        )
    return text


def _program_date_time(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-PROGRAM-DATE-TIME:<date-time-msec> (4.3.2.6)."""
    state.segment_tag("#EXT-X-PROGRAM-DATE-TIME", line)
    state.program_date_time = _date_time(value, "#EXT-X-PROGRAM-DATE-TIME", line)


def _date_range(state: _MediaState, value: str, line: int) -> None:
    """EXT-X-DATERANGE (4.3.2.7); several may come before one segment, in order."""
    attrs = Attributes(
        "#EXT-X-DATERANGE", value, line, _DATE_RANGE_ATTRIBUTES, state.strict, client=True
    )
    range_id = attrs.required_quoted("ID")
    start = _date_time(attrs.required_quoted("START-DATE"), "#EXT-X-DATERANGE START-DATE", line)
    class_name, cue, duration = (
        attrs.quoted("CLASS"),
        attrs.quoted("CUE"),
        attrs.decimal("DURATION"),
    )
    client = attrs.client_attributes(state.strict)
    state.date_ranges.append(
        built(line, lambda: DateRange(range_id, start, class_name, duration, cue, client))
    )
    state.pending.setdefault("#EXT-X-DATERANGE", line)


def _segment_uri(state: _MediaState, uri: str, line: int) -> None:
    """The URI line that ends a Media Segment (4.3.2)."""
    if state.extinf is None:
        raise PlaylistParseError(f"expected #EXTINF before the URI line {uri!r}", line)
    duration, title, extinf_line = state.extinf
    if state.byterange is not None and state.byterange.offset is None:
        previous = state.segments[-1] if state.segments else None
        if previous is None or previous.byterange is None or previous.uri != uri:
            raise PlaylistParseError(
                "expected an offset in #EXT-X-BYTERANGE: the segment before is not a "
                f"sub-range of {uri} (RFC 8216 4.3.2.2)",
                state.pending["#EXT-X-BYTERANGE"],
            )
    segment = built(
        line,
        lambda: Segment(
            uri,
            duration,
            title,
            state.key,
            state.map,
            state.byterange,
            state.discontinuity,
            state.program_date_time,
            tuple(state.date_ranges),
        ),
    )
    state.segments.append(segment)
    state.extinf_lines.append(extinf_line)
    state.extinf, state.key, state.map, state.byterange = None, None, None, None
    state.discontinuity, state.program_date_time = False, None
    state.date_ranges = []
    state.pending.clear()


_MEDIA_TAGS: dict[str, Callable[[_MediaState, str, int], None]] = {
    "#EXT-X-VERSION": version,
    "#EXT-X-INDEPENDENT-SEGMENTS": independent_segments,
    "#EXT-X-TARGETDURATION": _target_duration,
    "#EXT-X-MEDIA-SEQUENCE": _media_sequence,
    "#EXT-X-PLAYLIST-TYPE": _playlist_type,
    "#EXT-X-ENDLIST": _endlist,
    "#EXTINF": _extinf,
    "#EXT-X-BYTERANGE": _byterange,
    "#EXT-X-DISCONTINUITY": _discontinuity,
    "#EXT-X-KEY": _key,
    "#EXT-X-MAP": _map,
    "#EXT-X-PROGRAM-DATE-TIME": _program_date_time,
    "#EXT-X-DATERANGE": _date_range,
}


# Multivariant Playlist tags (4.3.4)


def _content_steering(state: _MultivariantState, value: str, line: int) -> None:
    """EXT-X-CONTENT-STEERING (rfc8216bis 4.4.6.6)."""
    state.once("#EXT-X-CONTENT-STEERING", line)
    attrs = state.attributes("#EXT-X-CONTENT-STEERING", value, line, _STEERING_ATTRIBUTES)
    server_uri, pathway_id = attrs.required_quoted("SERVER-URI"), attrs.quoted("PATHWAY-ID")
    state.content_steering = built(line, lambda: ContentSteering(server_uri, pathway_id))


def _session_data(state: _MultivariantState, value: str, line: int) -> None:
    """EXT-X-SESSION-DATA (4.3.4.4)."""
    attrs = state.attributes("#EXT-X-SESSION-DATA", value, line, _SESSION_DATA_ATTRIBUTES)
    data_id, data_value = attrs.required_quoted("DATA-ID"), attrs.quoted("VALUE")
    uri, language = attrs.quoted("URI"), attrs.quoted("LANGUAGE")
    data = built(line, lambda: SessionData(data_id, data_value, uri, language))
    if any((d.data_id, d.language) == (data_id, language) for d in state.session_data):
        raise PlaylistParseError(
            f"#EXT-X-SESSION-DATA repeats DATA-ID {data_id!r} with LANGUAGE {language!r} "
            "(RFC 8216 4.3.4.4)",
            line,
        )
    state.session_data.append(data)


def _session_key(state: _MultivariantState, value: str, line: int) -> None:
    """EXT-X-SESSION-KEY (4.3.4.5)."""
    attrs = state.attributes("#EXT-X-SESSION-KEY", value, line, _KEY_ATTRIBUTES)
    method, uri = attrs.required_enumerated("METHOD"), attrs.required_quoted("URI")
    iv = attrs.iv("IV")
    keyformat, versions = attrs.quoted("KEYFORMAT"), attrs.quoted("KEYFORMATVERSIONS")
    key = built(line, lambda: SessionKey(method, uri, iv, keyformat, versions))
    if key in state.session_keys:
        raise PlaylistParseError(
            "#EXT-X-SESSION-KEY repeats an earlier one exactly (RFC 8216 4.3.4.5)", line
        )
    state.session_keys.append(key)


def _stream_inf(state: _MultivariantState, value: str, line: int) -> None:
    """EXT-X-STREAM-INF (4.3.4.2); its Variant Stream ends at the next URI line."""
    if state.stream_inf is not None:
        raise PlaylistParseError(
            f"expected a URI line after the #EXT-X-STREAM-INF on line {state.stream_inf[1]}, "
            "got another #EXT-X-STREAM-INF",
            line,
        )
    attrs = state.attributes("#EXT-X-STREAM-INF", value, line, _STREAM_INF_ATTRIBUTES)
    attrs.required_integer("BANDWIDTH")  # fail on the tag's line, not the URI's
    state.stream_inf = (attrs, line)


def _variant_uri(state: _MultivariantState, uri: str, line: int) -> None:
    """The URI line after EXT-X-STREAM-INF (4.3.4.2)."""
    if state.stream_inf is None:
        raise PlaylistParseError(f"expected #EXT-X-STREAM-INF before the URI line {uri!r}", line)
    attrs, tag_line = state.stream_inf
    variant = built(
        tag_line,
        lambda: VariantStream(
            uri,
            attrs.required_integer("BANDWIDTH"),
            attrs.integer("AVERAGE-BANDWIDTH"),
            attrs.quoted("CODECS"),
            attrs.quoted("PATHWAY-ID"),
            attrs.quoted("STABLE-VARIANT-ID"),
            attrs.quoted("AUDIO"),
        ),
    )
    state.variants.append(variant)
    state.stream_inf = None


_MULTIVARIANT_TAGS: dict[str, Callable[[_MultivariantState, str, int], None]] = {
    "#EXT-X-VERSION": version,
    "#EXT-X-INDEPENDENT-SEGMENTS": independent_segments,
    "#EXT-X-CONTENT-STEERING": _content_steering,
    "#EXT-X-SESSION-DATA": _session_data,
    "#EXT-X-SESSION-KEY": _session_key,
    "#EXT-X-STREAM-INF": _stream_inf,
}


def _finish_media(state: _MediaState, last_line: int) -> MediaPlaylist:
    if state.extinf is not None:
        raise PlaylistParseError(
            "expected a URI line after this #EXTINF, reached the end", state.extinf[2]
        )
    if state.pending and state.strict:
        tag, line = min(state.pending.items(), key=lambda item: item[1])
        raise PlaylistParseError(f"expected a segment after {tag}, reached the end", line)
    target = state.target_duration
    if state.strict:
        first_segment = state.extinf_lines[0] if state.extinf_lines else last_line
        if target is None:
            raise PlaylistParseError(
                "expected #EXT-X-TARGETDURATION before the first segment, found none "
                "(required, RFC 8216 4.3.3.1)",
                first_segment,
            )
        for index, segment in enumerate(state.segments):
            if rounded_duration(segment.duration) > target:
                raise PlaylistParseError(
                    f"segment {index} ({segment.uri}) lasts {format_duration(segment.duration)} s, "
                    f"longer than the target duration {target} on line "
                    f"{state.seen['#EXT-X-TARGETDURATION']} "
                    "(parse with strict=False to raise the target)",
                    state.extinf_lines[index],
                )
    else:
        # ffmpeg rounds the target from nominal segment lengths, not the written EXTINFs.
        target = max([target or 1, *(rounded_duration(s.duration) for s in state.segments)])
    if state.playlist_type == "VOD" and not state.endlist:
        raise PlaylistParseError(
            "expected #EXT-X-ENDLIST in a VOD playlist, found none (RFC 8216 4.3.3.5)",
            state.seen["#EXT-X-PLAYLIST-TYPE"],
        )
    return built(
        last_line,
        lambda: MediaPlaylist(
            target_duration=target,
            segments=tuple(state.segments),
            version=state.version,
            media_sequence=state.media_sequence,
            playlist_type=state.playlist_type,
            independent_segments=state.independent_segments,
            endlist=state.endlist,
        ),
    )


def parse_media(text: str, *, strict: bool = True) -> MediaPlaylist:
    """Read a Media Playlist (RFC 8216 4.3.3); raises PlaylistParseError naming the line."""
    state = _MediaState(strict=strict)
    last_line = read_lines(
        text,
        state,
        _MEDIA_TAGS,
        _MULTIVARIANT_ONLY,
        "multivariant playlist; use parse_multivariant",
        _segment_uri,
    )
    return _finish_media(state, last_line)


def parse_multivariant(text: str, *, strict: bool = True) -> MultivariantPlaylist:
    """Read a Multivariant Playlist (RFC 8216 4.3.4); raises PlaylistParseError naming the line."""
    state = _MultivariantState(strict=strict)
    last_line = read_lines(
        text,
        state,
        _MULTIVARIANT_TAGS,
        _MEDIA_ONLY,
        "media playlist; use parse_media",
        _variant_uri,
    )
    if state.stream_inf is not None:
        raise PlaylistParseError(
            "expected a URI line after this #EXT-X-STREAM-INF, reached the end", state.stream_inf[1]
        )
    if not state.variants:
        raise PlaylistParseError("expected at least one #EXT-X-STREAM-INF, found none", last_line)
    return built(
        last_line,
        lambda: MultivariantPlaylist(
            variants=tuple(state.variants),
            session_keys=tuple(state.session_keys),
            session_data=tuple(state.session_data),
            content_steering=state.content_steering,
            independent_segments=state.independent_segments,
            version=state.version,
        ),
    )
