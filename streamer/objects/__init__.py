"""Object storage: where masters and published renditions live.

`port` is the interface (`ObjectStore`, `ObjectReader`); `local` (a directory, the embedded
default), `memory` (tests) and `s3` (any S3 server) implement it. `streamer.backends` opens
the one the settings name.
"""

from streamer.objects.port import (
    IMMUTABLE,
    MAX_KEY_LENGTH,
    ObjectInfo,
    ObjectReader,
    ObjectStore,
    check_key,
)

__all__ = ["IMMUTABLE", "MAX_KEY_LENGTH", "ObjectInfo", "ObjectReader", "ObjectStore", "check_key"]
