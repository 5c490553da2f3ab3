"""One HTTP/1.1 exchange over a plain socket, the request sent byte for byte as given.

http.client and aiohttp's client normalise or refuse what an attacker sends (dot segments,
NUL, backslashes, oversized headers); this sends it anyway and reads whatever comes back. A
server that closes the connection without an answer is a `Reply` with status 0.
"""

from __future__ import annotations

import contextlib
import gzip
import socket
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

TIMEOUT_S = 10.0
MAX_REPLY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    status: int  # 0: the server closed the connection without an answer
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case
    body: bytes = b""  # decoded: de-chunked and, if the server gzipped it, gunzipped

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def build_request(
    method: str,
    target: str | bytes,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    host: str = "127.0.0.1",
) -> bytes:
    """The request's bytes: `target` as given, `Host` and `Connection: close` unless given,
    `Content-Length` for a body unless a length or `Transfer-Encoding` is given."""
    given = list(headers)
    names = {name.lower() for name, _ in given}
    if "host" not in names:
        given.insert(0, ("Host", host))
    if "connection" not in names:
        given.append(("Connection", "close"))
    if body is not None and not names & {"content-length", "transfer-encoding"}:
        given.append(("Content-Length", str(len(body))))
    raw_target = target if isinstance(target, bytes) else target.encode("utf-8", "surrogateescape")
    head = method.encode("latin-1") + b" " + raw_target + b" HTTP/1.1\r\n"
    for name, value in given:
        head += name.encode("latin-1") + b": " + value.encode("latin-1") + b"\r\n"
    return head + b"\r\n" + (body or b"")


def send(
    host: str, port: int, request: bytes, timeout_s: float = TIMEOUT_S, head: bool = False
) -> Reply:
    """Send `request` and read one reply: to the end of its declared body, or until the
    server closes the connection (a server may keep it open to drain an unread body). `head`
    says the request was HEAD: the reply's Content-Length then describes no body."""
    data = b""
    with socket.create_connection((host, port), timeout=timeout_s) as conn:
        # A server may answer early (a 413, a 431) and close: then read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(request)
        try:
            while not _complete(data, head) and len(data) <= MAX_REPLY_BYTES:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    reply = parse_reply(data)
    return Reply(reply.status, reply.headers, b"") if head else reply


def _complete(data: bytes, head: bool) -> bool:
    """Whether `data` holds a whole reply (False while its end is unknown: read to EOF)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return False
    lines = data[:end].decode("latin-1").lower().split("\r\n")
    status = lines[0].split(" ")
    if head or (len(status) > 1 and status[1] in ("204", "304")):
        return True
    fields = dict(line.partition(":")[::2] for line in lines[1:])
    body = data[end + 4 :]
    if "chunked" in fields.get("transfer-encoding", ""):
        return body.endswith(b"0\r\n\r\n")
    length = fields.get("content-length", "").strip()
    return length.isdigit() and len(body) >= int(length)


def parse_reply(data: bytes) -> Reply:
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep:
        return Reply(0)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return Reply(0)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = rest
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = _dechunk(rest)
    elif headers.get("content-length", "").isdigit():
        body = rest[: int(headers["content-length"])]
    encoding = headers.get("content-encoding", "").lower()
    if encoding == "gzip" and body:
        body = gzip.decompress(body)
    elif encoding == "deflate" and body:
        body = zlib.decompress(body)
    return Reply(int(parts[1]), headers, body)


def _dechunk(data: bytes) -> bytes:
    out = []
    while data:
        size_line, sep, data = data.partition(b"\r\n")
        if not sep:
            break
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out.append(data[:size])
        data = data[size + 2 :]
    return b"".join(out)
