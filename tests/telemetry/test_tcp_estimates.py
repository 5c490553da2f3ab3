"""CMSD's throughput and RTT from TCP_INFO, read at most once a second per connection."""

from __future__ import annotations

import socket
import struct
from typing import Any

from cdn_edge.telemetry.capture import TcpEstimates, tcp_estimate
from tests.edge.conftest import ManualClock


class FakeSocket:
    def __init__(self, mss: int, rtt_us: int, cwnd: int) -> None:
        self.info = bytearray(104)
        struct.pack_into("=I", self.info, 16, mss)
        struct.pack_into("=I", self.info, 68, rtt_us)
        struct.pack_into("=I", self.info, 80, cwnd)
        self.reads = 0

    def getsockopt(self, level: int, option: int, size: int) -> bytes:
        assert (level, option, size) == (socket.IPPROTO_TCP, socket.TCP_INFO, 104)
        self.reads += 1
        return bytes(self.info)


class FakeTransport:
    def __init__(self, sock: FakeSocket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


class SlottedTransport:
    __slots__ = ("sock",)  # no __weakref__: cannot be remembered

    def __init__(self, sock: FakeSocket) -> None:
        self.sock = sock

    def get_extra_info(self, name: str) -> Any:
        return self.sock if name == "socket" else None


def test_estimate_from_tcp_info() -> None:
    # 8 * cwnd * mss / rtt: 8 * 10 * 1448 B / 20 ms = 5,792 kbit/s
    assert tcp_estimate(FakeTransport(FakeSocket(1448, 20_000, 10))) == (5792, 20)
    assert tcp_estimate(FakeTransport(FakeSocket(1448, 0, 10))) == (None, None)
    assert tcp_estimate(None) == (None, None)


def test_estimates_are_remembered_per_connection_for_a_second() -> None:
    clock = ManualClock(0.0)
    estimates = TcpEstimates(clock, max_age_s=1.0)
    sock = FakeSocket(1448, 20_000, 10)
    transport = FakeTransport(sock)
    assert estimates.of(transport) == (5792, 20)
    struct.pack_into("=I", sock.info, 80, 20)  # the window doubles
    assert estimates.of(transport) == (5792, 20) and sock.reads == 1
    other = FakeTransport(FakeSocket(1448, 10_000, 10))
    assert estimates.of(other) == (11584, 10)  # per connection
    clock.advance(1.0)
    assert estimates.of(transport) == (11584, 20) and sock.reads == 2
    slotted_sock = FakeSocket(1448, 20_000, 10)
    slotted = SlottedTransport(slotted_sock)
    estimates.of(slotted)
    estimates.of(slotted)
    assert slotted_sock.reads == 2  # asked every time
