"""GET /v1/steer/{session_token}?_HLS_pathway=..&_HLS_throughput=..: the steering manifest.

The multivariant playlist's EXT-X-CONTENT-STEERING SERVER-URI points here; the player reloads
every TTL seconds (at RELOAD-URI, the same absolute URL) and adds the pathway it plays from and
its throughput estimate in bit/s. Each reload is a listener report: the named pathway works
for it, and its throughput is remembered for the start bitrate of the user's next session.

The session token is all the state: an expired session answers 410 Gone, which tells players
to stop steering (HLS Content Steering, "Steering Manifest"; hls.js honours it), rather than
the 401 that would have them retry every TTL.
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.errors import SteeringGone
from cdn_edge.playback.playlist_builder import steering_path
from cdn_edge.playback.tokens import SessionClaims
from cdn_edge.state import (
    CLOCK,
    METRICS,
    PATHWAY_HEALTH,
    PATHWAYS,
    SETTINGS,
    THROUGHPUT,
    TOKENS,
    log_fields,
)
from cdn_edge.steering.policy import (
    SteeringManifest,
    parse_report,
    pathway_priority,
    steering_document,
)
from drm import TokenExpired

NO_STORE = {"Cache-Control": "no-store"}  # per listener and per moment: never cached
NO_PATHWAY = "none"  # metrics label for a reload that named no known pathway


def session_priority(app: web.Application, session: SessionClaims) -> tuple[str, ...]:
    """The session's pathway ids, best first, as of now."""
    pathways = app[PATHWAYS]
    return pathway_priority(
        pathways, session.region, app[PATHWAY_HEALTH].unhealthy, session.session_id
    )


async def steering_manifest(request: web.Request) -> web.Response:
    app = request.app
    now = app[CLOCK]()
    token = request.match_info["token"]
    try:
        session = app[TOKENS].verify_session(token, int(now))
    except TokenExpired as exc:
        raise SteeringGone("the session has ended; start a new one to keep steering") from exc
    log_fields(request).update(session_id=session.session_id, track_id=session.track_id)

    pathways = app[PATHWAYS]
    report = parse_report(request.query, frozenset(p.id for p in pathways))
    metrics = app[METRICS]
    metrics.steering_requests.labels(report.pathway_id or NO_PATHWAY).inc()
    if report.pathway_id is not None:
        # Playing from it, well enough to reload steering: a success for that pathway.
        app[PATHWAY_HEALTH].report(report.pathway_id, True, now)
        log_fields(request)["pathway"] = report.pathway_id
    if report.throughput_bps is not None:
        kbps = max(1, report.throughput_bps // 1000)
        app[THROUGHPUT].record(session.user_id, kbps, now)
        if report.pathway_id is not None:
            metrics.pathway_throughput.labels(report.pathway_id).observe(kbps)

    manifest = SteeringManifest(
        ttl_s=app[SETTINGS].steering_ttl_s,
        reload_uri=app[SETTINGS].base_url + steering_path(token),
        pathway_priority=session_priority(app, session),
    )
    return web.json_response(steering_document(manifest), headers=NO_STORE)
