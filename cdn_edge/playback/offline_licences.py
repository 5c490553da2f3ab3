"""Offline download licences: grant, renew and revoke, each in one function.

A licence lets one registered device hold one version of a track's premium renditions until
its expiry (`streamer.offline.policy`). What the device gets:

- the licence document, Ed25519-signed (`drm.device_keys`), so neither the device nor anyone
  on the way can move its expiry: the edge refuses an edited document, and the device's
  player checks the signature with the key the document names;
- the content keys of those renditions, each wrapped for the device's X25519 key and bound to
  licence, device, track, version, key id and expiry: never in the clear, useless on another
  device, and unopenable under an edited expiry;
- media playlist URLs under a download session token (`DOWNLOAD_SESSION_PREFIX`), which
  opens the renditions' playlists and segments for `DOWNLOAD_URL_TTL_S` and never a clear
  key (cdn_edge.handlers.keys refuses such sessions).

Grant, renew and revoke are one method each so an audit record can be added in one place.
The methods block (store calls); the handlers run them in a thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cdn_edge.playback.catalog_cache import PublishedTrack
from cdn_edge.playback.tokens import PlaybackTokens, SessionClaims
from drm import (
    KeyBinding,
    KeyRing,
    licence_public_key,
    sign_licence,
    unwrap_key,
    verify_licence,
    wrap_for_device,
)
from streamer.audit.events import licence_granted, licence_revoked
from streamer.audit.model import AuditEvent
from streamer.catalog import RenditionRecord
from streamer.errors import CatalogError
from streamer.offline.model import Device, Licence
from streamer.offline.policy import new_expiry
from streamer.offline.port import OfflineStore

DOWNLOAD_URL_TTL_S = 6 * 3600  # long enough to fetch a long track on a slow link
DOWNLOAD_SESSION_PREFIX = "dl."  # '.' never occurs in a streaming session id (base64url)
LICENCE_ID_BYTES = 12  # 96 random bits
LICENCE_SIGNING_LABEL = b"streamer offline licence signing v1"
LICENCE_FORMAT = 1


def licence_signing_seed(playback_key: bytes) -> bytes:
    """The Ed25519 seed licences are signed with, derived from the edge's playback secret."""
    return hmac.digest(playback_key, LICENCE_SIGNING_LABEL, hashlib.sha256)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def from_b64url(text: str) -> bytes:
    """Raises ValueError on anything but unpadded or padded base64url."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url text")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(f"not base64url: {exc}") from exc


def canonical(document: dict[str, Any]) -> bytes:
    """The bytes a licence's signature covers: JSON, sorted keys, no spaces, ASCII."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode("ascii")


@dataclass(frozen=True)
class IssuedLicence:
    """A licence as handed to its device."""

    licence: Licence
    document: dict[str, Any]  # what the signature covers
    signature: bytes
    download_token: str | None  # None on a renewal: the device holds the media already


def download_renditions(
    track: PublishedTrack, codecs: frozenset[str]
) -> tuple[RenditionRecord, ...]:
    """The premium renditions of the track the device decodes (RFC 6381 codec families)."""
    return tuple(r for r in track.record.renditions if r.tier == "premium" and r.codec in codecs)


class OfflineLicences:
    """Grants, renews and revokes download licences over an OfflineStore."""

    def __init__(
        self,
        store: OfflineStore,
        keyring: KeyRing,
        tokens: PlaybackTokens,
        signing_seed: bytes,
        clock: Callable[[], float],
        audit: Callable[[AuditEvent], None] = lambda event: None,
    ) -> None:
        self.store = store
        self._audit = audit
        self._keyring = keyring
        self._tokens = tokens
        self._seed = signing_seed
        self.public_key = licence_public_key(signing_seed)
        self._clock = clock

    def grant(
        self, device: Device, track: PublishedTrack, renditions: tuple[RenditionRecord, ...]
    ) -> IssuedLicence:
        """A new licence for (device, track): stored whole, then handed out; StorageError
        (503) leaves nothing stored and nothing handed out."""
        now = int(self._clock())
        licence = Licence(
            licence_id=secrets.token_urlsafe(LICENCE_ID_BYTES),
            device_id=device.device_id,
            user_id=device.user_id,
            track_id=track.record.track_id,
            version=track.record.version,
            renditions=tuple(r.name for r in renditions),
            granted_at=now,
            expires_at=new_expiry(now),
        )
        issued = self._issue(licence, device, track)  # keys wrapped before anything is stored
        self.store.grant_licence(licence)
        self._audit_grant(issued, renewal=False)
        token = self._tokens.sign_session(
            SessionClaims(
                session_id=DOWNLOAD_SESSION_PREFIX + licence.licence_id,
                track_id=licence.track_id,
                version=licence.version,
                user_id=licence.user_id,
                tier="premium",
                variants=licence.renditions,
                expires_at=now + DOWNLOAD_URL_TTL_S,
            )
        )
        return IssuedLicence(issued.licence, issued.document, issued.signature, token)

    def renew(
        self, licence: Licence, device: Device, track: PublishedTrack
    ) -> IssuedLicence | None:
        """The licence with its expiry moved to 30 days from now, keys re-bound to it; None
        if the store found it revoked or expired meanwhile."""
        now = int(self._clock())
        renewed = self.store.renew_licence(licence.licence_id, new_expiry(now), now)
        if renewed is None:
            return None
        issued = self._issue(renewed, device, track)
        self._audit_grant(issued, renewal=True)
        return issued

    def revoke(self, licence_id: str, by: str) -> Licence | None:
        """Revoke from now on, for good; the licence as stored, or None if there is none."""
        now = self._clock()
        revoked = self.store.revoke_licence(licence_id, int(now), by)
        if revoked is not None:
            # `by` says who and why ("listener", "listener:device_removed", "admin:<operator>").
            actor = by if by.startswith("admin:") else f"listener:{revoked.user_id}"
            self._audit(licence_revoked(actor=actor, licence_id=licence_id, reason=by, at_s=now))
        return revoked

    def verify(self, document: object, signature: str) -> dict[str, Any]:
        """A presented licence document whose signature is ours. Raises ValueError for a
        malformed one, drm.LicenceSignatureInvalid (403) for an edited one."""
        if not isinstance(document, dict):
            raise ValueError("the licence must be the JSON object the edge issued")
        verify_licence(canonical(document), from_b64url(signature), self.public_key)
        return document

    def _audit_grant(self, issued: IssuedLicence, *, renewal: bool) -> None:
        licence = issued.licence
        self._audit(
            licence_granted(
                user_id=licence.user_id,
                licence_id=licence.licence_id,
                track_id=licence.track_id,
                key_ids=(key["key_id"] for key in issued.document["keys"]),
                expires_at=licence.expires_at,
                at_s=self._clock(),
                device_id=licence.device_id,
                renewal=renewal,
            )
        )

    def _issue(self, licence: Licence, device: Device, track: PublishedTrack) -> IssuedLicence:
        key_ids = sorted(
            {
                s.key_id
                for r in track.record.renditions
                if r.name in licence.renditions
                for s in r.segments
            }
        )
        keys = []
        for key_id in key_ids:
            binding = KeyBinding(
                licence.licence_id,
                licence.device_id,
                licence.track_id,
                licence.version,
                key_id,
                licence.expires_at,
            )
            wrapped = wrap_for_device(self._content_key(track, key_id), device.public_key, binding)
            keys.append({"key_id": key_id, "wrapped": b64url(wrapped)})
        document: dict[str, Any] = {
            "format": LICENCE_FORMAT,
            "licence_id": licence.licence_id,
            "device_id": licence.device_id,
            "user_id": licence.user_id,
            "track_id": licence.track_id,
            "version": licence.version,
            "renditions": list(licence.renditions),
            "granted_at": licence.granted_at,
            "expires_at": licence.expires_at,
            "keys": keys,
        }
        return IssuedLicence(licence, document, sign_licence(canonical(document), self._seed), None)

    def _content_key(self, track: PublishedTrack, key_id: str) -> bytes:
        wrapped = track.keys.get(key_id)
        if wrapped is None:
            raise CatalogError(f"track {track.record.track_id} names key {key_id} but has none")
        try:
            blob = base64.b64decode(wrapped.wrapped_b64, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CatalogError(f"wrapped key {key_id} is not base64") from exc
        # The clear key lives only in this frame: wrapped for the device at once, never kept.
        return unwrap_key(blob, key_id, self._keyring.get(wrapped.kek_id))
