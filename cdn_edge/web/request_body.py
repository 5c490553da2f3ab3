"""Reading request bodies with a hard bound, before anything parses them."""

from __future__ import annotations

from aiohttp import web

from cdn_edge.errors import PayloadTooLarge


async def read_bounded(request: web.Request, limit: int, advice: str) -> bytes:
    """The whole body, or PayloadTooLarge (413) as soon as it passes `limit` bytes."""
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
