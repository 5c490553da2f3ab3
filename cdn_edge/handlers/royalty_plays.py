"""GET /v1/tracks/{track_id}/plays?from=YYYY-MM-DD&to=YYYY-MM-DD: royalty plays per UTC day.

For creators, with an analytics token (cdn_edge.analytics_auth) for a track they submitted, or
one that reads every track. Every day of the range is listed, days without plays as 0:

    {"track_id": "trk1", "from": "2024-05-01", "to": "2024-05-03", "total": 7,
     "days": [{"day": "2024-05-01", "plays": 4}, {"day": "2024-05-02", "plays": 0}, ...]}

Counts are final for a day only once its offline plays are in: up to 30 days later.
"""

from __future__ import annotations

from datetime import date, timedelta

from aiohttp import web

from cdn_edge.errors import Forbidden, InvalidField
from cdn_edge.policy.names import check_name
from cdn_edge.state import ANALYTICS, BLOCKING, CATALOG, PLAY_LEDGER, log_fields

MAX_RANGE_DAYS = 366


def parse_day(field: str, value: str | None) -> date:
    if value is None:
        raise InvalidField(field, "is required, as YYYY-MM-DD (a UTC day)")
    try:
        if len(value) != 10:
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError as exc:
        raise InvalidField(field, f"{value[:20]!r} is not a day as YYYY-MM-DD") from exc


def parse_range(first_text: str | None, last_text: str | None) -> tuple[date, date]:
    first, last = parse_day("from", first_text), parse_day("to", last_text)
    if last < first:
        raise InvalidField("to", f"{last} is before from={first}")
    days = (last - first).days + 1
    if days > MAX_RANGE_DAYS:
        raise InvalidField("to", f"the range has {days} days; ask for at most {MAX_RANGE_DAYS}")
    return first, last


async def track_plays(request: web.Request) -> web.Response:
    app = request.app
    grant = app[ANALYTICS].verify_header(request.headers.get("Authorization"))
    track_id = check_name("track id", request.match_info["track_id"])
    first, last = parse_range(request.query.get("from"), request.query.get("to"))
    log_fields(request).update(track_id=track_id, analytics_subject=grant.subject)
    if not grant.all_tracks:
        track = await app[CATALOG].current(track_id)
        if not grant.may_read(track.record.metadata.get("submitted_by")):
            raise Forbidden(
                f"track {track_id} was not submitted by {grant.subject!r}; an analytics token "
                "reads its own creator's tracks"
            )
    counts = await app[BLOCKING](app[PLAY_LEDGER].plays_by_day, track_id, first, last)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    doc = {
        "track_id": track_id,
        "from": first.isoformat(),
        "to": last.isoformat(),
        "total": sum(counts.values()),
        "days": [{"day": day.isoformat(), "plays": counts.get(day, 0)} for day in days],
    }
    return web.json_response(doc, headers={"Cache-Control": "private, no-store"})
