"""CMSD headers read back for tests with `http-sf`, a structured-field parser not ours.

The edge and nginx only write CMSD (cdn_edge/telemetry/cmsd.py); tests check what they wrote
by parsing it with an independent RFC 8941 implementation into the edge's own models.
"""

from __future__ import annotations

from typing import Any

import http_sf

from cdn_edge.telemetry.cmsd import CmsdDynamic, CmsdStatic

_STATIC_TOKENS = ("ot", "sf", "st")
_STATIC_INTEGERS = ("d", "br")
_DYNAMIC_INTEGERS = ("etp", "mb", "rd", "rtt")


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, http_sf.Token) else value


def parse_cmsd_static(text: str) -> CmsdStatic:
    """A CMSD-Static value; ValueError for a key the edge does not write."""
    values: dict[str, Any] = {"sf": None, "st": None}
    parsed: dict[str, Any] = http_sf.parse(text.encode(), tltype="dictionary")  # type: ignore[assignment]
    for key, (value, params) in parsed.items():
        token = key in _STATIC_TOKENS and isinstance(value, http_sf.Token)
        integer = key in _STATIC_INTEGERS and type(value) is int
        if params or not (token or integer):
            raise ValueError(f"CMSD-Static member {key}={value!r} is not one the edge writes")
        values[key] = _plain(value)
    return CmsdStatic(**values)


def parse_cmsd_dynamic(text: str) -> tuple[CmsdDynamic, ...]:
    """The entries of a CMSD-Dynamic value; ValueError for one the edge does not write."""
    entries = []
    parsed: list[Any] = http_sf.parse(text.encode(), tltype="list")  # type: ignore[assignment]
    for value, params in parsed:
        if not isinstance(value, str):
            raise ValueError(f"CMSD-Dynamic entry {value!r} is not a quoted server id")
        known: dict[str, Any] = {}
        for key, param in params.items():
            if (key in _DYNAMIC_INTEGERS and type(param) is int) or (key == "du" and param is True):
                known[key] = param
            else:
                raise ValueError(f"CMSD-Dynamic parameter {key}={param!r} is not the edge's")
        entries.append(CmsdDynamic(value, **known))
    return tuple(entries)
