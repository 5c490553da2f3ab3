"""nginx's own refusals, answered in the API's JSON shape instead of its HTML error pages.

nginx refuses some requests before any location runs (a request line it cannot parse, a bad
escape, headers over `large_client_header_buffers`, an unknown Transfer-Encoding), and some
inside a location (an unsatisfiable Range on a segment, an origin that failed). Each such status
gets an `error_page` to an internal location returning `{"error", "message"}`, like the Python
edge's errors (cdn_edge.web.middleware.json_error). The server block carries them all; a
location with its own `error_page` lines inherits none of the server's (nginx replaces the
list), so those locations add the ones they do not map themselves.

494 is nginx's internal "request header too large"; it is sent as 431 (RFC 6585 section 5).
"""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass


@dataclass(frozen=True)
class ProtocolError:
    """One status nginx produces itself, and what the client is told."""

    status: int  # as nginx raises it
    sent: int  # as the client sees it
    code: str
    message: str  # no single quote: the body is a single-quoted nginx string

    def __post_init__(self) -> None:
        if "'" in self.message or "'" in self.code:
            raise ValueError(f"error page {self.status}: a quote would end nginx's string")

    @property
    def location(self) -> str:
        # A URI, not a named location: nginx cannot redirect a request whose line it could not
        # parse to a named location ("empty URI in redirect to named location").
        return f"/.streamer-errors/{self.status}"

    @property
    def body(self) -> str:
        return json.dumps({"error": self.code, "message": self.message}, separators=(",", ":"))


PROTOCOL_ERRORS: tuple[ProtocolError, ...] = (
    ProtocolError(400, 400, "bad_request", "the request line, target or headers are malformed"),
    ProtocolError(405, 405, "method_not_allowed", "this resource does not answer that method"),
    ProtocolError(408, 408, "request_timeout", "the request was not sent in time"),
    ProtocolError(411, 411, "length_required", "a request body needs a Content-Length"),
    ProtocolError(413, 413, "body_too_large", "the request body is over the limit"),
    ProtocolError(414, 414, "uri_too_long", "the request target is over the limit"),
    ProtocolError(416, 416, "range_not_satisfiable", "the range lies outside the object"),
    ProtocolError(494, 431, "headers_too_large", "a request header or the headers are too large"),
    ProtocolError(500, 500, "internal_error", "unexpected error; see the server log"),
    ProtocolError(501, 501, "not_implemented", "the Transfer-Encoding is not supported"),
    ProtocolError(502, 503, "unavailable", "the origin could not serve this; retry shortly"),
    ProtocolError(503, 503, "unavailable", "the server is overloaded; retry shortly"),
    ProtocolError(504, 503, "unavailable", "the origin did not answer in time; retry shortly"),
    ProtocolError(505, 505, "http_version_not_supported", "HTTP/1.0 and HTTP/1.1 only"),
)


def error_page_lines(mapped: Collection[int] = ()) -> list[str]:
    """`error_page` directives for every protocol error but the statuses already `mapped`."""
    return [
        f"error_page {e.status} = {e.location};" for e in PROTOCOL_ERRORS if e.status not in mapped
    ]
