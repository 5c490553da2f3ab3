"""A table declared once: its columns, their CQL and SQLite types, and how a model is stored.

Both session stores derive their statements and row codecs from these declarations
(streamer.sessions.tables), so a field is added to a model and its table in one place:

    Kind     how one kind of value is stored: its CQL type, its SQLite type, and the
             conversions a store needs where its driver does not take the model's value as is
    Column   a field of the model and the column that holds it
    Table    the model's table: its columns, the item's identity (SQLite's primary key, the
             copy a CQL read keeps), the order of a session's items (CQL's clustering
             columns), how long rows are kept

Optional columns (a value most items lack) are nullable columns in SQLite; in CQL they are
kept together as JSON in the row's `extra` text column, because a null column written is a
tombstone. The CQL tables themselves are created by the numbered migrations of
streamer.cql.schema, whose text never changes; a test checks them against these declarations.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from operator import attrgetter
from typing import Any, Generic, TypeVar

import orjson

M = TypeVar("M")
Convert = Callable[[Any], Any]

EXTRA_COLUMN = "extra"  # CQL: the optional fields of a row, as a JSON object ("" if none)
SESSION_KEY = "session_id"  # every declared table is keyed (CQL: partitioned) by session

_compact_json = json.JSONEncoder(separators=(",", ":")).encode
_canonical_json = json.JSONEncoder(sort_keys=True, separators=(",", ":")).encode
# Values are checked finite on the way in (streamer.telemetry.model); ensure_ascii=False
# leaves text SQLite cannot take (a lone surrogate) to fail the batch, as a bound parameter
# would.
_rows_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def cql_date(value: object) -> date:
    """A CQL `date` as the driver returns it (its own type, printed as ISO 8601)."""
    return value if type(value) is date else date.fromisoformat(str(value))


# orjson writes the same text as `_canonical_json` for an object of str keys and str, int, bool
# or null values when its output is ASCII (the stdlib escapes the rest); floats may differ in
# form (1e+16 against 1e16), so they go through the stdlib. It is 3-4 times faster, and the
# log shipper encodes one such object (a CMCD sample's keys) per line it ships.
_ORJSON_SAME_TEXT = frozenset({str, int, bool, type(None)})


def _json_object(value: Mapping[str, Any]) -> str:
    plain = dict(value)
    if all(type(v) in _ORJSON_SAME_TEXT for v in plain.values()):
        try:
            text = orjson.dumps(plain, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            pass  # a non-str key, a lone surrogate, an int past 64 bits: the stdlib decides
        else:
            if text.isascii():
                return text.decode()
    return _canonical_json(plain)


def _json_list(value: Sequence[Any]) -> str:
    return _compact_json(list(value))


def _tuple_of_json(text: str) -> tuple[Any, ...]:
    return tuple(json.loads(text))


@dataclass(frozen=True)
class Kind:
    """How values of one kind are stored; a conversion left None is not needed."""

    cql: str
    sqlite: str
    to_cql: Convert | None = None
    from_cql: Convert | None = None
    to_sqlite: Convert | None = None
    from_sqlite: Convert | None = None
    # SQLite's JSON functions keep 15 significant digits: a JSON read carries these as text.
    real: bool = False


TEXT = Kind("text", "TEXT")
INT = Kind("int", "INTEGER")
BIGINT = Kind("bigint", "INTEGER")
DOUBLE = Kind("double", "REAL", from_sqlite=float, real=True)
BOOLEAN = Kind("boolean", "INTEGER", to_sqlite=int, from_sqlite=bool)
DATE = Kind(
    "date", "TEXT", from_cql=cql_date, to_sqlite=date.isoformat, from_sqlite=date.fromisoformat
)
JSON_OBJECT = Kind(
    "text", "TEXT", to_cql=_json_object, from_cql=json.loads,
    to_sqlite=_json_object, from_sqlite=json.loads,
)  # fmt: skip
JSON_LIST = Kind(
    "text", "TEXT", to_cql=_json_list, from_cql=_tuple_of_json,
    to_sqlite=_json_list, from_sqlite=_tuple_of_json,
)  # fmt: skip


@dataclass(frozen=True)
class Column:
    """A field of the model and the column that holds it (the same name)."""

    name: str
    kind: Kind
    optional: bool = False  # may be None: see the module docstring


@dataclass(frozen=True)
class Expiry:
    """Rows are kept `retention_s` after the time in `column` (CQL: the table's TTL)."""

    column: str
    per_second: int  # the column's units in a second: 1000 for milliseconds
    retention_s: int


def json_rows(rows: Sequence[Any]) -> str:
    """Rows (or ids) as one JSON array: the parameter of `Table.sqlite_insert_json` and
    `Table.sqlite_select_json`."""
    # orjson where it can (4 times faster on the shipper's rows); SQLite reads its numbers as
    # the same values. It refuses a lone surrogate and an int past 64 bits: the stdlib then
    # encodes, as before, and SQLite or the bound parameter fails the batch. (A NaN, which
    # orjson would write as null, never gets here: the models check values finite.)
    try:
        return orjson.dumps(rows).decode()
    except orjson.JSONEncodeError:
        return _rows_json(rows)


@dataclass(frozen=True)
class Table(Generic[M]):
    """A model's table, and what each store derives from it."""

    name: str  # in SQLite, and in CQL unless `cql_name` says otherwise
    model: Callable[..., M]  # the frozen dataclass whose fields the columns are
    columns: tuple[Column, ...]
    identity: tuple[str, ...]  # SQLite's primary key; CQL reads keep the first copy of each
    order: tuple[str, ...] = ()  # a session's items in this order; CQL's clustering columns
    cql_name: str = ""
    expiry: Expiry | None = None

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names) or EXTRA_COLUMN in names:
            raise ValueError(f"table {self.name}: column names must be distinct, got {names}")
        keys = (SESSION_KEY, *self.identity, *self.order)
        if self.expiry is not None:
            keys += (self.expiry.column,)
        for name in keys:
            column = next((c for c in self.columns if c.name == name), None)
            if column is None or column.optional:
                raise ValueError(f"table {self.name}: {name} must be a required column")

    # What both stores share

    @functools.cached_property
    def names(self) -> tuple[str, ...]:
        """Every column, in declaration order: SQLite's columns."""
        return tuple(c.name for c in self.columns)

    @functools.cached_property
    def _values(self) -> Callable[[M], tuple[Any, ...]]:
        return attrgetter(*self.names)

    def sort_key(self, item: M) -> tuple[Any, ...]:
        return tuple(getattr(item, name) for name in self.order)

    @functools.cached_property
    def _to_sqlite(self) -> tuple[tuple[int, Convert], ...]:
        return tuple((i, c.kind.to_sqlite) for i, c in enumerate(self.columns) if c.kind.to_sqlite)

    @functools.cached_property
    def _from_sqlite(self) -> tuple[tuple[str, Convert], ...]:
        return tuple((c.name, c.kind.from_sqlite) for c in self.columns if c.kind.from_sqlite)

    # SQLite

    def sqlite_row(self, item: M) -> list[Any]:
        """The item's values for SQLite, in `names` order."""
        values = list(self._values(item))
        for index, convert in self._to_sqlite:
            if values[index] is not None:
                values[index] = convert(values[index])
        return values

    def from_sqlite(self, values: Sequence[Any]) -> M:
        """The item of a SQLite row of `names` (plain or as `sqlite_select_json` gives it)."""
        fields = dict(zip(self.names, values, strict=True))
        for name, convert in self._from_sqlite:
            if fields[name] is not None:
                fields[name] = convert(fields[name])
        return self.model(**fields)

    def sqlite_ddl(
        self, name: str = "", *, primary_key: bool = True, without_rowid: bool = False
    ) -> str:
        """CREATE TABLE IF NOT EXISTS for this table (or a table of the same columns `name`)."""
        lines = [
            f"    {c.name} {c.kind.sqlite}{'' if c.optional else ' NOT NULL'}" for c in self.columns
        ]
        if primary_key:
            lines.append(f"    PRIMARY KEY ({', '.join(self.identity)})")
        body = ",\n".join(lines)
        rowid = " WITHOUT ROWID" if without_rowid else ""
        return f"CREATE TABLE IF NOT EXISTS {name or self.name} (\n{body}\n){rowid}"

    def sqlite_insert(self, verb: str = "INSERT OR IGNORE") -> str:
        """One row as parameters, in `names` order."""
        marks = ", ".join("?" * len(self.names))
        return f"{verb} INTO {self.name} ({', '.join(self.names)}) VALUES ({marks})"

    def sqlite_insert_json(self, name: str = "") -> str:
        """INSERT OR IGNORE of the rows of one parameter, `json_rows` of `sqlite_row`s.

        One statement, not one per row: the sqlite3 module lets go of the interpreter lock on
        every statement step, and with the edge's event loop busy each step waited up to the
        5 ms switch interval to get it back (benchmarks/README.md).
        """
        values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(self.names)))
        return (
            f"INSERT OR IGNORE INTO {name or self.name} ({', '.join(self.names)}) "
            f"SELECT {values} FROM json_each(?)"
        )

    def sqlite_select(self, where: str) -> str:
        return f"SELECT {', '.join(self.names)} FROM {self.name} WHERE {where}"

    def sqlite_select_json(self) -> str:
        """One row: a JSON array of the rows of the sessions named by one parameter, a JSON
        array of session ids. Reals are written as 17-digit text (see Kind.real)."""
        values = ", ".join(
            f"CASE WHEN {c.name} IS NULL THEN NULL ELSE printf('%!.17g', {c.name}) END"
            if c.kind.real
            else c.name
            for c in self.columns
        )
        return (
            f"SELECT json_group_array(json_array({values})) FROM {self.name} "
            f"WHERE {SESSION_KEY} IN (SELECT value FROM json_each(?))"
        )

    # CQL

    @property
    def cql_table(self) -> str:
        return self.cql_name or self.name

    @functools.cached_property
    def cql_columns(self) -> tuple[str, ...]:
        """The CQL table's columns: the required ones, then `extra` if any are optional."""
        required = tuple(c.name for c in self.columns if not c.optional)
        return required + ((EXTRA_COLUMN,) if len(required) < len(self.columns) else ())

    @functools.cached_property
    def cql_primary_key(self) -> tuple[str, ...]:
        """The partition key (the session), then the clustering columns."""
        return (SESSION_KEY, *self.order)

    @functools.cached_property
    def cql_first_written(self) -> str:
        """The first regular column: its WRITETIME tells which copy of a row came first."""
        return next(name for name in self.cql_columns if name not in self.cql_primary_key)

    def cql_row(self, item: M) -> list[Any]:
        """The item's values for CQL, in `cql_columns` order."""
        values = self._values(item)
        row: list[Any] = []
        extra: dict[str, Any] = {}
        for column, value in zip(self.columns, values, strict=True):
            if column.optional:
                if value is not None:
                    extra[column.name] = value
            else:
                convert = column.kind.to_cql
                row.append(value if convert is None else convert(value))
        if len(row) < len(values):
            row.append(_compact_json(extra) if extra else "")
        return row

    def from_cql(self, row: Mapping[str, Any]) -> M:
        """The item of a CQL row (a mapping of at least `cql_columns`)."""
        fields: dict[str, Any] = {}
        for column in self.columns:
            if not column.optional:
                convert = column.kind.from_cql
                value = row[column.name]
                fields[column.name] = value if convert is None else convert(value)
        if row.get(EXTRA_COLUMN):
            fields.update(json.loads(row[EXTRA_COLUMN]))
        return self.model(**fields)

    def cql_insert(self, suffix: str = "") -> str:
        marks = ", ".join("?" * len(self.cql_columns))
        return (
            f"INSERT INTO {self.cql_table} ({', '.join(self.cql_columns)}) VALUES ({marks}){suffix}"
        )

    def cql_select(self, *more: str) -> str:
        """The columns (and `more` selectors) of one session's rows."""
        selected = ", ".join((*self.cql_columns, *more))
        return f"SELECT {selected} FROM {self.cql_table} WHERE {SESSION_KEY} = ?"
