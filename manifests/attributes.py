"""Reading attribute-lists and the value types of RFC 8216 4.2, with line-numbered errors."""

from __future__ import annotations

from dataclasses import dataclass

from manifests.errors import PlaylistParseError
from manifests.model import IV_BYTES, MAX_DECIMAL_INTEGER, ByteRange

_DIGITS = frozenset("0123456789")
_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-")  # AttributeName, 4.2


def decimal_integer(text: str, what: str, line: int) -> int:
    """decimal-integer (4.2): ASCII digits only, below 2**64."""
    if not text or not set(text) <= _DIGITS:
        raise PlaylistParseError(f"expected a decimal-integer for {what}, got {text!r}", line)
    value = int(text)
    if value > MAX_DECIMAL_INTEGER:
        raise PlaylistParseError(f"{what} {text} does not fit a decimal-integer", line)
    return value


def decimal_float(text: str, what: str, line: int) -> float:
    """decimal-floating-point (4.2): digits with at most one '.', no sign or exponent."""
    if not text or not set(text) <= _DIGITS | {"."} or text.count(".") > 1 or text == ".":
        raise PlaylistParseError(f"expected a decimal number for {what}, got {text!r}", line)
    return float(text)


def hexadecimal_iv(text: str, what: str, line: int) -> bytes:
    """hexadecimal-sequence (4.2) holding a 128-bit integer, as 16 big-endian bytes."""
    digits = text[2:]
    if text[:2] not in ("0x", "0X") or not digits or not set(digits) <= _HEX_DIGITS:
        raise PlaylistParseError(f"expected a 0x-prefixed hexadecimal IV for {what}", line)
    if len(digits) > 2 * IV_BYTES:
        raise PlaylistParseError(f"{what} has {len(digits)} hex digits, more than 128 bits", line)
    return int(digits, 16).to_bytes(IV_BYTES, "big")


def byterange(text: str, what: str, line: int) -> ByteRange:
    """`n[@o]` (4.3.2.2)."""
    length, at, offset = text.partition("@")
    return ByteRange(
        decimal_integer(length, f"{what} length", line),
        decimal_integer(offset, f"{what} offset", line) if at else None,
    )


@dataclass(frozen=True, slots=True)
class _Value:
    text: str
    quoted: bool


def _lex(tag: str, text: str, line: int) -> dict[str, _Value]:
    """NAME=VALUE pairs split on commas outside quotes, no whitespace (4.2)."""
    attrs: dict[str, _Value] = {}
    i, end = 0, len(text)
    while i < end:
        eq = text.find("=", i)
        name = text[i:eq] if eq >= 0 else text[i:]
        if eq < 0 or not name or not set(name) <= _NAME_CHARS:
            raise PlaylistParseError(
                f"expected NAME=VALUE in the {tag} attribute-list at column {i + 1}, got {name!r}",
                line,
            )
        if text.startswith('"', eq + 1):
            close = text.find('"', eq + 2)
            if close < 0:
                raise PlaylistParseError(f"{tag} {name} has an unterminated quoted-string", line)
            value = _Value(text[eq + 2 : close], quoted=True)
            i = close + 1
        else:
            comma = text.find(",", eq + 1)
            i = end if comma < 0 else comma
            value = _Value(text[eq + 1 : i], quoted=False)
            if not value.text or '"' in value.text:
                raise PlaylistParseError(f"{tag} {name} has a malformed value", line)
        if name in attrs:
            raise PlaylistParseError(f"{tag} repeats the attribute {name}", line)
        attrs[name] = value
        if i < end:
            if text[i] != "," or i + 1 == end:
                raise PlaylistParseError(
                    f"expected ',' and another attribute after {tag} {name}", line
                )
            i += 1
    return attrs


class Attributes:
    """An attribute-list of one tag, read by name and type."""

    __slots__ = ("_attrs", "_line", "_tag")

    def __init__(
        self,
        tag: str,
        text: str,
        line: int,
        known: frozenset[str],
        strict: bool,
        *,
        client: bool = False,
    ) -> None:
        """`client`: the tag also takes client attributes, X-<name> (4.3.2.7.1)."""
        self._tag, self._line = tag, line
        self._attrs = _lex(tag, text, line)
        if strict:
            unknown = sorted(
                n for n in set(self._attrs) - known if not (client and n.startswith("X-"))
            )
            if unknown:
                raise PlaylistParseError(
                    f"{tag} has unknown attribute {', '.join(unknown)}; expected only "
                    f"{', '.join(sorted(known))} (parse with strict=False to ignore it)",
                    line,
                )

    def _get(self, name: str, quoted: bool) -> str | None:
        value = self._attrs.get(name)
        if value is None:
            return None
        if value.quoted != quoted:
            kind = "a quoted-string" if quoted else "an unquoted value"
            raise PlaylistParseError(f"expected {kind} for {self._tag} {name}", self._line)
        return value.text

    def _required(self, name: str, quoted: bool) -> str:
        value = self._get(name, quoted)
        if value is None:
            raise PlaylistParseError(f"{self._tag} lacks the required {name} attribute", self._line)
        return value

    def quoted(self, name: str) -> str | None:
        return self._get(name, quoted=True)

    def required_quoted(self, name: str) -> str:
        return self._required(name, quoted=True)

    def required_enumerated(self, name: str) -> str:
        return self._required(name, quoted=False)

    def required_integer(self, name: str) -> int:
        text = self._required(name, quoted=False)
        return decimal_integer(text, f"{self._tag} {name}", self._line)

    def integer(self, name: str) -> int | None:
        text = self._get(name, quoted=False)
        return None if text is None else decimal_integer(text, f"{self._tag} {name}", self._line)

    def decimal(self, name: str) -> float | None:
        text = self._get(name, quoted=False)
        return None if text is None else decimal_float(text, f"{self._tag} {name}", self._line)

    def client_attributes(self, strict: bool) -> tuple[tuple[str, str | float], ...]:
        """The X- attributes in order (4.3.2.7.1): a quoted-string, or a decimal number. A
        hexadecimal-sequence, which we do not model, fails strictly and is skipped leniently."""
        found: list[tuple[str, str | float]] = []
        for name, value in self._attrs.items():
            if not name.startswith("X-"):
                continue
            if value.quoted:
                found.append((name, value.text))
            elif value.text[:2] in ("0x", "0X"):
                if strict:
                    raise PlaylistParseError(
                        f"{self._tag} {name} is a hexadecimal-sequence; expected a "
                        "quoted-string or a decimal number (parse with strict=False to skip it)",
                        self._line,
                    )
            else:
                found.append((name, decimal_float(value.text, f"{self._tag} {name}", self._line)))
        return tuple(found)

    def iv(self, name: str) -> bytes | None:
        text = self._get(name, quoted=False)
        return None if text is None else hexadecimal_iv(text, f"{self._tag} {name}", self._line)
