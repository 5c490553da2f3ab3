"""Telemetry the playback path gives off: CMCD samples, segment deliveries and CMSD headers.

Playlists, keys and segments must never fail or wait because of telemetry: items go to the
writer with `offer` (dropped and counted when it is full), and any error here is logged and
swallowed. CMCD is read after the handler has verified the request's token, so only requests
of a known session are sampled; the token itself (in the path) is never
stored.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiohttp import web

from cdn_edge.playback.catalog_cache import PublishedObject, PublishedTrack
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.telemetry.cmcd import QUERY_ARGUMENT, read_cmcd_keys
from cdn_edge.telemetry.cmsd import (
    DYNAMIC_HEADER,
    STATIC_HEADER,
    CmsdDynamic,
    CmsdStatic,
    max_suggested_bitrate,
    render_cmsd_dynamic,
    render_cmsd_static,
)
from cdn_edge.telemetry.metrics import TelemetryMetrics
from cdn_edge.telemetry.writer import TelemetryWriter
from cdn_edge.unique_ids import UniqueIds
from streamer.catalog import segment_timeline
from streamer.telemetry.model import CmcdSample, ObjectRoute, SegmentDelivery

logger = logging.getLogger(__name__)

# Routes whose requests carry CMCD (hls.js sends it on playlists, keys and segments).
CMCD_ROUTES: dict[str, ObjectRoute] = {
    "playlist_main": "playlist",
    "playlist_media": "playlist",
    "key": "key",
    "segment": "segment",
}
MAX_OBJECT_CHARS = 256
TIMELINES_KEPT = 1024  # track versions whose segment start times are kept
STATIC_HEADERS_KEPT = 100_000  # CMSD-Static per object (about 10 MB), forgotten all at once

# struct tcp_info (linux/tcp.h): offsets of tcpi_snd_mss, tcpi_rtt (us) and tcpi_snd_cwnd.
_TCP_INFO_BYTES = 104
_MSS_AT, _RTT_AT, _CWND_AT = 16, 68, 80

Congestion = Callable[[], int | None]  # a per-session ceiling in kbps while congested, else None


def default_server_id() -> str:
    """This host's name as CMSD's server identifier (printable ASCII, at most 64 chars)."""
    return re.sub(r"[^A-Za-z0-9.\-]", "", socket.gethostname())[:64] or "edge"


def tcp_estimate(transport: Any) -> tuple[int | None, int | None]:
    """(throughput kbps, rtt ms) as the kernel sees the connection (CTA-5006's informative
    etp = 8 * cwnd * mss / rtt), or (None, None) where TCP_INFO is not available."""
    option = getattr(socket, "TCP_INFO", None)
    sock = transport.get_extra_info("socket") if transport is not None else None
    if option is None or sock is None:
        return None, None
    try:
        raw = sock.getsockopt(socket.IPPROTO_TCP, option, _TCP_INFO_BYTES)
    except (OSError, AttributeError):
        return None, None
    if len(raw) < _CWND_AT + 4:
        return None, None
    (mss,) = struct.unpack_from("=I", raw, _MSS_AT)
    (rtt_us,) = struct.unpack_from("=I", raw, _RTT_AT)
    (cwnd,) = struct.unpack_from("=I", raw, _CWND_AT)
    if not (mss and rtt_us and cwnd):
        return None, None
    return round(8000 * cwnd * mss / rtt_us), round(rtt_us / 1000)


class TcpEstimates:
    """`tcp_estimate` per connection, asked of the kernel at most every `max_age_s`: a player
    fetches several segments a second over one connection while its estimate barely moves, and
    each TCP_INFO read through uvloop's socket wrapper builds a socket object."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_age_s: float = 1.0):
        self._clock = clock
        self._max_age_s = max_age_s
        self._known: weakref.WeakKeyDictionary[Any, tuple[float, tuple[int | None, int | None]]]
        self._known = weakref.WeakKeyDictionary()

    def of(self, transport: Any) -> tuple[int | None, int | None]:
        if transport is None:
            return None, None
        now = self._clock()
        try:
            known = self._known.get(transport)
        except TypeError:  # a transport that cannot be weakly referenced: ask every time
            return tcp_estimate(transport)
        if known is not None and now - known[0] < self._max_age_s:
            return known[1]
        estimate = tcp_estimate(transport)
        self._known[transport] = (now, estimate)
        return estimate


class TelemetryCapture:
    """Samples CMCD, records segment deliveries and writes CMSD for one edge process."""

    def __init__(
        self,
        writer: TelemetryWriter,
        metrics: TelemetryMetrics,
        clock: Callable[[], float],
        server_id: str,
        congestion: Congestion = lambda: None,
    ) -> None:
        self._writer = writer
        self._metrics = metrics
        self._clock = clock
        self.server_id = server_id
        self._congestion = congestion
        self._sample_ids = UniqueIds()
        self._static_headers: dict[tuple[str, bool], str] = {}
        self._tcp = TcpEstimates()
        self._timelines: OrderedDict[tuple[str, str], dict[str, tuple[float, float]]] = (
            OrderedDict()
        )

    def observe_cmcd(
        self, request: web.Request, route: str, session_id: str | None, status: int
    ) -> None:
        """Count and keep the CMCD of a request to `route` (a route name); never raises."""
        kind = CMCD_ROUTES.get(route)
        if kind is None:
            return
        try:
            read = read_cmcd_keys(request.query.get(QUERY_ARGUMENT), request.headers)
            if read is None:
                return
            keys, problems = read
            self._metrics.cmcd_requests_on(kind).inc()
            for reason in problems:
                self._metrics.cmcd_malformed.labels(reason).inc()
            if keys.get("bs") is True:
                self._metrics.cmcd_buffer_starvation.labels(kind).inc()
            if session_id is None or not keys:
                return  # a refused token: nobody to file it under
            self._writer.offer(
                CmcdSample(
                    session_id=session_id,
                    sample_id=self._sample_ids.next(),
                    received_ms=int(self._clock() * 1000),
                    route=kind,
                    object=_object_name(request, route),
                    status=status,
                    keys=keys,
                )
            )
        except Exception:  # telemetry never fails a request
            logger.exception("CMCD capture failed on %s; the request went on", route)

    def segment_served(
        self,
        request: web.Request,
        claims: SessionClaims,
        track: PublishedTrack,
        obj: PublishedObject,
        name: str,
        started: float,
    ) -> dict[str, str]:
        """Record a delivery to the session and return the CMSD headers; never raises.

        `started` is the handler's time.perf_counter() at the request's arrival.
        """
        try:
            timing = self._timing(track, name)
            if timing is not None:
                self._writer.offer(
                    SegmentDelivery(
                        session_id=claims.session_id,
                        track_id=claims.track_id,
                        version=claims.version,
                        rendition=obj.rendition,
                        name=name,
                        start_s=timing[0],
                        duration_s=timing[1],
                        delivered_ms=int(self._clock() * 1000),
                    )
                )
            return self._cmsd(request, claims, track, obj, timing, started)
        except Exception:
            logger.exception("segment telemetry failed for %s; the request went on", name)
            return {}

    def _timing(self, track: PublishedTrack, name: str) -> tuple[float, float] | None:
        key = (track.record.track_id, track.record.version)
        timeline = self._timelines.get(key)
        if timeline is None:
            timeline = self._timelines[key] = segment_timeline(track.record)
            while len(self._timelines) > TIMELINES_KEPT:
                self._timelines.popitem(last=False)
        else:
            self._timelines.move_to_end(key)
        return timeline.get(name)

    def _cmsd(
        self,
        request: web.Request,
        claims: SessionClaims,
        track: PublishedTrack,
        obj: PublishedObject,
        timing: tuple[float, float] | None,
        started: float,
    ) -> dict[str, str]:
        static_key = (obj.key, timing is not None)
        static_header = self._static_headers.get(static_key)
        if static_header is None:  # the same for every request of the object
            static_header = render_cmsd_static(self._static(track, obj, timing))
            if len(self._static_headers) >= STATIC_HEADERS_KEPT:
                self._static_headers.clear()
            self._static_headers[static_key] = static_header
        congestion = self._congestion()
        etp, rtt = self._tcp.of(request.transport)
        dynamic = CmsdDynamic(
            server=self.server_id,
            etp=etp,
            mb=max_suggested_bitrate(claims.tier, congestion),
            rd=max(0, round((time.perf_counter() - started) * 1000)),
            rtt=rtt,
            du=congestion is not None,
        )
        return {STATIC_HEADER: static_header, DYNAMIC_HEADER: render_cmsd_dynamic((dynamic,))}

    @staticmethod
    def _static(
        track: PublishedTrack, obj: PublishedObject, timing: tuple[float, float] | None
    ) -> CmsdStatic:
        rendition = track.renditions.get(obj.rendition)
        bitrate = None
        if rendition is not None:
            bitrate = rendition.bitrate_kbps or round(rendition.average_bandwidth / 1000)
        return CmsdStatic(
            ot="a" if timing is not None else "i",
            d=round(timing[1] * 1000) if timing is not None else None,
            br=bitrate if timing is not None else None,
        )


def _object_name(request: web.Request, route: str) -> str:
    info = request.match_info
    if route == "playlist_main":
        return "main"
    if route == "playlist_media":
        name = info.get("rendition", "")
    elif route == "key":
        name = info.get("key_id", "")
    else:  # a segment: the object key below the version, as the track record names it
        name = f"{info.get('rendition', '')}/{info.get('file', '')}".strip("/")
    return name[:MAX_OBJECT_CHARS] or "-"
