"""The issue's targets for the edge (2 cores shared by server and load generator), judged.

    playlist issuance      >= 60 % of the aiohttp HMAC baseline, p99 < 20 ms at 64 connections
    key issuance           >= 60 % of the same baseline
    cached segments        >= 50 % of nginx's requests/s, both with 2 workers
    real-time listeners    >= 10,000 held with p99 segment latency < 100 ms and zero errors

A target is "n/a" when the run was not set up to judge it (another concurrency, another worker
count); a sped-up paced run is judged on its equivalent listeners and says so.
"""

from __future__ import annotations

import argparse
from typing import Any

from benchmarks.paced_mode import PACED_P99_MS_TARGET
from benchmarks.rate_mode import find_row
from benchmarks.report import FAIL, PASS, UNKNOWN

PLAYLIST_RATIO_TARGET = 0.60
PLAYLIST_P99_MS_TARGET = 20.0
PLAYLIST_TARGET_CONNECTIONS = 64
KEY_RATIO_TARGET = 0.60
SEGMENT_RATIO_TARGET = 0.50
SEGMENT_TARGET_WORKERS = 2
PACED_LISTENERS_TARGET = 10_000


def _ratio_target(
    ratio: dict[str, Any] | None, name: str, threshold: float, judged: bool = True
) -> list[dict[str, Any]]:
    if ratio is None:
        return []
    passed = ratio["ratio"] >= threshold
    return [
        {
            "name": name,
            "measured": f"{ratio['ratio']:.2f} ({ratio['ours']:.0f} / "
            f"{ratio['baseline']:.0f} req/s)",
            "threshold": f">= {threshold:.2f}",
            "result": (PASS if passed else FAIL) if judged else UNKNOWN,
        }
    ]


def rate_targets(rate: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    by_key = {r["key"]: r for r in rate["ratios"]}
    targets = _ratio_target(
        by_key.get("playlist issuance vs aiohttp HMAC"),
        "playlist issuance >= 60 % of the aiohttp HMAC baseline",
        PLAYLIST_RATIO_TARGET,
    )
    playlist = find_row(rate["summary"], "edge", "playlist")
    if playlist is not None:
        p99 = playlist["p99_ms"]["median"]
        at64 = args.connections == PLAYLIST_TARGET_CONNECTIONS and args.rate is None
        targets.append(
            {
                "name": f"playlist p99 < {PLAYLIST_P99_MS_TARGET:.0f} ms at "
                f"{PLAYLIST_TARGET_CONNECTIONS} connections",
                "measured": f"{p99:.2f} ms at {args.connections} connections"
                + (f", errors {playlist['errors']}" if playlist["errors"] else ""),
                "threshold": f"< {PLAYLIST_P99_MS_TARGET:.0f} ms",
                "result": (
                    PASS if p99 < PLAYLIST_P99_MS_TARGET and not playlist["errors"] else FAIL
                )
                if at64
                else UNKNOWN,
            }
        )
    targets += _ratio_target(
        by_key.get("key issuance vs aiohttp HMAC"),
        "key issuance >= 60 % of the aiohttp HMAC baseline",
        KEY_RATIO_TARGET,
    )
    targets += _ratio_target(
        by_key.get("cached segment delivery vs nginx"),
        f"cached segment delivery >= 50 % of nginx, both with {SEGMENT_TARGET_WORKERS} workers",
        SEGMENT_RATIO_TARGET,
        judged=args.workers == SEGMENT_TARGET_WORKERS
        and args.nginx_workers == SEGMENT_TARGET_WORKERS,
    )
    return targets


def paced_target(paced: dict[str, Any]) -> dict[str, Any]:
    errors = sum(e["errors"] for e in paced["endpoints"].values())
    seg = paced["endpoints"].get("segment")
    equivalent = paced["equivalent_listeners"]
    real_time = paced["speed"] == 1
    passed = equivalent >= PACED_LISTENERS_TARGET
    p99 = seg["latency_ms"]["p99"] if seg else float("nan")
    return {
        "name": f"real-time paced >= {PACED_LISTENERS_TARGET} listeners, p99 segment "
        f"< {PACED_P99_MS_TARGET:.0f} ms, zero errors",
        "measured": f"{'>= ' if paced['held_all'] else ''}{paced['held_listeners']} held"
        + ("" if real_time else f" x{paced['speed']:g} = {equivalent} equivalent")
        + f"; whole run: p99 {p99:.1f} ms, errors {errors}",
        "threshold": f">= {PACED_LISTENERS_TARGET}",
        "result": (PASS if passed else FAIL)
        if real_time
        else f"{PASS if passed else FAIL} (sped up)",
    }


def evaluate_targets(doc: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    if doc.get("rate"):
        targets += rate_targets(doc["rate"], args)
    if doc.get("paced"):
        targets.append(paced_target(doc["paced"]))
    return targets
