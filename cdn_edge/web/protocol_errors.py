"""JSON bodies for the requests aiohttp refuses before any handler or middleware sees them.

aiohttp answers a request line or header block it cannot parse (an unknown method, a line over
its limit, too many headers, a NUL or bare CR in a header, a bad chunk size) from
`RequestHandler.handle_error` with a `text/plain` 400, and logs each at ERROR with a
traceback. Middlewares never see these requests (aiohttp issue #3287, open since 2018: no public
hook), so the handler class itself is replaced: `JsonErrorServer` builds `JsonErrorRequestHandler`
for every connection, and `JsonErrorAppRunner` builds that server. The body is the API's
`{"error", "message"}` with a fixed reason per parser error: the parser's own message quotes
the offending bytes, which may carry a token, so it goes to the debug log only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp import http_exceptions, web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from cdn_edge.web.middleware import json_error

logger = logging.getLogger(__name__)

# (parser error class, code, message), most specific first: BadHttpMethod is a BadStatusLine.
_REASONS: tuple[tuple[type[Exception], str, str], ...] = (
    (http_exceptions.BadHttpMethod, "bad_method", "the request line's method is not a token"),
    (http_exceptions.LineTooLong, "line_too_long", "the request line or a header is too long"),
    (http_exceptions.BadStatusLine, "bad_request_line", "the request line could not be parsed"),
    (http_exceptions.InvalidHeader, "bad_header", "a header name or value is malformed"),
    (http_exceptions.InvalidURLError, "bad_url", "the request target is not a valid URL"),
    (
        http_exceptions.PayloadEncodingError,
        "bad_body_framing",
        "the body's length or chunked encoding is malformed",
    ),
)
# llhttp raises a plain BadHttpMessage for most errors; its reason (the text before the first
# colon, e.g. "Invalid header value char") names the part, and never holds request bytes.
_LLHTTP_REASONS: tuple[tuple[str, str, str], ...] = (
    ("header", "bad_header", "a header name or value is malformed"),
    ("chunk", "bad_body_framing", "the body's length or chunked encoding is malformed"),
    ("content-length", "bad_body_framing", "the body's length or chunked encoding is malformed"),
    ("transfer-encoding", "bad_body_framing", "the body's length or chunked encoding is malformed"),
    ("method", "bad_method", "the request line's method is not a token"),
)
_OTHER = ("bad_request", "the request line or headers could not be parsed")
_SERVER_ERROR = ("internal_error", "unexpected error; see the server log")
_PLAIN_REASON = re.compile(r"[A-Za-z][A-Za-z0-9 \-]{0,79}")


def protocol_error_reason(status: int, exc: BaseException | None) -> tuple[str, str]:
    """The (code, message) for a request aiohttp's parser refused with `status`."""
    if status >= 500:
        return _SERVER_ERROR
    reason = _parser_reason(exc)
    found: tuple[str, str] | None = None
    for kind, code, message in _REASONS:
        if isinstance(exc, kind):
            found = code, message
            break
    if found is None:
        lowered = reason.lower()
        found = next((c, m) for w, c, m in (*_LLHTTP_REASONS, ("", *_OTHER)) if w in lowered)
    code, message = found
    return code, f"{message} ({reason})" if reason else message


def _parser_reason(exc: BaseException | None) -> str:
    """The parser's reason without the request bytes it quotes after a colon, or ""."""
    text = getattr(exc, "message", "")
    head = text.split(":", 1)[0].strip() if isinstance(text, str) else ""
    return head if _PLAIN_REASON.fullmatch(head) else ""


class JsonErrorRequestHandler(RequestHandler):
    """aiohttp's connection handler, answering its own refusals as the API does."""

    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            logger.error("request failed in the HTTP server", exc_info=exc)
        else:  # a client's malformed request: one line, no traceback, no request bytes
            logger.info(
                "refused a malformed request (%s)",
                type(exc).__name__ if exc else status,
                extra={"status": status, "remote": request.remote},
            )
            logger.debug("the parser said: %s", message)
        if request.writer.output_size > 0:  # as aiohttp: a response already began
            raise ConnectionError("response already sent, cannot send the error response")
        code, text = protocol_error_reason(status, exc)
        response = json_error(status, code, text)
        response.force_close()  # the stream is out of step after a parse error
        return response


class JsonErrorServer(web.Server):
    """`web.Server` whose connections use `JsonErrorRequestHandler`."""

    def __call__(self) -> RequestHandler:
        return JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class JsonErrorAppRunner(web.AppRunner):
    """`web.AppRunner` serving through `JsonErrorServer`."""

    async def _make_server(self) -> web.Server:
        plain = await super()._make_server()
        kwargs: dict[str, Any] = dict(plain._kwargs)
        return JsonErrorServer(
            plain.request_handler,
            request_factory=plain.request_factory,
            handler_cancellation=plain.handler_cancellation,
            loop=plain._loop,
            **kwargs,
        )
