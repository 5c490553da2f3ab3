"""The line reader both playlist parsers share, and the tags both kinds of playlist hold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from manifests.attributes import Attributes, decimal_integer
from manifests.errors import PlaylistError, PlaylistParseError

_BOM = "\ufeff"


@dataclass
class State:
    """What both kinds of playlist read: the tags they share (4.3.1, 4.3.5)."""

    strict: bool
    version: int = 1  # a playlist without EXT-X-VERSION is version 1 (4.3.1.2)
    independent_segments: bool = False
    seen: dict[str, int] = field(default_factory=dict)

    def once(self, tag: str, line: int) -> None:
        """Note a tag that may appear once per playlist; strict mode refuses a repeat."""
        first = self.seen.get(tag)
        if first is not None and self.strict:
            raise PlaylistParseError(
                f"{tag} appears again (first on line {first}); a playlist holds at most one",
                line,
            )
        self.seen[tag] = line

    def attributes(self, tag: str, value: str, line: int, known: frozenset[str]) -> Attributes:
        return Attributes(tag, value, line, known, self.strict)


def no_value(tag: str, value: str, line: int) -> None:
    """Refuse a value after a tag that takes none."""
    if value:
        raise PlaylistParseError(f"expected nothing after {tag}, got {value!r}", line)


_T = TypeVar("_T")
_S = TypeVar("_S", bound=State)


def built(line: int, build: Callable[[], _T]) -> _T:
    """Build a model object, turning its PlaylistError into a parse error at `line`."""
    try:
        return build()
    except PlaylistError as exc:
        raise PlaylistParseError(str(exc), line) from exc


# Tags both kinds share


def version(state: State, value: str, line: int) -> None:
    """EXT-X-VERSION (4.3.1.2)."""
    state.once("#EXT-X-VERSION", line)
    number = decimal_integer(value, "#EXT-X-VERSION", line)
    if number < 1:
        raise PlaylistParseError(f"expected #EXT-X-VERSION of at least 1, got {number}", line)
    state.version = number


def independent_segments(state: State, value: str, line: int) -> None:
    """EXT-X-INDEPENDENT-SEGMENTS (4.3.5.1)."""
    no_value("#EXT-X-INDEPENDENT-SEGMENTS", value, line)
    state.once("#EXT-X-INDEPENDENT-SEGMENTS", line)
    state.independent_segments = True


def read_lines(
    text: str,
    state: _S,
    tags: dict[str, Callable[[_S, str, int], None]],
    foreign: frozenset[str],
    other_parser: str,
    uri_line: Callable[[_S, str, int], None],
) -> int:
    """Feed each line to its tag function; returns the number of the last line."""
    if text.startswith(_BOM):
        if state.strict:
            raise PlaylistParseError("expected no byte order mark (RFC 8216 4.1)", 1)
        text = text[1:]
    lines = text.split("\n")  # lines end in LF or CRLF (4.1)
    if len(lines) > 1 and not lines[-1]:
        lines.pop()  # the LF that ends the last line starts no new one
    if lines[0].rstrip() != "#EXTM3U":
        raise PlaylistParseError(f"expected #EXTM3U, got {lines[0][:40]!r}", 1)
    number = 1
    for number, raw in enumerate(lines[1:], start=2):
        line = raw[:-1] if raw.endswith("\r") else raw
        if not line.startswith("#EXTINF:"):
            # A title may end in spaces; anything else's trailing space is noise.
            line = line.rstrip()
        if not line:
            continue
        if not line.startswith("#"):
            uri_line(state, line.strip(), number)
            continue
        if not line.startswith("#EXT"):
            continue  # a comment (4.1)
        name, _, value = line.partition(":")
        handler = tags.get(name)
        if handler is not None:
            handler(state, value, number)
        elif name in foreign:
            raise PlaylistParseError(f"{name} belongs in a {other_parser} (RFC 8216 4.3.4)", number)
        elif state.strict:
            raise PlaylistParseError(
                f"unknown tag {name} (parse with strict=False to skip unknown tags)", number
            )
    return number
