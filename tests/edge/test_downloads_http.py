"""Offline downloads over HTTP: devices, licences, wrapped keys, renewal, revocation, attacks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from cdn_edge.admin_auth import ADS_SCOPE, issue_admin_token
from cdn_edge.playback.offline_licences import b64url, canonical, from_b64url
from cdn_edge.state import AUDIT
from drm import KeyUnwrapError, decrypt_segment, verify_licence
from drm.device_keys import DEVICE_WRAPPED_SIZE
from streamer.audit.chain import derive_chain_key
from streamer.audit.memory import InMemoryAuditLog
from streamer.audit.model import AuditAction
from streamer.audit.verify import verify_log
from streamer.offline.policy import DEVICE_LIMIT, LICENCE_TTL_S
from streamer.offline.sqlite import SQLiteOfflineStore
from streamer.settings import Settings
from streamer.token_secrets import TokenSecrets
from tests.edge.builders import BuiltTrack
from tests.edge.conftest import ManualClock, path_of
from tests.edge.offline_device import auth, grant, new_device, register

DAY_S = 86_400


@pytest.fixture
def premium(listener_token: Callable[..., str]) -> str:
    return listener_token("premium", ttl_s=90 * DAY_S)


async def _registered(dl: TestClient, token: str) -> tuple[Any, str]:
    keys = new_device()
    status, doc = await register(dl, token, keys)
    assert status == 201, doc
    return keys, doc["device_id"]


async def test_a_premium_device_registers_and_lists(dl: TestClient, premium: str) -> None:
    keys, device_id = await _registered(dl, premium)
    response = await dl.get("/v1/devices", headers=auth(premium))
    doc = await response.json()
    assert response.status == 200
    assert doc["limit"] == DEVICE_LIMIT
    assert [(d["device_id"], d["public_key"]) for d in doc["devices"]] == [
        (device_id, keys.public_b64)
    ]


async def test_a_free_listener_cannot_register_or_get_a_licence(
    dl: TestClient, listener_token: Callable[..., str], premium: str
) -> None:
    free = listener_token("free")
    status, doc = await register(dl, free, new_device())
    assert (status, doc["error"]) == (403, "premium_required"), doc
    _, device_id = await _registered(dl, premium)  # same user u1, once premium
    status, doc = await grant(dl, free, device_id)
    assert (status, doc["error"]) == (403, "premium_required"), doc
    assert "premium" in doc["message"]


async def test_a_sixth_device_is_refused(dl: TestClient, premium: str) -> None:
    for _ in range(DEVICE_LIMIT):
        await _registered(dl, premium)
    status, doc = await register(dl, premium, new_device())
    assert (status, doc["error"]) == (409, "device_limit_reached"), doc
    assert "5 devices" in doc["message"]


async def test_a_bad_public_key_is_a_400(dl: TestClient, premium: str) -> None:
    for key in ("short", b64url(bytes(32)), 42):
        response = await dl.post("/v1/devices", json={"public_key": key}, headers=auth(premium))
        doc = await response.json()
        assert (response.status, doc["error"]) == (400, "invalid_field"), doc
        assert doc["message"].startswith("public_key:")


async def test_the_licence_carries_keys_only_its_device_opens(
    dl: TestClient, premium: str, track: BuiltTrack, clock: ManualClock
) -> None:
    keys, device_id = await _registered(dl, premium)
    other, _ = await _registered(dl, premium)
    status, doc = await grant(dl, premium, device_id)
    assert status == 201, doc
    licence = doc["licence"]
    assert licence["device_id"] == device_id
    assert licence["expires_at"] == int(clock()) + LICENCE_TTL_S
    assert sorted(licence["renditions"]) == ["aac_256", "flac"]  # the premium renditions
    verify_licence(
        canonical(licence), from_b64url(doc["signature"]), from_b64url(doc["signing_key"])
    )
    premium_keys = {k for k in track.clear_keys if "premium" in k}
    assert {k["key_id"] for k in licence["keys"]} == premium_keys
    for entry in licence["keys"]:
        wrapped = from_b64url(entry["wrapped"])
        assert len(wrapped) == DEVICE_WRAPPED_SIZE
        assert track.clear_keys[entry["key_id"]] not in wrapped  # never in the clear
        assert keys.unwrap(licence, entry["key_id"]) == track.clear_keys[entry["key_id"]]
        # Attacks: another device's private key, an edited expiry, another device id.
        with pytest.raises(KeyUnwrapError):
            other.unwrap(licence, entry["key_id"])
        with pytest.raises(KeyUnwrapError):
            keys.unwrap(licence, entry["key_id"], expires_at=licence["expires_at"] + 365 * DAY_S)
        with pytest.raises(KeyUnwrapError):
            keys.unwrap(licence, entry["key_id"], device_id="someone-else")


async def test_downloaded_segments_decrypt_with_the_unwrapped_key(
    dl: TestClient, premium: str, track: BuiltTrack, settings: Settings
) -> None:
    """End to end: the device fetches a rendition's playlist and segments from the licence's
    URLs, unwraps the key with its private key and decrypts (drm.decrypt_segment)."""
    keys, device_id = await _registered(dl, premium)
    _, doc = await grant(dl, premium, device_id)
    download = next(d for d in doc["downloads"] if d["rendition"] == "aac_256")
    response = await dl.get(path_of(settings, download["playlist_url"]))
    playlist = await response.text()
    assert response.status == 200, playlist
    segments = [line for line in playlist.splitlines() if line.endswith(".m4s")]
    assert len(segments) == len(track.record.renditions[0].segments)
    sequence = int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist).group(1))  # type: ignore[union-attr]
    key_lines = [line for line in playlist.splitlines() if line.startswith("#EXT-X-KEY")]
    assert key_lines, playlist
    checked = 0
    key_id = ""
    for line in playlist.splitlines():
        if line.startswith("#EXT-X-KEY"):
            key_id = re.search(r'URI="[^"]*keys/([^"]+)"', line).group(1)  # type: ignore[union-attr]
            iv_match = re.search(r"IV=0x([0-9a-fA-F]{32})", line)
        elif line.endswith(".m4s"):
            segment = await dl.get(path_of(settings, line, download["playlist_url"]))
            assert segment.status == 200
            body = await segment.read()
            index = int(re.search(r"seg_(\d+)", line).group(1))  # type: ignore[union-attr]
            iv = (
                bytes.fromhex(iv_match.group(1))
                if iv_match
                else (sequence + index).to_bytes(16, "big")
            )
            clear = decrypt_segment(body, keys.unwrap(doc["licence"], key_id), iv)
            assert clear == track.clear[f"aac_256/seg_{index:05d}.m4s"]
            checked += 1
    assert checked == len(segments)
    # The download token never opens a clear key, whatever the URL.
    key_url = re.search(r'URI="([^"]+)"', key_lines[0]).group(1)  # type: ignore[union-attr]
    response = await dl.get(path_of(settings, key_url, download["playlist_url"]))
    assert response.status == 403
    assert (await response.json())["error"] == "not_entitled"


async def test_unknown_and_other_accounts_devices_are_refused(
    dl: TestClient, premium: str, listener_token: Callable[..., str]
) -> None:
    _, device_id = await _registered(dl, premium)
    status, doc = await grant(dl, premium, "no-such-device")
    assert (status, doc["error"]) == (403, "device_unknown"), doc
    stranger = listener_token("premium", user="u2")
    status, doc = await grant(dl, stranger, device_id)
    assert (status, doc["error"]) == (403, "device_unknown"), doc
    response = await dl.delete(f"/v1/devices/{device_id}", headers=auth(premium))
    assert response.status == 204
    status, doc = await grant(dl, premium, device_id)
    assert (status, doc["error"]) == (403, "device_unknown"), doc


async def _renew(dl: TestClient, token: str, device_id: str, issued: dict[str, Any]) -> Any:
    response = await dl.post(
        f"/v1/devices/{device_id}/licences/{issued['licence']['licence_id']}/renew",
        json={"licence": issued["licence"], "signature": issued["signature"]},
        headers=auth(token),
    )
    return response.status, await response.json()


async def test_renewal_when_the_device_comes_online(
    dl: TestClient, premium: str, clock: ManualClock
) -> None:
    keys, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    status, same = await _renew(dl, premium, device_id, issued)
    assert (status, same["renewed"]) == (200, False)  # 30 days left: nothing to do
    assert same["licence"] == issued["licence"]
    clock.advance(3 * DAY_S)
    status, renewed = await _renew(dl, premium, device_id, issued)
    assert (status, renewed["renewed"]) == (200, True), renewed
    licence = renewed["licence"]
    assert licence["expires_at"] == int(clock()) + LICENCE_TTL_S
    key_id = licence["keys"][0]["key_id"]
    assert keys.unwrap(licence, key_id) == keys.unwrap(issued["licence"], key_id)
    assert "downloads" not in renewed  # the device holds the media


async def test_an_edited_expiry_is_refused(
    dl: TestClient, premium: str, clock: ManualClock
) -> None:
    _, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    edited = dict(issued, licence={**issued["licence"], "expires_at": 4_000_000_000})
    clock.advance(3 * DAY_S)
    status, doc = await _renew(dl, premium, device_id, edited)
    assert (status, doc["error"]) == (403, "licence_signature_invalid"), doc


async def test_an_expired_licence_is_not_renewed(
    dl: TestClient, premium: str, clock: ManualClock
) -> None:
    _, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    clock.advance(LICENCE_TTL_S)
    status, doc = await _renew(dl, premium, device_id, issued)
    assert (status, doc["error"]) == (403, "licence_expired"), doc
    status, _ = await grant(dl, premium, device_id)  # a new licence is the way back
    assert status == 201


async def test_revoked_by_the_listener_or_an_admin(
    dl: TestClient,
    premium: str,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    offline_store: SQLiteOfflineStore,
) -> None:
    _, device_id = await _registered(dl, premium)
    _, first = await grant(dl, premium, device_id)
    _, second = await grant(dl, premium, device_id)
    lid = first["licence"]["licence_id"]
    response = await dl.delete(f"/v1/devices/{device_id}/licences/{lid}", headers=auth(premium))
    assert (response.status, (await response.json())["state"]) == (200, "revoked")
    clock.advance(3 * DAY_S)
    status, doc = await _renew(dl, premium, device_id, first)
    assert (status, doc["error"]) == (403, "licence_revoked"), doc

    lid2 = second["licence"]["licence_id"]
    response = await dl.delete(f"/v1/admin/licences/{lid2}", headers=auth(premium))
    assert response.status == 401  # a listener token is no admin token
    ad_ops = issue_admin_token(edge_secrets.platform_key, "ads-1", 600, clock(), (ADS_SCOPE,))
    response = await dl.delete(f"/v1/admin/licences/{lid2}", headers=auth(ad_ops))
    assert response.status == 403  # an operator, but not one who manages licences
    admin = issue_admin_token(edge_secrets.platform_key, "ops-1", 600, clock())
    response = await dl.delete(f"/v1/admin/licences/{lid2}", headers=auth(admin))
    assert response.status == 200
    stored = offline_store.get_licence(lid2)
    assert stored is not None and stored.revoked_by == "admin:ops-1"
    status, doc = await _renew(dl, premium, device_id, second)
    assert (status, doc["error"]) == (403, "licence_revoked"), doc
    response = await dl.delete("/v1/admin/licences/nope", headers=auth(admin))
    assert response.status == 404


async def test_removing_a_device_revokes_its_licences(
    dl: TestClient, premium: str, offline_store: SQLiteOfflineStore
) -> None:
    _, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    response = await dl.delete(f"/v1/devices/{device_id}", headers=auth(premium))
    assert response.status == 204
    stored = offline_store.get_licence(issued["licence"]["licence_id"])
    assert stored is not None and stored.revoked_at is not None
    assert offline_store.devices_of("u1") == ()


async def test_another_devices_licence_is_not_renewed_through_this_one(
    dl: TestClient, premium: str, clock: ManualClock
) -> None:
    _, device_a = await _registered(dl, premium)
    _, device_b = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_a)
    clock.advance(3 * DAY_S)
    status, doc = await _renew(dl, premium, device_b, issued)
    assert (status, doc["error"]) == (403, "licence_not_yours"), doc


async def test_listing_licences_shows_their_state(
    dl: TestClient, premium: str, clock: ManualClock
) -> None:
    _, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    clock.advance(LICENCE_TTL_S + 1)
    response = await dl.get(f"/v1/devices/{device_id}/licences", headers=auth(premium))
    doc = await response.json()
    assert [(lic["licence_id"], lic["state"]) for lic in doc["licences"]] == [
        (issued["licence"]["licence_id"], "expired")
    ]


async def test_a_lapsed_subscription_is_not_renewed(
    dl: TestClient, premium: str, clock: ManualClock, listener_token: Callable[..., str]
) -> None:
    _, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    clock.advance(3 * DAY_S)
    status, doc = await _renew(dl, listener_token("free"), device_id, issued)
    assert (status, doc["error"]) == (403, "premium_required"), doc


async def test_grants_renewals_and_revocations_are_audited(
    dl: TestClient,
    premium: str,
    clock: ManualClock,
    edge_secrets: TokenSecrets,
    dl_audit_log: InMemoryAuditLog,
) -> None:
    _, device_id = await _registered(dl, premium)
    _, issued = await grant(dl, premium, device_id)
    lid = issued["licence"]["licence_id"]
    clock.advance(3 * DAY_S)
    status, _ = await _renew(dl, premium, device_id, issued)
    assert status == 200
    admin = issue_admin_token(edge_secrets.platform_key, "ops-1", 600, clock())
    response = await dl.delete(f"/v1/admin/licences/{lid}", headers=auth(admin))
    assert response.status == 200
    await dl.app[AUDIT].flush()

    events = [entry.event for entry in dl_audit_log.entries("edge.test.w0")]
    licence_events = [e for e in events if e.subject == f"licence:{lid}"]
    assert [(e.action, e.details.get("renewal"), e.actor) for e in licence_events] == [
        (AuditAction.LICENCE_GRANTED, False, "listener:u1"),
        (AuditAction.LICENCE_GRANTED, True, "listener:u1"),
        (AuditAction.LICENCE_REVOKED, None, "admin:ops-1"),
    ]
    granted = licence_events[0].details
    assert granted["device_id"] == device_id
    assert granted["key_ids"] == sorted(k["key_id"] for k in issued["licence"]["keys"])
    assert granted["expires_at"] == issued["licence"]["expires_at"]
    assert verify_log(dl_audit_log, derive_chain_key(edge_secrets.platform_key)).problems == ()
