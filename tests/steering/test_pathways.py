"""STREAMER_PATHWAYS: parsed strictly, the edge always first, errors naming the entry."""

from __future__ import annotations

import dataclasses
import json

import pytest

from cdn_edge.steering.pathways import (
    EDGE_PATHWAY_ID,
    Pathway,
    parse_pathways,
    pathways_from_settings,
)
from streamer.errors import ConfigError
from streamer.settings import load_settings

EDGE = "https://edge.example.com"


def test_no_pathways_is_the_edge_alone() -> None:
    assert parse_pathways("", EDGE) == (Pathway(EDGE_PATHWAY_ID, EDGE),)
    assert parse_pathways("  \n", EDGE + "/") == (Pathway(EDGE_PATHWAY_ID, EDGE),)
    assert parse_pathways("[]", EDGE) == (Pathway(EDGE_PATHWAY_ID, EDGE),)


def test_pathways_parse_in_order_after_the_edge() -> None:
    text = json.dumps(
        [
            {"id": "cdn-a", "base_url": "https://a.example.net/", "regions": ["se", "NO"]},
            {"id": "cdn-b", "base_url": "https://b.example.net/streamer", "weight": 3},
        ]
    )
    assert parse_pathways(text, EDGE) == (
        Pathway("edge", EDGE),
        Pathway("cdn-a", "https://a.example.net", frozenset({"SE", "NO"}), 1),
        Pathway("cdn-b", "https://b.example.net/streamer", frozenset(), 3),
    )


def test_the_edge_entry_sets_its_regions_and_weight_not_its_url() -> None:
    text = json.dumps(
        [
            {"id": "cdn-a", "base_url": "https://a.example.net"},
            {"id": "edge", "regions": ["SE"], "weight": 5},
        ]
    )
    edge, cdn = parse_pathways(text, EDGE)
    assert edge == Pathway("edge", EDGE, frozenset({"SE"}), 5)
    assert cdn.id == "cdn-a"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{", "STREAMER_PATHWAYS is not JSON"),
        ({"id": "a"}, "STREAMER_PATHWAYS must be a JSON list"),
        (["cdn-a"], r"STREAMER_PATHWAYS\[0\] must be an object, got str"),
        ([{"base_url": "https://a.example"}], r"STREAMER_PATHWAYS\[0\].id must be 1 to 64"),
        ([{"id": "cdn a", "base_url": "https://a.example"}], r"\[0\].id must be"),
        ([{"id": ".", "base_url": "https://a.example"}], "implicit default pathway"),
        ([{"id": "a"}], r"STREAMER_PATHWAYS\[0\] \(a\).base_url must be a string URL"),
        ([{"id": "a", "base_url": "a.example"}], r"\(a\).base_url must be an absolute http"),
        ([{"id": "a", "base_url": "ftp://a.example"}], "absolute http"),
        ([{"id": "a", "base_url": "https://a.example/?x=1"}], "no query or fragment"),
        ([{"id": "a", "base_url": "https://a.example/~me"}], "cannot carry"),
        ([{"id": "a", "base_url": "https://a.e", "regions": "SE"}], r"\(a\).regions must be"),
        ([{"id": "a", "base_url": "https://a.e", "regions": ["S E"]}], "regions must be"),
        ([{"id": "a", "base_url": "https://a.e", "weight": 0}], r"\(a\).weight must be"),
        ([{"id": "a", "base_url": "https://a.e", "weight": 1.5}], "weight must be an integer"),
        ([{"id": "a", "base_url": "https://a.e", "weight": True}], "weight must be an integer"),
        ([{"id": "a", "base_url": "https://a.e", "wieght": 2}], r"unknown keys \['wieght'\]"),
        ([{"id": "edge", "base_url": "https://a.e"}], "the edge's own URL is STREAMER_PUBLIC_URL"),
        (
            [{"id": "a", "base_url": "https://a.e"}, {"id": "a", "base_url": "https://b.e"}],
            r"\[1\]: pathway id 'a' is listed twice",
        ),
        (
            [{"id": "a", "base_url": "https://a.e"}, {"id": "b", "base_url": "https://a.e/"}],
            "pathways 'a' and 'b' share the base URL https://a.e",
        ),
        ([{"id": "a", "base_url": EDGE}], "pathways 'edge' and 'a' share"),
        ([{"id": f"p{i}", "base_url": f"https://{i}.e"} for i in range(17)], "at most 16"),
    ],
)
def test_bad_pathways_name_the_variable_and_entry(doc: object, message: str) -> None:
    text = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(ConfigError, match=message):
        parse_pathways(text, EDGE)


def test_from_settings_checks_the_ttl_too() -> None:
    settings = load_settings(environ={})
    assert pathways_from_settings(settings) == (Pathway("edge", settings.base_url),)
    for ttl in (0, -5, 86_401):
        with pytest.raises(ConfigError, match=f"STREAMER_STEERING_TTL_S is {ttl}"):
            pathways_from_settings(dataclasses.replace(settings, steering_ttl_s=ttl))


def test_from_the_environment() -> None:
    doc = [{"id": "cdn-a", "base_url": "https://a.example.net", "regions": ["SE"]}]
    settings = load_settings(
        environ={
            "STREAMER_PATHWAYS": json.dumps(doc),
            "STREAMER_PUBLIC_URL": EDGE,
            "STREAMER_STEERING_TTL_S": "60",
        }
    )
    assert [p.id for p in pathways_from_settings(settings)] == ["edge", "cdn-a"]
    assert settings.steering_ttl_s == 60


def test_pathway_model_refuses_what_the_parser_refuses() -> None:
    with pytest.raises(ValueError, match="pathway id"):
        Pathway("a b", EDGE)
    with pytest.raises(ValueError, match="weight"):
        Pathway("a", EDGE, weight=0)
    with pytest.raises(ValueError, match="ends with '/'"):
        Pathway("a", EDGE + "/")
