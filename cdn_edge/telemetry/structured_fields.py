"""Structured Field Values for HTTP (RFC 8941): the parts CMCD and CMSD are written in.

CMCD (CTA-5004) is an sf-dictionary, which the edge parses; CMSD-Static (CTA-5006) an
sf-dictionary and CMSD-Dynamic an sf-list of items with parameters, which it serialises.
Parsing follows RFC 8941 section 4.2 and fails the whole field on any syntax error
(`StructuredFieldError`), as section 4.2 asks; serialising follows section 4.1. Tokens are
`Token` (a str subclass) so that they stay apart from strings. Why this is ours and not a
library's: docs/decisions/0006-structured-fields-stay-ours.md.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal
from typing import NamedTuple

__all__ = [
    "BareItem",
    "Member",
    "StructuredFieldError",
    "Token",
    "parse_dictionary",
    "serialize_bare_item",
]


class Token(str):
    """An sf-token (RFC 8941 section 3.3.4): unquoted, e.g. the CMCD object type `av`."""

    __slots__ = ()


BareItem = int | float | str | bool | bytes  # str includes Token
Parameters = tuple[tuple[str, BareItem], ...]
InnerList = tuple[tuple[BareItem, Parameters], ...]


class Member(NamedTuple):
    """A dictionary member: its key, value and parameters.

    A named tuple rather than a frozen dataclass: CMCD parses several per request, and a
    frozen dataclass costs five times as much to build."""

    key: str
    value: BareItem | InnerList
    params: Parameters = ()


class StructuredFieldError(ValueError):
    """The field does not parse; `reason` is a short code for counting."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


MAX_INTEGER = 999_999_999_999_999  # section 3.3.1: at most 15 digits
_KEY = re.compile(r"[a-z*][a-z0-9_\-.*]*")  # section 3.1.2
_TOKEN = re.compile(r"[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*")  # section 3.3.4
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")
_STRING_CHARS = frozenset(chr(c) for c in range(0x20, 0x7F))


class _Parser:
    """A cursor over one field value (section 4.2), leading and trailing spaces removed."""

    def __init__(self, text: str) -> None:
        self.text = text.strip(" ")
        self.at = 0

    def fail(self, reason: str, message: str) -> StructuredFieldError:
        return StructuredFieldError(reason, f"{message} at character {self.at}")

    def peek(self) -> str:
        return self.text[self.at] if self.at < len(self.text) else ""

    def done(self) -> bool:
        return self.at >= len(self.text)

    def skip(self, chars: str) -> None:
        while self.at < len(self.text) and self.text[self.at] in chars:
            self.at += 1

    def key(self) -> str:
        match = _KEY.match(self.text, self.at)
        if match is None:
            raise self.fail("bad_key", "expected a key: a-z or '*', then a-z 0-9 _ - . *")
        self.at = match.end()
        return match.group()

    def bare_item(self) -> BareItem:
        char = self.peek()
        if char == '"':
            return self.string()
        if char == "?":
            return self.boolean()
        if char == ":":
            return self.byte_sequence()
        if char == "-" or "0" <= char <= "9":
            return self.number()
        match = _TOKEN.match(self.text, self.at)
        if match is not None:
            self.at = match.end()
            return Token(match.group())
        raise self.fail("bad_value", f"expected a value, found {char!r}" if char else "no value")

    def string(self) -> str:
        out = []
        self.at += 1  # the opening quote
        while self.at < len(self.text):
            char = self.text[self.at]
            self.at += 1
            if char == "\\":
                escaped = self.peek()
                if escaped not in ('"', "\\"):
                    raise self.fail("bad_string", "a backslash must escape '\"' or '\\'")
                out.append(escaped)
                self.at += 1
            elif char == '"':
                return "".join(out)
            elif char not in _STRING_CHARS:
                raise self.fail("bad_string", "strings hold printable ASCII only")
            else:
                out.append(char)
        raise self.fail("bad_string", "a string is not closed")

    def boolean(self) -> bool:
        value = self.text[self.at + 1 : self.at + 2]
        if value not in ("0", "1"):
            raise self.fail("bad_value", "a boolean is ?0 or ?1")
        self.at += 2
        return value == "1"

    def byte_sequence(self) -> bytes:
        end = self.text.find(":", self.at + 1)
        if end < 0:
            raise self.fail("bad_value", "a byte sequence is not closed")
        try:
            value = base64.b64decode(self.text[self.at + 1 : end], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise self.fail("bad_value", "a byte sequence is not base64") from exc
        self.at = end + 1
        return value

    def number(self) -> int | float:
        match = _NUMBER.match(self.text, self.at)
        if match is None:
            raise self.fail("bad_value", "expected a number")
        text = match.group()
        digits = text.lstrip("-")
        if match.group(1) is None:
            if len(digits) > 15:
                raise self.fail("bad_value", "an integer has at most 15 digits")
            self.at = match.end()
            return int(text)
        whole, fraction = digits.split(".")
        if len(whole) > 12 or len(fraction) > 3:
            raise self.fail("bad_value", "a decimal has at most 12 digits, '.', 3 digits")
        self.at = match.end()
        return float(text)

    def parameters(self) -> Parameters:
        params: list[tuple[str, BareItem]] = []
        while self.peek() == ";":
            self.at += 1
            self.skip(" ")
            name = self.key()
            value: BareItem = True
            if self.peek() == "=":
                self.at += 1
                value = self.bare_item()
            params.append((name, value))
        return tuple(params)

    def item_or_inner_list(self) -> BareItem | InnerList:
        if self.peek() != "(":
            return self.bare_item()
        self.at += 1
        items: list[tuple[BareItem, Parameters]] = []
        while True:
            self.skip(" ")
            if self.peek() == ")":
                self.at += 1
                return tuple(items)
            items.append((self.bare_item(), self.parameters()))
            if self.peek() not in (" ", ")"):
                raise self.fail("bad_list", "inner list items are separated by spaces")

    def next_member(self) -> bool:
        """After a member: True if another follows, False at the end."""
        self.skip(" \t")
        if self.done():
            return False
        if self.peek() != ",":
            raise self.fail("syntax", "members are separated by ','")
        self.at += 1
        self.skip(" \t")
        if self.done():
            raise self.fail("syntax", "a trailing ','")
        return True


# Dictionaries as players write CMCD (keys with an integer, token, plain string or boolean, no
# parameters) parse with two regular expressions, several times faster than the general
# parser, which takes everything else (and reports the errors). A value of these kinds ends at
# the first character that cannot continue it, so the members `_SIMPLE_MEMBERS` finds are the
# ones `_SIMPLE_DICTIONARY` matched.
_SIMPLE_VALUE = (
    r'-?[0-9]{1,15}|"[\x20\x21\x23-\x5b\x5d-\x7e]*"|\?[01]'
    r"|[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*"
)
_SIMPLE_MEMBER = rf"[a-z*][a-z0-9_\-.*]*(?:=(?:{_SIMPLE_VALUE}))?"
_SIMPLE_DICTIONARY = re.compile(rf"{_SIMPLE_MEMBER}(?:,[ \t]*{_SIMPLE_MEMBER})*")
_SIMPLE_MEMBERS = re.compile(rf"([a-z*][a-z0-9_\-.*]*)(?:=({_SIMPLE_VALUE}))?")


def _simple_value(text: str) -> BareItem:
    if not text:
        return True  # a bare key
    first = text[0]
    if first == '"':
        return text[1:-1]
    if first == "?":
        return text == "?1"
    if first == "-" or "0" <= first <= "9":
        return int(text)
    return Token(text)


def _parse_simple_dictionary(text: str) -> list[Member] | None:
    """The members of a dictionary of simple members, or None for the general parser."""
    if _SIMPLE_DICTIONARY.fullmatch(text) is None:
        return None
    return [Member(key, _simple_value(value)) for key, value in _SIMPLE_MEMBERS.findall(text)]


def simple_dictionary_texts(text: str) -> list[tuple[str, str]] | None:
    """A dictionary of simple members (no parameters, no inner lists) as (key, value text)
    pairs in order, "" for a bare key; None when it needs the general parser
    (`parse_dictionary`). `simple_value(value text)` is the member's value, so a caller may
    remember what it made of a pair it has seen."""
    if _SIMPLE_DICTIONARY.fullmatch(text) is None:
        return None
    return _SIMPLE_MEMBERS.findall(text)


simple_value = _simple_value


def parse_dictionary(text: str) -> list[Member]:
    """An sf-dictionary's members in order, repeats included (section 4.2.2)."""
    simple = _parse_simple_dictionary(text)
    return simple if simple is not None else _parse_dictionary(text)


def _parse_dictionary(text: str) -> list[Member]:
    parser = _Parser(text)
    members: list[Member] = []
    if parser.done():
        return members
    while True:
        name = parser.key()
        value: BareItem | InnerList = True
        if parser.peek() == "=":
            parser.at += 1
            value = parser.item_or_inner_list()
        members.append(Member(name, value, parser.parameters()))
        if not parser.next_member():
            return members


def serialize_bare_item(value: BareItem) -> str:
    """One bare item (section 4.1.3); ValueError for what RFC 8941 cannot carry."""
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        if abs(value) > MAX_INTEGER:
            raise ValueError(f"integer {value} has more than 15 digits")
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"decimal {value} is not finite")
        # Section 4.1.5: round to three decimals (half to even), at most 12 integer digits.
        rounded = Decimal(repr(value)).quantize(Decimal("0.001"), rounding=ROUND_HALF_EVEN)
        if abs(rounded) >= 10**12:
            raise ValueError(f"decimal {value} has more than 12 integer digits")
        text = format(rounded, "f").rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, Token):
        if not _TOKEN.fullmatch(value):
            raise ValueError(f"{value!r} is not a token")
        return str(value)
    if isinstance(value, str):
        if not set(value) <= _STRING_CHARS:
            raise ValueError("strings hold printable ASCII only")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, bytes):
        return ":" + base64.b64encode(value).decode("ascii") + ":"
    raise ValueError(f"{type(value).__name__} is not a structured field item")
