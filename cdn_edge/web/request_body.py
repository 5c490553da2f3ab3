"""Reading request bodies with a hard bound, before anything parses them."""

from __future__ import annotations

from aiohttp import web

from cdn_edge.errors import BadRequest, PayloadTooLarge


async def read_bounded(request: web.Request, limit: int, advice: str) -> bytes:
    """The whole body, or PayloadTooLarge (413) as soon as it passes `limit` bytes, or
    BadRequest (400) when it does not decode as its Content-Encoding says."""
    try:
        return await _read_bounded(request, limit, advice)
    except web.RequestPayloadError as exc:
        # aiohttp inflates gzip and deflate as it reads, and checks chunked framing and length.
        reason = getattr(exc.__cause__, "message", "") or "its framing or encoding is broken"
        raise BadRequest(f"the body cannot be read: {reason}") from exc


async def _read_bounded(request: web.Request, limit: int, advice: str) -> bytes:
    too_large = f"the body is over {limit} bytes; {advice}"
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(too_large)
    # read(n) returns what has arrived so far, so a body in several TCP segments takes a loop.
    chunks: list[bytes] = []
    size = 0
    while chunk := await request.content.read(limit + 1 - size):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(too_large)
    return b"".join(chunks)
