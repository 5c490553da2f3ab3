"""Errors of the ads core.

StreamerError                 (streamer.errors)
└── AdError                   (500)
    ├── InvalidCampaign       (400)  a campaign that cannot be run as given
    ├── InvalidAdEvent        (400)  an impression or quartile the edge cannot count
    ├── CampaignNotFound      (404)
    ├── CampaignExists        (409)  created again: update it instead
    └── AdNotFound            (404)  no published creative of that id
"""

from __future__ import annotations

from streamer.errors import StreamerError


class AdError(StreamerError):
    """Base class of the ads core's errors."""


class InvalidCampaign(AdError):
    http_status = 400


class InvalidAdEvent(AdError):
    http_status = 400


class CampaignNotFound(AdError):
    http_status = 404

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"no campaign with id {campaign_id!r}")
        self.campaign_id = campaign_id


class AdNotFound(AdError):
    http_status = 404

    def __init__(self, ad_id: str) -> None:
        super().__init__(f"no published ad creative with id {ad_id!r}")
        self.ad_id = ad_id


class CampaignExists(AdError):
    http_status = 409

    def __init__(self, campaign_id: str) -> None:
        super().__init__(f"campaign {campaign_id!r} exists; PATCH it to change it")
        self.campaign_id = campaign_id
