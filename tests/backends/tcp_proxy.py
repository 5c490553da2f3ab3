"""A TCP proxy a test can cut and restore, to fail a shared server for one client only.

`cut()` closes the listening socket and every open connection, so the client sees its
connections reset and new ones refused, as when the server dies; `restore()` listens on the
same port again. The server itself never notices more than clients going away.

Threads, not asyncio: the clients under test (the CQL driver) block, and the proxy must keep
forwarding while a test's event loop is busy or blocked.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

HOST = "127.0.0.1"
CONNECT_TIMEOUT_S = 2.0
ACCEPT_POLL_S = 0.05  # how soon a cut stops the accept loop
CHUNK = 64 * 1024


class TcpProxy:
    """Forwards `HOST:port` to `target`; `port` is chosen on `start()` and kept."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.accepted = 0  # connections taken since start, to tell that clients came back
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        """Listen (on a free port the first time, on the same port after a cut)."""
        if self._listener is not None:
            raise RuntimeError("the proxy is already listening")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._stop.clear()
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self._acceptor.start()

    restore = start

    def cut(self) -> None:
        """Stop listening and reset every connection."""
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            for sock in pair:
                _close(sock)

    close = cut

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def _accept(self) -> None:
        assert self._listener is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            while not self._stop.is_set():
                if not selector.select(ACCEPT_POLL_S):
                    continue
                try:
                    client, _ = self._listener.accept()
                except OSError:
                    return
                try:
                    server = socket.create_connection(self.target, timeout=CONNECT_TIMEOUT_S)
                except OSError:
                    _close(client)
                    continue
                server.settimeout(None)
                pair = (client, server)
                with self._lock:
                    if self._stop.is_set():
                        _close(client)
                        _close(server)
                        return
                    self._pairs.add(pair)
                    self.accepted += 1
                for source, sink in (pair, pair[::-1]):
                    threading.Thread(
                        target=self._pump, args=(source, sink, pair), daemon=True
                    ).start()

    def _pump(
        self, source: socket.socket, sink: socket.socket, pair: tuple[socket.socket, ...]
    ) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        for sock in pair:
            _close(sock)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # not connected (any more)
        sock.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv
    sock.close()


@contextmanager
def tcp_proxy(target_host: str, target_port: int) -> Iterator[TcpProxy]:
    proxy = TcpProxy(target_host, target_port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.close()
