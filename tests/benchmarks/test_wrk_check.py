"""The wrk cross-check's pure parts: reading wrk's report and the URL rotation script."""

from __future__ import annotations

import pytest

from benchmarks.edge_setup import telemetry_totals
from benchmarks.wrk_check import parse_wrk, rotation_script, without_cmcd

WRK_OUTPUT = """Running 8s test @ http://127.0.0.1:40321
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.08ms  265.47us   6.05ms   87.29%
    Req/Sec    14.82k     1.01k   15.99k    80.00%
  Latency Distribution
     50%  812.00us
     75%    1.15ms
     90%    1.33ms
     99%    2.08s
  118056 requests in 8.00s, 128.32MB read
  Socket errors: connect 0, read 2, write 1, timeout 4
  Non-2xx or 3xx responses: 12
Requests/sec:  14742.30
Transfer/sec:     16.02MB
"""


def test_parse_wrk_reads_rate_percentiles_and_errors() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result.requests == 118_056 and result.seconds == 8.0
    assert result.rps == pytest.approx(14_742.30)
    assert result.p50_ms == pytest.approx(0.812) and result.p99_ms == pytest.approx(2080.0)
    assert result.non_2xx == 12 and result.socket_errors == 7


def test_parse_wrk_without_errors_and_a_sub_second_run() -> None:
    text = WRK_OUTPUT.replace("  Socket errors: connect 0, read 2, write 1, timeout 4\n", "")
    text = text.replace("  Non-2xx or 3xx responses: 12\n", "").replace("in 8.00s", "in 500.00ms")
    result = parse_wrk(text)
    assert result.non_2xx == 0 and result.socket_errors == 0 and result.seconds == 0.5


def test_parse_wrk_refuses_output_without_a_summary() -> None:
    with pytest.raises(ValueError, match="summary"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_rotation_script_lists_every_path_quoted() -> None:
    script = rotation_script(["/a?x=1", "/b?CMCD=sid%3D%22s%22"])
    assert '"/a?x=1"' in script and '"/b?CMCD=sid%3D%22s%22"' in script
    assert "i % #paths + 1" in script and "wrk.format('GET', paths[i]" in script
    assert 'local headers = {["Accept-Encoding"] = "gzip"}' in script


def test_rotation_script_sends_the_phase_headers() -> None:
    assert "local headers = {}" in rotation_script(["/a"], {})


def test_without_cmcd_keeps_the_rest_of_the_query() -> None:
    assert without_cmcd("/v1/seg/t/v/a.m4s?s=tok&CMCD=br%3D160") == "/v1/seg/t/v/a.m4s?s=tok"
    assert without_cmcd("/v1/p/x/aac_160.m3u8?CMCD=br%3D160") == "/v1/p/x/aac_160.m3u8"
    assert without_cmcd("/a?s=1") == "/a?s=1"


def test_telemetry_totals_sum_every_kind_and_reason() -> None:
    metrics = (
        "# HELP edge_telemetry_dropped_total Telemetry items given up\n"
        'edge_telemetry_dropped_total{kind="cmcd",reason="queue_full"} 12.0\n'
        'edge_telemetry_dropped_total{kind="delivery",reason="queue_full"} 3.0\n'
        'edge_telemetry_dropped_created{kind="cmcd",reason="queue_full"} 1.7e+09\n'
        'edge_telemetry_written_total{kind="cmcd"} 100.0\n'
    )
    assert telemetry_totals(metrics) == {"written": 100.0, "dropped": 15.0}
    assert telemetry_totals("") == {"written": 0.0, "dropped": 0.0}
