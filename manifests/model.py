"""The HLS playlist model: one frozen dataclass per tag, validated when built.

Sections are those of RFC 8216; content steering and the PATHWAY-ID and STABLE-VARIANT-ID
attributes come from draft-pantos-hls-rfc8216bis ("bis"). We produce playlists, so every
class refuses what the spec forbids rather than leaving it to the player.

One module on purpose (about 420 lines): a class per tag, in the spec's order, so the model
reads beside RFC 8216.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from manifests.duration import DURATION_DECIMALS, format_duration, rounded_duration
from manifests.errors import PlaylistError

KEY_METHODS = frozenset({"NONE", "AES-128", "SAMPLE-AES"})  # 4.3.2.4
PLAYLIST_TYPES = frozenset({None, "VOD", "EVENT"})  # 4.3.3.5; None means neither tag
IV_BYTES = 16  # the IV is a 128-bit unsigned integer, 4.3.2.4
MAX_DECIMAL_INTEGER = 2**64 - 1  # decimal-integer range, 4.2
# RFC 8216 describes protocol version 7; fMP4 segments (EXT-X-MAP) need at least 6.
DEFAULT_VERSION = 7

# 4.1: no control characters but CR and LF, and those end lines; 4.2: no '"' in a quoted-string.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NOT_QUOTABLE = re.compile('[\x00-\x1f\x7f-\x9f"]')
# bis 4.4.6.2: PATHWAY-ID and STABLE-VARIANT-ID character sets.
_PATHWAY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_")
_STABLE_ID_CHARS = _PATHWAY_CHARS | frozenset("+/=")


def _check_integer(value: object, what: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise PlaylistError(f"{what} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise PlaylistError(f"{what} must be at least {minimum}, got {value}")
    if value > MAX_DECIMAL_INTEGER:
        raise PlaylistError(f"{what} must fit a decimal-integer (below 2**64), got {value}")


def _check_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise PlaylistError(f"{what} must be a str, got {type(value).__name__}")
    return value


def _check_text(value: object, what: str) -> None:
    """Free text on a tag line (an EXTINF title): anything but control characters."""
    bad = _CONTROL.search(_check_str(value, what))
    if bad:
        raise PlaylistError(
            f"{what} contains {bad.group()!r} at index {bad.start()}; "
            "playlists hold no CR, LF or other control characters (RFC 8216 4.1)"
        )


def _check_quoted(value: object, what: str) -> None:
    text = _check_str(value, what)
    if not text:
        raise PlaylistError(f"{what} must not be empty")
    bad = _NOT_QUOTABLE.search(text)
    if bad:
        raise PlaylistError(
            f"{what} contains {bad.group()!r} at index {bad.start()}; a quoted-string cannot "
            "hold '\"', CR, LF or other control characters (RFC 8216 4.2)"
        )


def _check_optional_quoted(value: object, what: str) -> None:
    if value is not None:
        _check_quoted(value, what)


def _check_uri_line(value: object, what: str) -> None:
    """A URI on a line of its own (4.1): non-empty, one line, not a tag or comment."""
    text = _check_str(value, what)
    if not text:
        raise PlaylistError(f"{what} must not be empty")
    _check_text(text, what)
    if text.startswith("#"):
        raise PlaylistError(f"{what} {text!r} starts with '#', so it would read as a tag (4.1)")
    if text != text.strip():
        raise PlaylistError(f"{what} {text!r} has leading or trailing whitespace")


def _check_charset(value: object, what: str, allowed: frozenset[str], spelled: str) -> None:
    text = _check_str(value, what)
    if not text or not set(text) <= allowed:
        raise PlaylistError(f"{what} must be a non-empty string of {spelled}, got {text!r}")


def _check_tuple(value: object, what: str) -> None:
    if not isinstance(value, tuple):
        raise PlaylistError(f"{what} must be a tuple, got {type(value).__name__}")


def _check_key(tag: str, key: Key | SessionKey) -> None:
    """The attribute rules EXT-X-KEY and EXT-X-SESSION-KEY share (4.3.2.4, 4.3.4.5)."""
    if key.method not in KEY_METHODS:
        raise PlaylistError(
            f"{tag} METHOD must be one of AES-128, NONE, SAMPLE-AES, got {key.method!r}"
        )
    if key.method == "NONE":
        present = [
            name
            for name, value in (
                ("URI", key.uri),
                ("IV", key.iv),
                ("KEYFORMAT", key.keyformat),
                ("KEYFORMATVERSIONS", key.keyformatversions),
            )
            if value is not None
        ]
        if present:
            raise PlaylistError(
                f"{tag} METHOD=NONE must carry no other attribute, got {', '.join(present)} "
                "(RFC 8216 4.3.2.4)"
            )
        return
    if key.uri is None:
        raise PlaylistError(f"{tag} METHOD={key.method} needs a URI (RFC 8216 4.3.2.4)")
    _check_quoted(key.uri, f"{tag} URI")
    if key.iv is not None:
        if not isinstance(key.iv, bytes):
            raise PlaylistError(f"{tag} IV must be bytes, got {type(key.iv).__name__}")
        if len(key.iv) != IV_BYTES:
            raise PlaylistError(
                f"{tag} IV has {len(key.iv)} bytes, expected {IV_BYTES} "
                "(a 128-bit integer, RFC 8216 4.3.2.4)"
            )
    _check_optional_quoted(key.keyformat, f"{tag} KEYFORMAT")
    if key.keyformatversions is not None:
        _check_quoted(key.keyformatversions, f"{tag} KEYFORMATVERSIONS")
        parts = key.keyformatversions.split("/")
        if not all(part.isascii() and part.isdigit() and int(part) > 0 for part in parts):
            raise PlaylistError(
                f"{tag} KEYFORMATVERSIONS must be positive integers separated by '/', "
                f"got {key.keyformatversions!r}"
            )


# EXT-X-BYTERANGE, RFC 8216 4.3.2.2
@dataclass(frozen=True, slots=True)
class ByteRange:
    """A sub-range of a resource: `length` bytes from `offset`, or on from the previous one."""

    length: int
    offset: int | None = None

    def __post_init__(self) -> None:
        _check_integer(self.length, "byte range length", 1)
        if self.offset is not None:
            _check_integer(self.offset, "byte range offset", 0)


# EXT-X-KEY, RFC 8216 4.3.2.4
@dataclass(frozen=True, slots=True)
class Key:
    """How the Media Segments from here on are encrypted; METHOD=NONE ends encryption."""

    method: str
    uri: str | None = None
    iv: bytes | None = None
    keyformat: str | None = None
    keyformatversions: str | None = None

    def __post_init__(self) -> None:
        _check_key("EXT-X-KEY", self)


# EXT-X-MAP, RFC 8216 4.3.2.5
@dataclass(frozen=True, slots=True)
class Map:
    """The Media Initialization Section (fMP4 init segment) of the segments from here on."""

    uri: str
    byterange: ByteRange | None = None

    def __post_init__(self) -> None:
        _check_quoted(self.uri, "EXT-X-MAP URI")
        # An init section has no previous sub-range to continue from (4.3.2.2).
        if self.byterange is not None and self.byterange.offset is None:
            raise PlaylistError("EXT-X-MAP BYTERANGE needs an offset (n@o)")


# EXT-X-DATERANGE, RFC 8216 4.3.2.7 (HLS interstitials: bis Appendix D)
_CLIENT_ATTRIBUTE = re.compile(r"X-[A-Z0-9-]+")
DATE_RANGE_CUES = frozenset({"PRE", "POST", "ONCE"})  # bis 4.4.5.1


@dataclass(frozen=True, slots=True)
class DateRange:
    """A date range; `start_date` is ISO 8601 text (the library reads no clock).

    `client_attributes` are the X- attributes in order: a str is written quoted, a number as
    a decimal-floating-point (4.3.2.7.1).
    """

    id: str
    start_date: str
    class_name: str | None = None
    duration: float | None = None
    cue: str | None = None
    client_attributes: tuple[tuple[str, str | float], ...] = ()

    def __post_init__(self) -> None:
        _check_quoted(self.id, "EXT-X-DATERANGE ID")
        if not self.id:
            raise PlaylistError("EXT-X-DATERANGE needs a non-empty ID (4.3.2.7)")
        _check_quoted(self.start_date, f"EXT-X-DATERANGE {self.id} START-DATE")
        _check_optional_quoted(self.class_name, f"EXT-X-DATERANGE {self.id} CLASS")
        if self.duration is not None and (not math.isfinite(self.duration) or self.duration < 0):
            raise PlaylistError(
                f"EXT-X-DATERANGE {self.id} DURATION must be a finite number of seconds "
                f"at least 0, got {self.duration!r}"
            )
        if self.cue is not None and not set(self.cue.split(",")) <= DATE_RANGE_CUES:
            raise PlaylistError(
                f"EXT-X-DATERANGE {self.id} CUE must list PRE, POST or ONCE, got {self.cue!r}"
            )
        _check_tuple(self.client_attributes, f"EXT-X-DATERANGE {self.id} client attributes")
        for name, value in self.client_attributes:
            if not _CLIENT_ATTRIBUTE.fullmatch(name):
                raise PlaylistError(
                    f"EXT-X-DATERANGE {self.id} attribute {name!r} is not a client attribute "
                    "(X- then A-Z, 0-9, '-')"
                )
            if isinstance(value, str):
                _check_quoted(value, f"EXT-X-DATERANGE {self.id} {name}")
            elif isinstance(value, bool) or not math.isfinite(value):
                raise PlaylistError(
                    f"EXT-X-DATERANGE {self.id} {name} must be a string or a finite number"
                )


# EXTINF and the URI line, RFC 8216 4.3.2.1
@dataclass(frozen=True, slots=True)
class Segment:
    """A Media Segment; `key`, `map`, `discontinuity` are tags written before it.

    `key` and `map` start applying at this segment and go on until changed, as in the text.
    """

    uri: str
    duration: float
    title: str = ""
    key: Key | None = None
    map: Map | None = None
    byterange: ByteRange | None = None
    discontinuity: bool = False
    program_date_time: str | None = None  # EXT-X-PROGRAM-DATE-TIME (4.3.2.6), ISO 8601
    date_ranges: tuple[DateRange, ...] = ()  # EXT-X-DATERANGE (4.3.2.7), before this segment

    def __post_init__(self) -> None:
        _check_uri_line(self.uri, "segment URI")
        _check_optional_quoted(self.program_date_time, f"segment {self.uri} program date time")
        _check_tuple(self.date_ranges, f"segment {self.uri} date ranges")
        duration = self.duration
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            raise PlaylistError(
                f"segment {self.uri} duration must be a number, got {type(duration).__name__}"
            )
        # Written with six decimals, so anything that prints as 0 is no duration at all.
        if not math.isfinite(duration) or round(duration, DURATION_DECIMALS) <= 0:
            raise PlaylistError(
                f"segment {self.uri} duration must be positive (at least 0.000001 s), "
                f"got {duration!r}"
            )
        _check_text(self.title, f"segment {self.uri} title")


def _continues_range(previous: Segment | None, segment: Segment) -> bool:
    """Whether an offset-less byte range has a sub-range of the same URI to follow."""
    if segment.byterange is None or segment.byterange.offset is not None:
        return True
    return previous is not None and previous.byterange is not None and previous.uri == segment.uri


# Media Playlist tags, RFC 8216 4.3.3
@dataclass(frozen=True, slots=True)
class MediaPlaylist:
    """A Media Playlist: its header tags and segments, in order."""

    target_duration: int
    segments: tuple[Segment, ...]
    version: int = DEFAULT_VERSION
    media_sequence: int = 0
    playlist_type: str | None = "VOD"
    independent_segments: bool = True
    endlist: bool = True

    def __post_init__(self) -> None:
        _check_integer(self.target_duration, "target duration", 1)
        _check_integer(self.version, "EXT-X-VERSION", 1)
        _check_integer(self.media_sequence, "EXT-X-MEDIA-SEQUENCE", 0)
        if self.playlist_type not in PLAYLIST_TYPES:
            raise PlaylistError(
                f"EXT-X-PLAYLIST-TYPE must be VOD, EVENT or None, got {self.playlist_type!r}"
            )
        if self.playlist_type == "VOD" and not self.endlist:
            raise PlaylistError(
                "a VOD playlist must end with EXT-X-ENDLIST (RFC 8216 4.3.3.5); set endlist=True"
            )
        _check_tuple(self.segments, "segments")
        if any(s.date_ranges for s in self.segments) and (
            self.segments[0].program_date_time is None
        ):
            raise PlaylistError(
                "a playlist with EXT-X-DATERANGE must give its first segment an "
                "EXT-X-PROGRAM-DATE-TIME (RFC 8216 4.3.2.7)"
            )
        previous: Segment | None = None
        for index, segment in enumerate(self.segments):
            # 4.3.3.1: each EXTINF, rounded to the nearest integer, is at most the target.
            if rounded_duration(segment.duration) > self.target_duration:
                raise PlaylistError(
                    f"segment {index} ({segment.uri}) lasts {format_duration(segment.duration)} s, "
                    f"longer than the target duration {self.target_duration}"
                )
            # 4.3.2.2: a range without an offset continues the previous segment's resource.
            if not _continues_range(previous, segment):
                raise PlaylistError(
                    f"segment {index} ({segment.uri}) has a byte range without an offset, "
                    "so the segment before it must be a sub-range of the same URI "
                    "(RFC 8216 4.3.2.2)"
                )
            previous = segment

    def segment_keys(self) -> tuple[tuple[Key | None, bytes | None], ...]:
        """Per segment, the EXT-X-KEY in effect and the IV to decrypt it with: the tag's IV,
        else the segment's Media Sequence Number as a 128-bit big-endian integer (RFC 8216
        5.2). (None, None) for a clear segment, and the IV is None under a method other than
        AES-128 (SAMPLE-AES keeps its IVs in the media)."""
        out: list[tuple[Key | None, bytes | None]] = []
        key: Key | None = None
        for index, segment in enumerate(self.segments):
            if segment.key is not None:
                key = segment.key if segment.key.method != "NONE" else None
            if key is None:
                out.append((None, None))
            elif key.iv is not None or key.method != "AES-128":
                out.append((key, key.iv))
            else:
                out.append((key, (self.media_sequence + index).to_bytes(IV_BYTES, "big")))
        return tuple(out)


# EXT-X-SESSION-KEY, RFC 8216 4.3.4.5
@dataclass(frozen=True, slots=True)
class SessionKey:
    """A key the player may preload before reading any Media Playlist."""

    method: str
    uri: str
    iv: bytes | None = None
    keyformat: str | None = None
    keyformatversions: str | None = None

    def __post_init__(self) -> None:
        if self.method == "NONE":
            raise PlaylistError("EXT-X-SESSION-KEY METHOD must not be NONE (RFC 8216 4.3.4.5)")
        _check_key("EXT-X-SESSION-KEY", self)


# EXT-X-SESSION-DATA, RFC 8216 4.3.4.4
@dataclass(frozen=True, slots=True)
class SessionData:
    """Arbitrary session data: a VALUE inline or a URI to JSON, never both."""

    data_id: str
    value: str | None = None
    uri: str | None = None
    language: str | None = None

    def __post_init__(self) -> None:
        _check_quoted(self.data_id, "EXT-X-SESSION-DATA DATA-ID")
        if (self.value is None) == (self.uri is None):
            given = "neither" if self.value is None else "both"
            raise PlaylistError(
                f"EXT-X-SESSION-DATA {self.data_id} needs exactly one of VALUE and URI, "
                f"got {given} (RFC 8216 4.3.4.4)"
            )
        _check_optional_quoted(self.value, "EXT-X-SESSION-DATA VALUE")
        _check_optional_quoted(self.uri, "EXT-X-SESSION-DATA URI")
        _check_optional_quoted(self.language, "EXT-X-SESSION-DATA LANGUAGE")


# EXT-X-CONTENT-STEERING, draft-pantos-hls-rfc8216bis 4.4.6.6
@dataclass(frozen=True, slots=True)
class ContentSteering:
    """Where the player fetches its steering manifest, and the pathway to start on."""

    server_uri: str
    pathway_id: str | None = None

    def __post_init__(self) -> None:
        _check_quoted(self.server_uri, "EXT-X-CONTENT-STEERING SERVER-URI")
        if self.pathway_id is not None:
            _check_charset(
                self.pathway_id,
                "EXT-X-CONTENT-STEERING PATHWAY-ID",
                _PATHWAY_CHARS,
                "[a-zA-Z0-9.-_] (rfc8216bis 4.4.6.6)",
            )


# EXT-X-STREAM-INF and its URI line, RFC 8216 4.3.4.2
@dataclass(frozen=True, slots=True)
class VariantStream:
    """One Variant Stream: a Media Playlist URI and what a player needs to choose it."""

    uri: str
    bandwidth: int
    average_bandwidth: int | None = None
    codecs: str | None = None
    pathway_id: str | None = None
    stable_variant_id: str | None = None
    audio: str | None = None

    def __post_init__(self) -> None:
        _check_uri_line(self.uri, "variant URI")
        _check_integer(self.bandwidth, f"variant {self.uri} BANDWIDTH", 1)
        if self.average_bandwidth is not None:
            _check_integer(self.average_bandwidth, f"variant {self.uri} AVERAGE-BANDWIDTH", 1)
        _check_optional_quoted(self.codecs, f"variant {self.uri} CODECS")
        if self.pathway_id is not None:
            _check_charset(
                self.pathway_id,
                f"variant {self.uri} PATHWAY-ID",
                _PATHWAY_CHARS,
                "[a-zA-Z0-9.-_] (rfc8216bis 4.4.6.2)",
            )
        if self.stable_variant_id is not None:
            _check_charset(
                self.stable_variant_id,
                f"variant {self.uri} STABLE-VARIANT-ID",
                _STABLE_ID_CHARS,
                "[a-zA-Z0-9+/=.-_] (rfc8216bis 4.4.6.2)",
            )
        _check_optional_quoted(self.audio, f"variant {self.uri} AUDIO")


# Multivariant (Master) Playlist tags, RFC 8216 4.3.4
@dataclass(frozen=True, slots=True)
class MultivariantPlaylist:
    """A Multivariant Playlist: session-wide tags and the Variant Streams, in order."""

    variants: tuple[VariantStream, ...]
    session_keys: tuple[SessionKey, ...] = ()
    session_data: tuple[SessionData, ...] = ()
    content_steering: ContentSteering | None = None
    independent_segments: bool = True
    version: int = DEFAULT_VERSION

    def __post_init__(self) -> None:
        _check_tuple(self.variants, "variants")
        _check_tuple(self.session_keys, "session_keys")
        _check_tuple(self.session_data, "session_data")
        if not self.variants:
            raise PlaylistError("a multivariant playlist needs at least one variant stream")
        _check_integer(self.version, "EXT-X-VERSION", 1)
        first_key: dict[SessionKey, int] = {}
        for index, key in enumerate(self.session_keys):
            if key in first_key:
                raise PlaylistError(
                    f"session key {index} repeats session key {first_key[key]}; identical "
                    "EXT-X-SESSION-KEY tags are forbidden (RFC 8216 4.3.4.5)"
                )
            first_key[key] = index
        first_data: dict[tuple[str, str | None], int] = {}
        for index, data in enumerate(self.session_data):
            pair = (data.data_id, data.language)
            if pair in first_data:
                raise PlaylistError(
                    f"session data {index} repeats DATA-ID {data.data_id!r} with LANGUAGE "
                    f"{data.language!r} of session data {first_data[pair]} (RFC 8216 4.3.4.4)"
                )
            first_data[pair] = index
