"""The steering policy: health, then region, then weighted rendezvous; and the manifest."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdn_edge.steering.pathways import Pathway
from cdn_edge.steering.policy import (
    HLS_JS_DEFAULT_ESTIMATE_BPS,
    SteeringManifest,
    SteeringReport,
    parse_report,
    pathway_priority,
    steering_document,
)

EDGE = Pathway("edge", "https://edge.example.com")
NORDIC = Pathway("cdn-nordic", "https://n.example.net", frozenset({"SE", "NO"}), 1)
GLOBAL = Pathway("cdn-global", "https://g.example.net", frozenset(), 1)
US = Pathway("cdn-us", "https://us.example.net", frozenset({"US"}), 1)
ALL = (EDGE, NORDIC, GLOBAL, US)
NONE: frozenset[str] = frozenset()


def best_first(
    region: str, unhealthy: frozenset[str] = NONE, pathways: tuple[Pathway, ...] = ALL
) -> tuple[str, ...]:
    return pathway_priority(pathways, region, unhealthy, "session-1")


@pytest.mark.parametrize(
    ("region", "unhealthy", "first", "last"),
    [
        # Region: the pathway naming the listener's region first, those naming others last.
        ("SE", NONE, "cdn-nordic", "cdn-us"),
        ("se", NONE, "cdn-nordic", "cdn-us"),  # region codes compare case-blind
        ("NO", NONE, "cdn-nordic", "cdn-us"),
        ("US", NONE, "cdn-us", "cdn-nordic"),
        # Health beats region: an unhealthy regional CDN drops behind everything healthy.
        ("SE", frozenset({"cdn-nordic"}), None, "cdn-nordic"),
        ("US", frozenset({"cdn-us"}), None, "cdn-us"),
        ("SE", frozenset({"cdn-nordic", "cdn-global"}), None, None),
    ],
)
def test_region_and_health_order(
    region: str, unhealthy: frozenset[str], first: str | None, last: str | None
) -> None:
    order = best_first(region, unhealthy)
    assert sorted(order) == sorted(p.id for p in ALL)  # every pathway, always
    if first is not None:
        assert order[0] == first
    if last is not None:
        assert order[-1] == last
    healthy = [p for p in order if p not in unhealthy]
    assert list(order[: len(healthy)]) == healthy  # unhealthy ones are all at the end


def test_a_listener_elsewhere_gets_the_global_pathways_first() -> None:
    order = best_first("DE")
    assert set(order[:2]) == {"edge", "cdn-global"}  # both serve every region
    assert set(order[2:]) == {"cdn-nordic", "cdn-us"}


def test_every_pathway_unhealthy_still_orders_by_region() -> None:
    order = best_first("US", frozenset(p.id for p in ALL))
    assert order[0] == "cdn-us"


def test_weights_spread_sessions_in_proportion() -> None:
    pathways = (
        Pathway("edge", "https://e.example", weight=1),
        Pathway("a", "https://a.example", weight=2),
        Pathway("b", "https://b.example", weight=5),
    )
    sessions = 16_000
    firsts = Counter(pathway_priority(pathways, "SE", NONE, f"s{i}")[0] for i in range(sessions))
    for pathway in pathways:
        share = firsts[pathway.id] / sessions
        assert share == pytest.approx(pathway.weight / 8, abs=0.02), firsts


def test_a_session_keeps_its_order_and_only_a_removed_pathways_sessions_move() -> None:
    pathways = (EDGE, GLOBAL, Pathway("cdn-x", "https://x.example.net"))
    before = {f"s{i}": pathway_priority(pathways, "DE", NONE, f"s{i}") for i in range(2000)}
    again = {s: pathway_priority(pathways, "DE", NONE, s) for s in before}
    assert again == before  # deterministic per session: no hopping between reloads
    after = {s: pathway_priority(pathways, "DE", frozenset({"cdn-x"}), s) for s in before}
    moved = [s for s in before if after[s][0] != before[s][0]]
    assert moved and all(before[s][0] == "cdn-x" for s in moved)
    for s in before:  # the others keep their relative order
        kept = [p for p in before[s] if p != "cdn-x"]
        assert list(after[s][:2]) == kept


ids = st.sampled_from(["edge", "a", "b", "c", "d"])
pathway_sets = st.lists(
    st.builds(
        lambda i, regions, weight: Pathway(i, f"https://{i}.example", regions, weight),
        ids,
        st.frozensets(st.sampled_from(["SE", "NO", "US"]), max_size=2),
        st.integers(1, 10),
    ),
    min_size=1,
    max_size=5,
    unique_by=lambda p: p.id,
)


@given(pathway_sets, st.sampled_from(["SE", "US", "DE"]), st.frozensets(ids), st.text(max_size=8))
def test_priority_properties(
    pathways: list[Pathway], region: str, unhealthy: frozenset[str], session_id: str
) -> None:
    order = pathway_priority(pathways, region, unhealthy, session_id)
    assert sorted(order) == sorted(p.id for p in pathways)
    by_id = {p.id: p for p in pathways}
    keys = [
        (
            pid in unhealthy,
            0 if region in by_id[pid].regions else 1 if not by_id[pid].regions else 2,
        )
        for pid in order
    ]
    assert keys == sorted(keys)  # health, then region class, never out of order


# The manifest


def test_steering_document_is_what_the_spec_defines() -> None:
    manifest = SteeringManifest(300, "https://edge.example.com/v1/steer/tok", ("cdn-a", "edge"))
    doc = json.loads(json.dumps(steering_document(manifest)))
    assert doc == {
        "VERSION": 1,
        "TTL": 300,
        "RELOAD-URI": "https://edge.example.com/v1/steer/tok",
        "PATHWAY-PRIORITY": ["cdn-a", "edge"],
    }
    assert type(doc["VERSION"]) is int and type(doc["TTL"]) is int


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, "https://e/s", ("edge",)), "TTL"),
        ((1.5, "https://e/s", ("edge",)), "TTL"),
        ((True, "https://e/s", ("edge",)), "TTL"),
        ((300, "/v1/steer/tok", ("edge",)), "absolute"),
        ((300, "https://e/s", ()), "at least one"),
        ((300, "https://e/s", ("edge", "edge")), "repeats"),
        ((300, "https://e/s", ("cdn a",)), "not a Pathway ID"),
    ],
)
def test_manifest_refuses_what_the_spec_forbids(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SteeringManifest(*args)  # type: ignore[arg-type]


KNOWN = frozenset({"edge", "cdn-a"})


@pytest.mark.parametrize(
    ("query", "report"),
    [
        ({}, SteeringReport(None, None)),
        ({"_HLS_pathway": "cdn-a", "_HLS_throughput": "2500000"}, SteeringReport("cdn-a", 2500000)),
        ({"_HLS_pathway": ".", "_HLS_throughput": "812345.6"}, SteeringReport(None, 812345)),
        ({"_HLS_pathway": "elsewhere"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "fast"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "-5"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "0"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "nan"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "inf"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "1e12"}, SteeringReport(None, None)),
        ({"_HLS_throughput": "9" * 40}, SteeringReport(None, None)),
        # hls.js's default estimate, sent before it has measured anything: not a report.
        ({"_HLS_throughput": str(HLS_JS_DEFAULT_ESTIMATE_BPS)}, SteeringReport(None, None)),
    ],
)
def test_parse_report(query: dict[str, str], report: SteeringReport) -> None:
    assert parse_report(query, KNOWN) == report
