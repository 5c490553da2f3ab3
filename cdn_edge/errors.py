"""Errors the edge raises on purpose; each maps to an HTTP status and a JSON body.

    EdgeError                          (500)  edge_error
    ├── BadRequest                     (400)  bad_request
    │   ├── InvalidField               (400)  invalid_field      a request body field is wrong
    │   └── MalformedName              (400)  malformed_name     a path part that is not a name
    ├── Unauthorized                   (401)  unauthorized       missing, forged or expired token
    ├── Forbidden                      (403)  forbidden
    │   ├── NotEntitled                (403)  not_entitled       above the listener's tier
    │   ├── TokenMismatch              (403)  token_mismatch     a valid token for another thing
    │   └── DownloadRefused            (403)  <its reason>       downloads: premium_required,
    │                                                       device_unknown, licence_revoked, ...
    │   └── AdMismatch                 (403)  ad_mismatch        not the break's decided ad
    ├── NotFound                       (404)  not_found
    │   ├── TrackNotFound              (404)  track_not_found
    │   ├── StaticNotInstalled         (404)  static_missing     hls.js not installed
    │   └── AdNotDecided               (404)  ad_not_decided     the break has no ad decided
    ├── NotAcceptable                  (406)  no_playable_rendition  device plays nothing offered
    ├── SteeringGone                   (410)  steering_gone      session over: stop steering
    ├── PayloadTooLarge                (413)  payload_too_large  a request body over its bound
    ├── RangeNotSatisfiable            (416)  range_not_satisfiable
    ├── RateLimited                    (429)  rate_limited       carries Retry-After
    └── Unavailable                    (503)  unavailable        a backend failed; retry later

Handlers raise these; one middleware turns them into `{"error": code, "message": ...}`.
Messages never contain token, key or secret bytes.
"""

from __future__ import annotations


class EdgeError(Exception):
    """Base class of the edge's deliberate errors."""

    http_status = 500
    code = "edge_error"

    def headers(self) -> dict[str, str]:
        """Extra response headers this error asks for."""
        return {}


class BadRequest(EdgeError):
    http_status = 400
    code = "bad_request"


class InvalidField(BadRequest):
    """A request body field is missing or malformed; `field` names it, dotted."""

    code = "invalid_field"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class MalformedName(BadRequest):
    code = "malformed_name"


class Unauthorized(EdgeError):
    http_status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        # RFC 6750 section 3: a 401 to a bearer-token request names the scheme.
        return {"WWW-Authenticate": 'Bearer realm="streamer-edge"'}


class Forbidden(EdgeError):
    http_status = 403
    code = "forbidden"


class NotEntitled(Forbidden):
    code = "not_entitled"


class TokenMismatch(Forbidden):
    code = "token_mismatch"


class AdMismatch(Forbidden):
    """An ad path or beacon names another campaign or ad than its break's decision."""

    code = "ad_mismatch"


class NotFound(EdgeError):
    http_status = 404
    code = "not_found"


class AdNotDecided(NotFound):
    """No ad was decided for this break of this session (none asked for, or none served)."""

    code = "ad_not_decided"


class TrackNotFound(NotFound):
    code = "track_not_found"

    def __init__(self, track_id: str, version: str | None = None) -> None:
        where = "" if version is None else f" at version {version!r}"
        super().__init__(f"no published track with id {track_id!r}{where}")
        self.track_id = track_id


class StaticNotInstalled(NotFound):
    code = "static_missing"


class NotAcceptable(EdgeError):
    http_status = 406
    code = "no_playable_rendition"


class SteeringGone(EdgeError):
    """The session behind a steering URL has ended; 410 tells players to stop reloading."""

    http_status = 410
    code = "steering_gone"


class PayloadTooLarge(EdgeError):
    http_status = 413
    code = "payload_too_large"


class RangeNotSatisfiable(EdgeError):
    http_status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size

    def headers(self) -> dict[str, str]:
        # RFC 9110 section 15.5.17: a 416 carries the current length as "bytes */size".
        return {"Content-Range": f"bytes */{self.size}"}


class RateLimited(EdgeError):
    http_status = 429
    code = "rate_limited"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class Unavailable(EdgeError):
    http_status = 503
    code = "unavailable"

    def headers(self) -> dict[str, str]:
        return {"Retry-After": "1"}


class DownloadRefused(Forbidden):
    """An offline download request that policy refuses; `code` is the reason
    (streamer.offline.policy.Refusal), so clients can tell a lapsed subscription from a
    revoked licence."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
