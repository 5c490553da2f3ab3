"""Errors of the delivery tier `streamer serve` runs: nginx, the edge behind it, the shipper.

    DeliveryTierError                  (500)
    ├── SegmentsModeUnavailable        (500)  --segments nginx cannot run here (says why)
    ├── EdgeStartFailed                (503)  the internal edge exited or did not answer
    ├── EdgeExited                     (503)  the internal edge exited while serving
    └── NginxRestartsExhausted         (503)  nginx died and would not start again

Messages name the command, port or file involved and what to do; never a secret.
"""

from __future__ import annotations

from streamer.errors import StreamerError


class DeliveryTierError(StreamerError):
    """Base class of the delivery tier's errors."""


class SegmentsModeUnavailable(DeliveryTierError):
    """`--segments nginx` was asked for, but the tier cannot run with this machine or these
    options; `--segments auto` would have fallen back to the Python edge."""


class EdgeStartFailed(DeliveryTierError):
    http_status = 503


class EdgeExited(DeliveryTierError):
    http_status = 503


class NginxRestartsExhausted(DeliveryTierError):
    http_status = 503
