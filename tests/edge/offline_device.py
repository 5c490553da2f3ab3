"""A device for the offline download tests, as a player app holds it: its private key stays."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aiohttp.test_utils import TestClient

from cdn_edge.playback.offline_licences import b64url, from_b64url
from drm import KeyBinding, new_device_keypair, unwrap_on_device


@dataclass
class DeviceKeys:
    private: bytes
    public: bytes

    @property
    def public_b64(self) -> str:
        return b64url(self.public)

    def unwrap(self, licence: dict[str, Any], key_id: str, **edits: Any) -> bytes:
        """The content key `key_id` of a licence document, as the device opens it; `edits`
        change the binding (an edited expiry, another device id)."""
        fields = {
            "licence_id": licence["licence_id"],
            "device_id": licence["device_id"],
            "track_id": licence["track_id"],
            "version": licence["version"],
            "key_id": key_id,
            "expires_at": licence["expires_at"],
        }
        fields.update(edits)
        wrapped = next(k["wrapped"] for k in licence["keys"] if k["key_id"] == key_id)
        return unwrap_on_device(from_b64url(wrapped), self.private, KeyBinding(**fields))


def new_device() -> DeviceKeys:
    private, public = new_device_keypair()
    return DeviceKeys(private, public)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client: TestClient, token: str, keys: DeviceKeys) -> tuple[int, Any]:
    response = await client.post(
        "/v1/devices", json={"public_key": keys.public_b64, "name": "phone"}, headers=auth(token)
    )
    return response.status, await response.json()


async def grant(
    client: TestClient, token: str, device_id: str, track_id: str = "trk1"
) -> tuple[int, Any]:
    response = await client.post(
        f"/v1/devices/{device_id}/licences", json={"track_id": track_id}, headers=auth(token)
    )
    return response.status, await response.json()
