"""The access log written as shards: every request in exactly one file, spread over all."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import pytest

from cdn_edge.nginx_tier import NginxTierConfig, start_nginx_tier
from cdn_edge.nginx_tier.config import render_config
from cdn_edge.nginx_tier.errors import TierConfigInvalid
from tests.nginx_tier.conftest import request
from tests.nginx_tier.vectors import vector_secrets, vectors

SEG = f"/v1/s/{vectors()['tokens']['free']}/aac_160/seg_00001.m4s"
REQUESTS = 60


def test_one_shard_is_the_plain_access_log(tier_config: NginxTierConfig) -> None:
    assert tier_config.access_logs == (tier_config.access_log,)
    conf = render_config(tier_config)
    assert f"access_log {tier_config.access_log} streamer_json" in conf
    assert "split_clients" not in conf


def test_shards_are_named_after_the_log_and_bounded(tier_config: NginxTierConfig) -> None:
    logs = replace(tier_config, log_shards=3).access_logs
    assert [p.name for p in logs] == ["access.0.log", "access.1.log", "access.2.log"]
    conf = render_config(replace(tier_config, log_shards=3))
    assert "33.33% 0;" in conf and "33.33% 1;" in conf and "* 2;" in conf
    for shards in (0, 65):
        with pytest.raises(TierConfigInvalid):
            replace(tier_config, log_shards=shards)


def read_lines(paths: tuple[Path, ...], expect: int) -> list[list[dict[str, object]]]:
    for _ in range(250):
        shards = [
            [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else [] for p in paths
        ]
        if sum(map(len, shards)) >= expect:
            return shards
        time.sleep(0.02)
    return shards


def test_nginx_writes_each_request_to_exactly_one_shard(tier_config: NginxTierConfig) -> None:
    config = replace(tier_config, log_shards=2)
    with start_nginx_tier(config, vector_secrets()) as tier:
        statuses = {request(tier, SEG).status for _ in range(REQUESTS)}
        assert statuses == {200}
        tier.reopen_logs()  # workers flush their buffers
        shards = read_lines(config.access_logs, REQUESTS)
    ids = [line["request_id"] for shard in shards for line in shard]
    assert len(ids) == len(set(ids)) == REQUESTS
    assert all(len(shard) >= REQUESTS // 5 for shard in shards), [len(s) for s in shards]
    assert not config.access_log.exists()
