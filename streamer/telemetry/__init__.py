"""What players and the edge report about a session: the model, its bytes, and a disk spool.

`model` is what the session store keeps (events, CMCD samples, deliveries, play claims);
`codec` turns items into bytes and back; `spool` keeps batches on disk while the store is
slow or down.
"""

from streamer.telemetry.model import (
    CmcdSample,
    PlayClaim,
    PlayerEvent,
    SegmentDelivery,
    SessionTelemetry,
    TelemetryBatch,
)

__all__ = [
    "CmcdSample",
    "PlayClaim",
    "PlayerEvent",
    "SegmentDelivery",
    "SessionTelemetry",
    "TelemetryBatch",
]
