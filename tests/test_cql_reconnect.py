"""The CQL driver's reconnect backoff is capped, by a setting, so an edge writes again soon
after a node comes back (the chaos suite measures it against a killed Cassandra)."""

from __future__ import annotations

import pytest

from streamer.cql.connection import RECONNECT_BASE_DELAY_S, RECONNECT_MAX_DELAY_S, reconnect_delays
from streamer.errors import ConfigError
from streamer.settings import load_settings


def test_the_default_backoff_is_capped_at_ten_seconds() -> None:
    delays = reconnect_delays(load_settings(environ={}), 40)

    assert RECONNECT_MAX_DELAY_S == 10.0
    # The driver adds up to 15 % of jitter either way, never below the base or above the cap.
    assert RECONNECT_BASE_DELAY_S <= delays[0] <= RECONNECT_BASE_DELAY_S * 1.15
    assert max(delays) <= RECONNECT_MAX_DELAY_S
    assert sum(delays[:6]) < 30  # the first six tries within half a minute
    assert min(delays[10:]) >= RECONNECT_MAX_DELAY_S * 0.85  # backed off to the cap


def test_the_cap_is_a_setting() -> None:
    settings = load_settings(environ={"STREAMER_CQL_RECONNECT_MAX_S": "3"})
    assert settings.cql_reconnect_max_s == 3.0
    assert max(reconnect_delays(settings, 40)) <= 3.0


@pytest.mark.parametrize("value", ["0.2", "601", "-1"])
def test_a_cap_out_of_range_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="STREAMER_CQL_RECONNECT_MAX_S"):
        load_settings(environ={"STREAMER_CQL_RECONNECT_MAX_S": value})
