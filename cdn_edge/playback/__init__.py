"""Playback services the handlers call: session tokens, playlists, keys and cached objects.

`tokens` signs and verifies the session token in every playback URL; `playlist_builder`
renders a track's playlists once per version; `key_service` hands content keys to entitled
sessions within their budgets; `catalog_cache` and `segment_cache` keep published records and
object bytes in memory.
"""

__all__ = ["catalog_cache", "key_service", "playlist_builder", "segment_cache", "tokens"]
