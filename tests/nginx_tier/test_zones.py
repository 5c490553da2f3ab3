"""The gate's shared zones are resident in every worker from its start, so a worker's RSS does
not creep up as nginx's slab allocator first touches zone pages under churn (docs/reliability.md,
"Soak", run G); and the status listener reports each worker's Lua heap and each zone's free
space. Real nginx, never skipped."""

from __future__ import annotations

import dataclasses
import http.client
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak_sampler import gate_status
from cdn_edge.nginx_tier import NginxTier, NginxTierConfig, TierConfigInvalid, start_nginx_tier
from cdn_edge.nginx_tier.config import (
    GATE_ZONES,
    STATUS_LOCATION,
    render_config,
    render_gate_settings,
    zone_bytes,
)
from tests.nginx_tier.conftest import free_port, request
from tests.nginx_tier.vectors import vector_secrets, vectors

FREE = vectors()["tokens"]["free"]
SHARED_ZERO = "/dev/zero (deleted)"  # how smaps names a MAP_SHARED|MAP_ANONYMOUS mapping


def _workers(tier: NginxTier, count: int) -> list[int]:
    """The pids of the master's `count` workers, once they are all up."""
    master = tier.process.pid
    found: list[int] = []
    for _ in range(250):
        found = []
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
                cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master and b"worker" in cmdline:
                found.append(int(name))
        if len(found) == count:
            return sorted(found)
        time.sleep(0.02)
    raise AssertionError(f"nginx master {master} has workers {found}, expected {count}")


def _shared_mappings(pid: int) -> list[tuple[int, int]]:
    """(size, resident) in bytes of each shared anonymous mapping of `pid`: nginx's zones."""
    mappings: list[tuple[int, int]] = []
    size = 0
    shared = False
    for line in Path(f"/proc/{pid}/smaps").read_text().splitlines():
        head = line.split(maxsplit=5)
        if "-" in head[0] and not head[0].endswith(":"):
            start, end = (int(x, 16) for x in head[0].split("-"))
            size = end - start
            shared = len(head) == 6 and head[5] == SHARED_ZERO and head[1][3] == "s"
        elif head[0] == "Rss:" and shared:
            mappings.append((size, int(head[1]) * 1024))
    return mappings


def _resident_gate_zones(pid: int) -> list[int]:
    """The sizes of the shared mappings of `pid` that are wholly resident."""
    return sorted(size for size, rss in _shared_mappings(pid) if rss == size)


@pytest.fixture
def started(tier_config: NginxTierConfig) -> Iterator[NginxTier]:
    with start_nginx_tier(tier_config, vector_secrets()) as tier:
        yield tier


def _holds_gate_zones(pid: int) -> bool:
    resident = _resident_gate_zones(pid)
    for _, size in GATE_ZONES:
        if zone_bytes(size) not in resident:
            return False
        resident.remove(zone_bytes(size))
    return True


def test_every_worker_holds_the_gate_zones_before_it_serves(started: NginxTier) -> None:
    # A worker's pid shows before its init_worker has run: wait for that, not for traffic.
    for pid in _workers(started, 2):
        for _ in range(250):
            if _holds_gate_zones(pid):
                break
            time.sleep(0.02)
        assert _holds_gate_zones(pid), f"worker {pid}: mappings {_shared_mappings(pid)}"


def test_without_pretouch_the_zones_are_touched_only_as_used(
    tier_config: NginxTierConfig,
) -> None:
    # The contrast that makes the test above mean something: nginx alone maps the zones lazily.
    config = dataclasses.replace(tier_config, pretouch_zones=False)
    with start_nginx_tier(config, vector_secrets()) as tier:
        assert request(tier, f"/v1/s/{FREE}/aac_160/seg_00001.m4s").status == 200
        for pid in _workers(tier, 2):
            big = [rss for size, rss in _shared_mappings(pid) if size >= zone_bytes("8m")]
            assert big and all(rss < zone_bytes("1m") for rss in big), (pid, big)


def _status(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", STATUS_LOCATION)
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Content-Type") == "application/json"
        doc: dict[str, Any] = json.loads(response.read())
        return doc
    finally:
        conn.close()


def test_the_status_listener_reports_each_worker_and_zone(tier_config: NginxTierConfig) -> None:
    config = dataclasses.replace(tier_config, status_port=free_port())
    assert config.status_port is not None
    with start_nginx_tier(config, vector_secrets()) as tier:
        pids = _workers(tier, 2)
        assert request(tier, f"/v1/s/{FREE}/aac_160/seg_00001.m4s").status == 200
        doc: dict[str, Any] = {}
        for _ in range(250):  # each worker publishes from a timer started with it
            doc = _status(config.status_port)
            if len(doc["workers"]) == 2:
                break
            time.sleep(0.02)
        assert sorted(int(pid) for pid in doc["workers"]) == pids
        for pid, worker in doc["workers"].items():
            assert worker["pid"] == int(pid)
            assert 100 < worker["lua_kib"] < 100_000
            assert worker["worker_tokens"] in (0, 1)  # the one token, in whichever worker
        assert set(doc["zones"]) == {name for name, _ in GATE_ZONES}
        for name, size in GATE_ZONES:
            zone = doc["zones"][name]
            assert zone["capacity"] == zone_bytes(size)
            assert 0 < zone["free_space"] <= zone["capacity"]
        # What the soak samples (benchmarks.soak_sampler): the same document.
        sampled = gate_status(config.status_port)
        assert sampled is not None and set(sampled["workers"]) == set(doc["workers"])
        conn = http.client.HTTPConnection("127.0.0.1", config.status_port, timeout=5)
        conn.request("GET", "/v1/anything")
        assert conn.getresponse().status == 404
        conn.close()


def test_the_status_listener_is_off_unless_configured(tier_config: NginxTierConfig) -> None:
    rendered = render_config(tier_config)
    assert STATUS_LOCATION not in rendered
    assert "streamer_status" not in rendered
    assert json.loads(render_gate_settings(tier_config, vector_secrets()))["status_every_s"] is None
    on = dataclasses.replace(tier_config, status_port=tier_config.listen_port + 1)
    assert f"listen 127.0.0.1:{on.status_port};" in render_config(on)


def test_the_gate_settings_carry_each_zone_in_bytes(tier_config: NginxTierConfig) -> None:
    doc = json.loads(render_gate_settings(tier_config, vector_secrets()))
    assert doc["zones"] == {
        "streamer_tokens": 32 * 2**20,
        "streamer_keys": 8 * 2**20,
        "streamer_budgets": 32 * 2**20,
    }
    assert doc["pretouch"] is True
    rendered = render_config(tier_config)
    for name, size in GATE_ZONES:
        assert f"lua_shared_dict {name} {size};" in rendered


@pytest.mark.parametrize(("size", "expected"), [("32m", 32 * 2**20), ("256k", 2**18), ("64", 64)])
def test_zone_bytes(size: str, expected: int) -> None:
    assert zone_bytes(size) == expected


@pytest.mark.parametrize("size", ["", "1g", "m", "1.5m", "-1m"])
def test_zone_bytes_refuses_what_nginx_would_not_read_here(size: str) -> None:
    with pytest.raises(TierConfigInvalid, match="zone size"):
        zone_bytes(size)


@pytest.mark.parametrize("port", [0, 65536])
def test_a_status_port_out_of_range_is_refused(tier_config: NginxTierConfig, port: int) -> None:
    with pytest.raises(TierConfigInvalid, match="status_port"):
        dataclasses.replace(tier_config, status_port=port)


def test_the_status_port_must_differ_from_the_listener(tier_config: NginxTierConfig) -> None:
    with pytest.raises(TierConfigInvalid, match="status_port"):
        dataclasses.replace(tier_config, status_port=tier_config.listen_port)
