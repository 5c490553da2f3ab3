"""HTTP plumbing every handler shares: middleware, errors as JSON, CORS, the access log,
bounded bodies, Range requests, gzip and the static player files.
"""

__all__ = [
    "access_log",
    "compression",
    "cors",
    "middleware",
    "ranges",
    "request_body",
    "static_files",
]
