"""Object storage: where masters and published renditions live.

`port` is the interface (`ObjectStore`, `ObjectReader`, and `IncompleteUploads` for stores that
can leave abandoned uploads behind); `local` (a directory, the embedded
default), `memory` (tests) and `s3` (any S3 server) implement it. `streamer.backends` opens
the one the settings name.
"""

from streamer.objects.port import (
    ABANDONED_UPLOAD_AGE,
    IMMUTABLE,
    MAX_KEY_LENGTH,
    IncompleteUploads,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    check_key,
)

__all__ = [
    "ABANDONED_UPLOAD_AGE",
    "IMMUTABLE",
    "MAX_KEY_LENGTH",
    "IncompleteUploads",
    "ObjectInfo",
    "ObjectReader",
    "ObjectStore",
    "check_key",
]
