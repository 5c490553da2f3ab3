"""`streamer ads`: campaigns and their reports (the ad store `settings.ad_store` names).

streamer ads campaign FILE.json            add or replace a campaign (streamer.ads.campaigns)
streamer ads campaigns                     list them
streamer ads report --campaign ID [--day YYYY-MM-DD]   impressions and quartiles of a day
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from streamer.ads.campaigns import campaign_doc, campaign_from_doc
from streamer.ads.errors import InvalidCampaign
from streamer.settings import Settings

SettingsOf = Callable[[argparse.Namespace], Settings]


def cmd_campaign(args: argparse.Namespace, settings: Settings) -> int:
    from streamer.backends import open_ad_store

    try:
        doc: Any = json.loads(Path(args.file).read_text())
    except (OSError, ValueError) as exc:
        print(f"streamer ads: cannot read {args.file}: {exc}", file=sys.stderr)
        return 2
    try:
        campaign = campaign_from_doc(doc)
    except InvalidCampaign as exc:
        print(f"streamer ads: {args.file}: {exc}", file=sys.stderr)
        return 2
    store = open_ad_store(settings)
    try:
        store.put_campaign(campaign)
    finally:
        store.close()
    print(f"campaign {campaign.campaign_id} stored (ad {campaign.ad_id})")
    return 0


def cmd_campaigns(args: argparse.Namespace, settings: Settings) -> int:
    from streamer.backends import open_ad_store

    store = open_ad_store(settings)
    try:
        campaigns = store.campaigns()
    finally:
        store.close()
    json.dump([campaign_doc(c) for c in campaigns], sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from streamer.backends import open_ad_store

    day: date = args.day or datetime.now(UTC).date()
    store = open_ad_store(settings)
    try:
        counts = store.event_counts(args.campaign, day)
        served = store.served_by_campaign([args.campaign], day)[args.campaign]
    finally:
        store.close()
    print(f"campaign {args.campaign} on {day.isoformat()}: {served} breaks decided")
    for event, count in counts.items():
        print(f"  {event:15} {count}")
    return 0


def add_ads_commands(
    commands: Any, settings_of: SettingsOf, day_type: Callable[[str], date]
) -> None:
    """The `streamer ads` subcommands, on the parser's subcommands."""
    ads = commands.add_parser("ads", help="audio ads: campaigns and reports")
    sub = ads.add_subparsers(dest="ads_command", required=True)

    def run(command: Callable[[argparse.Namespace, Settings], int]) -> Callable[..., int]:
        return lambda args: command(args, settings_of(args))

    campaign = sub.add_parser("campaign", help="add or replace a campaign from a JSON file")
    campaign.add_argument("file", metavar="FILE.json")
    campaign.set_defaults(func=run(cmd_campaign))
    listing = sub.add_parser("campaigns", help="list campaigns as JSON")
    listing.set_defaults(func=run(cmd_campaigns))
    report = sub.add_parser("report", help="impressions and quartiles of a campaign's day")
    report.add_argument("--campaign", required=True, metavar="ID")
    report.add_argument("--day", type=day_type, metavar="YYYY-MM-DD", help="UTC day; default today")
    report.set_defaults(func=run(cmd_report))
