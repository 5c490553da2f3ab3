"""Our RFC 8941 structured fields against the maintained libraries `http-sf` and `http-sfv`.

    python -m benchmarks.structured_fields [--seconds 0.5] [--runs 5]

CMCD (CTA-5004) arrives as an sf-dictionary on every playlist, key and segment request the edge
serves and on every line the log shipper reads; CMSD-Dynamic (CTA-5006) is an sf-list the edge
writes on every segment response. This measures, in one process and in alternating order:

    parse       the field values players send (hls.js's query form, its four headers, a
                playlist request, a value with custom keys and a decimal), into members;
    parse+adapt the libraries' output converted to the `Member` tuples the CMCD reader takes
                (what switching would cost the hot path: the key checks stay ours);
    serialize   the CMSD-Dynamic entry of a segment response, and a CMSD-Static dictionary.

Correctness: every implementation parses the dictionary field values of tests/telemetry (the
CMCD and CMSD-Static vectors, and every pair of the member shapes the fast-path property test
joins) and is compared with ours, value by value and with RFC 8941's last-wins duplicates;
disagreements are listed. Serialisations must equal the edge's CMSD headers byte for byte.
Reported as ops/s (median of `--runs`, min and max) and the ratio to ours.

One module on purpose (about 430 lines): a benchmark program reads top to bottom, from the
three parsers' adapters through the workloads to the report.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from types import ModuleType
from typing import Any
from urllib.parse import unquote

from cdn_edge.telemetry.cmcd import read_cmcd_keys
from cdn_edge.telemetry.cmsd import CmsdDynamic, CmsdStatic, render_cmsd_dynamic, render_cmsd_static
from cdn_edge.telemetry.structured_fields import (
    Member,
    StructuredFieldError,
    Token,
    parse_dictionary,
)

http_sf: ModuleType | None
http_sfv: ModuleType | None
try:
    import http_sf
except ImportError:  # pip install -e '.[bench]'
    http_sf = None
try:
    import http_sfv
except ImportError:
    http_sfv = None

# The CTA-5004 example as hls.js sends it in the query (tests/telemetry/test_cmcd.py).
HLSJS_QUERY = unquote(
    "bl%3D21300%2Cbr%3D3200%2Cbs%2Ccid%3D%22faec5fc2-ac30-11eabb37-0242ac130002%22%2Cd%3D4004"
    "%2Cdl%3D18500%2Cmtp%3D48100%2Cot%3Dv%2Csf%3Dh%2Csid%3D%226e2fb550-c457-11e9-bb97-"
    "0800200c9a66%22%2Cst%3Dv%2Ctb%3D6000"
)
HLSJS_HEADERS = (
    "br=160,d=6000,ot=a,tb=256",
    'bl=12000,mtp=5400,nor="seg_00004.m4s",su',
    'cid="trk1",sf=h,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",st=v',
    "bs,rtp=1200",
)
PLAYLIST_REQUEST = 'cid="trk1",ot=m,sf=h,sid="abc",st=v,su'
CUSTOM_AND_DECIMAL = 'com.example-buffer=12,com.example-name="x",com.example-t=tok,pr=1.25'
PARSE_CASES = {
    "hls.js query (12 keys)": (HLSJS_QUERY,),
    "hls.js 4 headers": HLSJS_HEADERS,
    "playlist request (6 keys)": (PLAYLIST_REQUEST,),
    "custom keys + decimal": (CUSTOM_AND_DECIMAL,),
}

# Field values of tests/telemetry (test_cmcd.py, test_cmsd.py), valid and not.
DICTIONARY_VECTORS = (
    HLSJS_QUERY,
    *HLSJS_HEADERS,
    PLAYLIST_REQUEST,
    CUSTOM_AND_DECIMAL,
    "br=3200,,d=4",
    "BR=3200",
    'cid="unterminated',
    "br=3200 d=4",
    "br=3200,foo=1",
    "br=-5,d=4004",
    'br="3200",d=4004',
    "br=3.5",
    "ot=x,sf=h",
    'ot="a"',
    "bs=1",
    "sid=" + '"' + "x" * 65 + '"',
    'nrr="abc"',
    "v=0",
    "br=(1),st=v",
    "br=1;x=2",
    "d=1,d=2",
    "br=" + "9" * 16,
    "br=160,,",
    "ot=a,sf=h,st=v,d=6000,br=160",
    "ot=v,sf=h,st=v,d=5000,br=2000",
)
# The member shapes of test_the_fast_dictionary_path_agrees_with_the_parser, joined in pairs.
MEMBER_PARTS = (
    "bl=21300", "br=160", "ot=a", 'sid="6e2fb550-c457"', "bs", "su=?0", "su=?1", "d=-4",
    "pr=1.25", 'nor="../seg%202.m4s"', "x-y=tok:en/1", 'cid="a,b=c"', "n=1;p", 'k="q\\"x"',
    "a=1234567890123456", "A=1", "k=", "=1", "k=(1 2)", "k=:aGk=:", " ", "",
)  # fmt: skip
GLUES = (",", ", ", ",,", ";", ",\t")

Normal = tuple[tuple[str, object, tuple[tuple[str, object], ...]], ...] | str


# Each implementation as functions: parse a dictionary (raw, and adapted to our Members), and
# serialize the CMSD entries. The library adapters are what a switch would need.


def _ours_dictionary(text: str) -> list[Member]:
    return parse_dictionary(text)


def _sf_bare(value: Any) -> Any:
    if http_sf is not None and isinstance(value, http_sf.Token):
        return Token(str(value))
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sf_member(key: str, value: Any) -> Member:
    item, params = value
    params_tuple = tuple((k, _sf_bare(v)) for k, v in params.items())
    if isinstance(item, list):  # an inner list
        inner = tuple((_sf_bare(i), tuple((k, _sf_bare(v)) for k, v in p.items())) for i, p in item)
        return Member(key, inner, params_tuple)
    return Member(key, _sf_bare(item), params_tuple)


def _http_sf_dictionary(text: str) -> list[Member]:
    assert http_sf is not None
    parsed = http_sf.parse(text.encode(), tltype="dictionary")
    return [_sf_member(key, value) for key, value in parsed.items()]


def _sfv_bare(value: Any) -> Any:
    if http_sfv is not None and isinstance(value, http_sfv.Token):
        return Token(str(value))
    if isinstance(value, Decimal):
        return float(value)
    return value


def _sfv_member(key: str, member: Any) -> Member:
    assert http_sfv is not None
    params = tuple((k, _sfv_bare(v)) for k, v in member.params.items())
    if isinstance(member, http_sfv.InnerList):
        inner = tuple(
            (_sfv_bare(i.value), tuple((k, _sfv_bare(v)) for k, v in i.params.items()))
            for i in member
        )
        return Member(key, inner, params)
    return Member(key, _sfv_bare(member.value), params)


def _http_sfv_dictionary(text: str) -> list[Member]:
    assert http_sfv is not None
    parsed = http_sfv.Dictionary()
    parsed.parse(text.encode())
    return [_sfv_member(key, value) for key, value in parsed.items()]


def _http_sf_raw(text: str) -> object:
    assert http_sf is not None
    return http_sf.parse(text.encode(), tltype="dictionary")


def _http_sfv_raw(text: str) -> object:
    assert http_sfv is not None
    parsed = http_sfv.Dictionary()
    parsed.parse(text.encode())
    return parsed


DYNAMIC = CmsdDynamic("edge-1", etp=5400, mb=160, rd=2)
STATIC = CmsdStatic(ot="a", d=6000, br=160)
DYNAMIC_TEXT = '"edge-1";etp=5400;mb=160;rd=2'
STATIC_TEXT = "ot=a,sf=h,st=v,d=6000,br=160"


def _ours_dynamic() -> str:
    return render_cmsd_dynamic((DYNAMIC,))


def _ours_static() -> str:
    return render_cmsd_static(STATIC)


def _http_sf_dynamic() -> str:
    assert http_sf is not None
    text: str = http_sf.ser([("edge-1", {"etp": 5400, "mb": 160, "rd": 2})])
    return text


def _http_sf_static() -> str:
    assert http_sf is not None
    token = http_sf.Token
    members = {"ot": token("a"), "sf": token("h"), "st": token("v"), "d": 6000, "br": 160}
    text: str = http_sf.ser(members).replace(", ", ",")  # ours writes no space
    return text


def _http_sfv_dynamic() -> str:
    assert http_sfv is not None
    item = http_sfv.Item("edge-1")
    item.params.update(etp=5400, mb=160, rd=2)
    entries = http_sfv.List()
    entries.append(item)
    return str(entries)


def _http_sfv_static() -> str:
    assert http_sfv is not None
    token = http_sfv.Token
    members = http_sfv.Dictionary()
    members.update(ot=token("a"), sf=token("h"), st=token("v"), d=6000, br=160)
    return str(members).replace(", ", ",")


Impl = dict[str, Callable[..., Any]]
IMPLS: dict[str, Impl] = {
    "ours": {
        "dictionary": _ours_dictionary,
        "raw": _ours_dictionary,
        "dynamic": _ours_dynamic,
        "static": _ours_static,
    },
    "http-sf": {
        "dictionary": _http_sf_dictionary,
        "raw": _http_sf_raw,
        "dynamic": _http_sf_dynamic,
        "static": _http_sf_static,
    },
    "http-sfv": {
        "dictionary": _http_sfv_dictionary,
        "raw": _http_sfv_raw,
        "dynamic": _http_sfv_dynamic,
        "static": _http_sfv_static,
    },
}


def available() -> list[str]:
    names = ["ours"]
    names += ["http-sf"] if http_sf is not None else []
    names += ["http-sfv"] if http_sfv is not None else []
    return names


def _version(name: str) -> str:
    module = {"http-sf": http_sf, "http-sfv": http_sfv}.get(name)
    return getattr(module, "__version__", "") if module is not None else "this tree"


# Correctness


def _normal(members: list[Member]) -> Normal:
    """Members as comparable values: a Token apart from a string, RFC 8941 duplicates last-wins."""

    def bare(value: object) -> object:
        if isinstance(value, Token):
            return ("token", str(value))
        if isinstance(value, bool):
            return ("bool", value)
        if isinstance(value, float):
            return ("decimal", value)
        if isinstance(value, tuple):  # an inner list
            return tuple((bare(i), tuple((k, bare(v)) for k, v in p)) for i, p in value)
        return value

    merged: dict[str, tuple[object, tuple[tuple[str, object], ...]]] = {}
    for member in members:
        params: dict[str, object] = {}
        for key, value in member.params:  # section 4.2.3.2: a repeated parameter overwrites
            params[key] = bare(value)
        # Section 4.2.2: a repeated key overwrites the value in place (insertion order kept).
        merged[member.key] = (bare(member.value), tuple(params.items()))
    return tuple((key, value, params) for key, (value, params) in merged.items())


def _outcome(parse: Callable[[str], list[Member]], text: str) -> Normal:
    try:
        return _normal(parse(text))
    except (StructuredFieldError, ValueError):
        return "error"


def vectors() -> list[tuple[str, str]]:
    joined = [
        glue.join(pair) for pair in itertools.product(MEMBER_PARTS, repeat=2) for glue in GLUES
    ]
    return [("dictionary", text) for text in (*DICTIONARY_VECTORS, *joined)]


def check_correctness(names: list[str]) -> dict[str, list[tuple[str, object, object]]]:
    """Per implementation, the vectors where it disagrees with ours: (text, ours, theirs)."""
    disagreements: dict[str, list[tuple[str, object, object]]] = {name: [] for name in names}
    for kind, text in vectors():
        ours = _outcome(IMPLS["ours"][kind], text)
        for name in names[1:]:
            theirs = _outcome(IMPLS[name][kind], text)
            if theirs != ours:
                disagreements[name].append((text, ours, theirs))
    return disagreements


def check_serialization(names: list[str]) -> dict[str, list[str]]:
    wrong: dict[str, list[str]] = {name: [] for name in names}
    for name in names:
        if IMPLS[name]["dynamic"]() != DYNAMIC_TEXT:
            wrong[name].append(f"dynamic {IMPLS[name]['dynamic']()!r}")
        if IMPLS[name]["static"]() != STATIC_TEXT:
            wrong[name].append(f"static {IMPLS[name]['static']()!r}")
    return wrong


# Speed


def ops_per_second(call: Callable[[], object], seconds: float) -> float:
    """Calls per second of `call`, timed over about `seconds`."""
    batch = 1
    while True:  # a batch long enough for the clock: about 10 ms
        started = time.perf_counter()
        for _ in range(batch):
            call()
        elapsed = time.perf_counter() - started
        if elapsed > 0.01:
            break
        batch *= 4
    rounds = max(1, int(seconds / elapsed))
    started = time.perf_counter()
    for _ in range(rounds * batch):
        call()
    return rounds * batch / (time.perf_counter() - started)


def _parse_all(parse: Callable[[str], object], texts: tuple[str, ...]) -> Callable[[], None]:
    def call() -> None:
        for text in texts:
            parse(text)

    return call


def workloads(names: list[str]) -> dict[str, dict[str, Callable[[], object]]]:
    """Workload name -> implementation -> a zero-argument call."""
    out: dict[str, dict[str, Callable[[], object]]] = {}
    for case, texts in PARSE_CASES.items():
        out[f"parse: {case}"] = {n: _parse_all(IMPLS[n]["raw"], texts) for n in names}
        out[f"parse+adapt: {case}"] = {n: _parse_all(IMPLS[n]["dictionary"], texts) for n in names}
    # The edge's whole CMCD reading (parse and key checks), for scale: ours only.
    out["edge read_cmcd_keys: hls.js query"] = {"ours": lambda: read_cmcd_keys(HLSJS_QUERY, {})}
    out["serialize: CMSD-Dynamic entry"] = {n: IMPLS[n]["dynamic"] for n in names}
    out["serialize: CMSD-Static"] = {n: IMPLS[n]["static"] for n in names}
    return out


def measure(names: list[str], seconds: float, runs: int) -> dict[str, dict[str, list[float]]]:
    results: dict[str, dict[str, list[float]]] = {}
    for workload, calls in workloads(names).items():
        results[workload] = {name: [] for name in calls}
        for run in range(runs):
            order = list(calls) if run % 2 == 0 else list(reversed(calls))
            for name in order:
                results[workload][name].append(ops_per_second(calls[name], seconds))
    return results


def _cell(samples: list[float]) -> str:
    return f"{statistics.median(samples):,.0f} ({min(samples):,.0f}-{max(samples):,.0f})"


def report(names: list[str], results: dict[str, dict[str, list[float]]]) -> str:
    lines = [
        "| workload | "
        + " | ".join(f"{n} ops/s" for n in names)
        + " | "
        + " | ".join(f"{n} / ours" for n in names[1:])
        + " |",
        "|---" * (2 * len(names)) + "|",
    ]
    for workload, by_name in results.items():
        cells = [_cell(by_name[n]) if n in by_name else "" for n in names]
        ours = statistics.median(by_name["ours"])
        ratios = [
            f"{statistics.median(by_name[n]) / ours:.2f}" if n in by_name else "" for n in names[1:]
        ]
        lines.append(f"| {workload} | " + " | ".join(cells + ratios) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.5, help="timing per sample")
    parser.add_argument("--runs", type=int, default=5, help="samples per workload")
    args = parser.parse_args(argv)
    names = available()
    missing = {"http-sf", "http-sfv"} - set(names)
    if missing:
        print(f"not installed: {', '.join(sorted(missing))} (pip install -e '.[bench]')")
    print("implementations: " + ", ".join(f"{n} {_version(n)}" for n in names))
    print(f"python {sys.version.split()[0]}; {time.strftime('%Y-%m-%d %H:%M %Z')}")

    print(f"\n## Correctness: {len(vectors())} field values, compared with ours")
    for name, wrong in check_serialization(names).items():
        print(f"{name}: serialization {'as ours' if not wrong else 'differs: ' + '; '.join(wrong)}")
    for name, found in check_correctness(names).items():
        if name == "ours":
            continue
        print(f"{name}: {len(found)} disagreements")
        for text, ours, theirs in found[:12]:
            print(f"    {text!r}: ours {ours!r}, {name} {theirs!r}")

    print(f"\n## Speed: median (min-max) of {args.runs} runs of ~{args.seconds} s each")
    print(report(names, measure(names, args.seconds, args.runs)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
