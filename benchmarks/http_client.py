"""A lean HTTP/1.1 client for the load generator: keep-alive connections to loopback servers.

aiohttp's client costs 100-250 us of CPU per request (benchmarks/README.md), more than the
baselines it measures, and the load generator shares the machine's two cores with the server
under test: every microsecond it spends is one the server does not get. This client does only
what the benchmarks need, on asyncio protocols (uvloop in the client processes):

- plain `http://host:port` URLs, one pool of at most `limit` keep-alive connections per
  origin, requests waiting in turn for a free connection;
- GET and POST with a bytes body, one request in flight per connection (no pipelining);
- responses framed by Content-Length or chunked transfer coding; gzip bodies decoded;
- every failure an `HttpFailure` whose `kind` is what the report counts.
"""

from __future__ import annotations

import asyncio
import collections
import time
import zlib
from dataclasses import dataclass
from typing import cast

MAX_HEADER_BYTES = 64 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class HttpFailure(Exception):
    """A request that got no whole response; `kind` names why, for the report."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind  # connect, disconnected, payload or timeout


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes  # decoded (gzip undone)
    wire_bytes: int  # body bytes as sent: a gzipped body counts compressed


def split_url(url: str) -> tuple[str, int, str]:
    """(host, port, path with query) of an `http://` URL."""
    if not url.startswith("http://"):
        raise ValueError(f"only http:// URLs are supported, got {url[:60]!r}")
    authority, slash, path = url[7:].partition("/")
    host, _, port = authority.rpartition(":")
    if not host:
        host, port = authority, "80"
    return host, int(port), slash + path if slash else "/"


class _Connection(asyncio.Protocol):
    """One keep-alive connection; parses the response to the request in flight."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self._buffer = bytearray()  # the head, and chunked bodies, while they arrive
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._head: tuple[int, int, bool, bool, bool] | None = None  # see _parse_head
        self._chunks: list[bytes] = []
        # A Content-Length body is kept as the pieces the socket gave, joined once at its end:
        # a 120 KB segment is copied once rather than grown and sliced out of a buffer.
        self._parts: list[bytes] = []
        self._received = 0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # create_connection hands the protocol a stream transport; typeshed types the
        # argument as the base class every protocol shares.
        self.transport = cast(asyncio.Transport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(HttpFailure("disconnected", f"the server closed the connection ({exc})"))

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:
            return  # bytes nobody asked for: the connection is dropped at the next send
        head = self._head
        if head is not None and not head[2]:  # a Content-Length body
            self._parts.append(data)
            self._received += len(data)
        else:
            self._buffer += data
        try:
            response = self._parse()
        except HttpFailure as failure:
            self._fail(failure)
            self.close()
            return
        if response is not None:
            self._settle()
            waiter, self._waiter = self._waiter, None
            if waiter is not None and not waiter.done():
                waiter.set_result(response)

    # Requests

    def send(self, request: bytes, timeout_s: float) -> asyncio.Future[HttpResponse]:
        """The response to `request`; it fails with HttpFailure("timeout") after `timeout_s`
        (and the connection is closed: a late response must not answer the next request)."""
        assert self.transport is not None and self._waiter is None
        self._buffer.clear()
        self._head, self._chunks, self._parts, self._received = None, [], [], 0
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._timer = loop.call_later(timeout_s, self._time_out, timeout_s)
        self.transport.write(request)
        return self._waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _time_out(self, timeout_s: float) -> None:
        self._timer = None
        self._fail(HttpFailure("timeout", f"no response within {timeout_s:g} s"))
        self.close()

    def _settle(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _fail(self, failure: HttpFailure) -> None:
        self._settle()
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(failure)

    # Parsing

    def _parse(self) -> HttpResponse | None:
        if self._head is None:
            end = self._buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buffer) > MAX_HEADER_BYTES:
                    raise HttpFailure("payload", "response headers too long")
                return None
            self._head = _parse_head(bytes(self._buffer[:end]))
            if not self._head[2]:  # what came with the head starts the body
                rest = bytes(self._buffer[end + 4 :])
                self._parts, self._received = [rest], len(rest)
                self._buffer.clear()
            else:
                del self._buffer[: end + 4]
        status, length, chunked, gzipped, keep_alive = self._head
        if chunked:
            body = self._read_chunks()
            if body is None:
                return None
        elif self._received < length:
            return None
        else:
            parts = self._parts
            body = parts[0] if len(parts) == 1 else b"".join(parts)
            if self._received > length:
                raise HttpFailure("payload", f"{self._received - length} bytes past the body")
        if not keep_alive:
            self.close()
        wire = len(body)
        if gzipped:
            try:
                body = zlib.decompress(body, _GZIP_WBITS)
            except zlib.error as exc:
                raise HttpFailure("payload", f"bad gzip body: {exc}") from exc
        return HttpResponse(status, body, wire)

    def _read_chunks(self) -> bytes | None:
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return None
            try:
                size = int(bytes(self._buffer[:line_end]).split(b";")[0], 16)
            except ValueError as exc:
                raise HttpFailure("payload", "bad chunk size") from exc
            if size == 0:  # the last chunk, then (trailer fields and) an empty line
                end = self._buffer.find(b"\r\n\r\n", line_end)
                if end < 0:
                    return None
                del self._buffer[: end + 4]
                return b"".join(self._chunks)
            start = line_end + 2
            if len(self._buffer) < start + size + 2:
                return None
            self._chunks.append(bytes(self._buffer[start : start + size]))
            del self._buffer[: start + size + 2]


def _parse_head(head: bytes) -> tuple[int, int, bool, bool, bool]:
    """(status, content length, chunked, gzipped, keep-alive) of a response head."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise HttpFailure("payload", f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    try:
        status = int(parts[1])
    except ValueError as exc:
        raise HttpFailure("payload", f"bad status {parts[1][:20]!r}") from exc
    length, chunked, gzipped = 0, False, False
    keep_alive = parts[0] == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"content-encoding":
            gzipped = value.strip().lower() == b"gzip"
        elif name == b"connection":
            keep_alive = value.strip().lower() != b"close"
    return status, length, chunked, gzipped, keep_alive


class _Pool:
    """At most `limit` connections to one origin; requests wait their turn for one."""

    def __init__(self, host: str, port: int, limit: int) -> None:
        self.host, self.port, self.limit = host, port, limit
        self.idle: collections.deque[_Connection] = collections.deque()
        self.open = 0
        self.waiting: collections.deque[asyncio.Future[_Connection | None]] = collections.deque()

    def take_idle(self) -> _Connection | None:
        """An idle open connection, the most recently used (warm, least likely closed)."""
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection
            self.open -= 1
        return None

    async def acquire(self) -> _Connection:
        idle = self.take_idle()
        if idle is not None:
            return idle
        if self.open >= self.limit:
            waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
            self.waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                # Timed out just as a connection (or a slot) was handed over: pass it on.
                if waiter.done() and not waiter.cancelled():
                    if (handed := waiter.result()) is not None:
                        self.release(handed)
                    else:
                        self._wake_one()
                raise
            if handed is not None:
                return handed
        self.open += 1
        try:
            _, protocol = await asyncio.get_running_loop().create_connection(
                _Connection, self.host, self.port
            )
        except BaseException as exc:
            self.open -= 1
            self._wake_one()
            if isinstance(exc, OSError):
                where = f"{self.host}:{self.port}"
                raise HttpFailure("connect", f"cannot connect to {where}: {exc}") from exc
            raise
        return protocol

    def release(self, connection: _Connection) -> None:
        if connection.closed:
            self.open -= 1
            self._wake_one()
            return
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(connection)
                return
        self.idle.append(connection)

    def _wake_one(self) -> None:
        """A connection slot came free: let the next waiter open a new connection."""
        while self.waiting:
            waiter = self.waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def close(self) -> None:
        while self.idle:
            self.idle.pop().close()


class HttpClient:
    """Keep-alive HTTP/1.1 requests to any number of origins, `limit` connections each."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._pools: dict[tuple[str, int], _Pool] = {}

    async def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout_s: float,
    ) -> HttpResponse:
        """The response, whatever its status. Raises HttpFailure."""
        host, port, target = split_url(url)
        pool = self._pools.get((host, port))
        if pool is None:
            pool = self._pools[(host, port)] = _Pool(host, port, self._limit)
        head = f"{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept-Encoding: gzip\r\n"
        if headers:
            head += "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        if body is not None or method == "POST":
            head += f"Content-Length: {len(body or b'')}\r\n"
        request = (head + "\r\n").encode("latin-1") + (body or b"")
        started = time.monotonic()
        connection = pool.take_idle()
        if connection is None:  # wait for a free or new connection, within the same timeout
            try:
                async with asyncio.timeout(timeout_s):
                    connection = await pool.acquire()
            except TimeoutError as exc:
                raise HttpFailure("timeout", f"no connection within {timeout_s:g} s") from exc
        try:
            return await connection.send(request, timeout_s - (time.monotonic() - started))
        except BaseException:
            connection.close()  # a half-read response: the connection is unusable
            raise
        finally:
            pool.release(connection)

    async def close(self) -> None:
        for pool in self._pools.values():
            pool.close()
        self._pools.clear()
        await asyncio.sleep(0)  # let the transports close

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
