"""Offline downloads: registered devices and their download licences, with their stores."""

from streamer.offline.errors import DeviceLimitReached, OfflineError
from streamer.offline.model import Device, Licence
from streamer.offline.port import OFFLINE_STORE_FILE, DeviceRegistry, LicenceStore, OfflineStore

__all__ = [
    "OFFLINE_STORE_FILE",
    "Device",
    "DeviceLimitReached",
    "DeviceRegistry",
    "Licence",
    "LicenceStore",
    "OfflineError",
    "OfflineStore",
]
