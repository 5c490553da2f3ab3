"""Writes session_tokens.json: `python -m tests.vectors.generate_session_tokens`.

The vectors are committed and checked as they are; run this only to add cases, then review the
diff. Every secret here is a TEST-ONLY value, public by being in git; never configure it.
"""

from __future__ import annotations

import base64
import hmac
import json
from pathlib import Path

from drm import sign_token

OUT = Path(__file__).with_name("session_tokens.json")
# TEST-ONLY secrets: playback keys (the HMAC keys nginx holds), newest first.
SECRETS = (b"test-only-playback-key-0-NOT-SECRET!", b"test-only-playback-key-1-NOT-SECRET!")
OTHER_SECRET = b"test-only-key-nobody-configured-NOT-SECRET"
NOW = 1_700_000_000  # for the Python check; nginx checks against its real clock
VALID_EXP = 4_102_444_800  # 2100-01-01: valid for both
EXPIRED_EXP = 1_600_000_000  # 2020-09-13: expired for both

FREE: dict[str, str | int] = {
    "t": "p",
    "sid": "sess-free-1",
    "trk": "USRC17607839",
    "ver": "0123456789abcdef",
    "sub": "alice",
    "tier": "free",
    "var": "aac_96,aac_160",
    "exp": VALID_EXP,
    "reg": "SE",
}
PREMIUM: dict[str, str | int] = {
    **FREE,
    "sid": "sess-premium-1",
    "sub": "bob",
    "tier": "premium",
    "var": "aac_96,aac_160,aac_256,flac",
}
OBJECTS = {  # the fake published layout under objects_root; sizes of deterministic bytes
    "tracks/USRC17607839/0123456789abcdef/aac_160/init.mp4": 700,
    "tracks/USRC17607839/0123456789abcdef/aac_160/seg_00000.m4s": 120_000,
    "tracks/USRC17607839/0123456789abcdef/aac_160/seg_00001.m4s": 118_321,
    "tracks/USRC17607839/0123456789abcdef/aac_256/seg_00000.m4s": 190_000,
    "tracks/USRC17607839/0123456789abcdef/flac/seg_00000.m4s": 600_000,
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _raw(payload: bytes, key: bytes) -> str:
    """A token over arbitrary payload bytes, correctly signed (for malformed claims)."""
    part = _b64(payload)
    return part + "." + _b64(hmac.digest(key, part.encode(), "sha256"))


def main() -> None:
    free = sign_token(FREE, SECRETS[0])
    premium = sign_token(PREMIUM, SECRETS[0])
    payload, signature = free.split(".")
    forged_claims = json.dumps(
        {**FREE, "tier": "premium", "var": PREMIUM["var"]}, sort_keys=True, separators=(",", ":")
    ).encode()
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    seg = "aac_160/seg_00001.m4s"
    cases = [
        ("valid_init", f"/v1/s/{free}/aac_160/init.mp4", 200, 200, ""),
        ("valid_segment", f"/v1/s/{free}/{seg}", 200, 200, ""),
        ("valid_with_query", f"/v1/s/{free}/{seg}?CMCD=bl%3D5000%2Cbr%3D160", 200, 200, ""),
        ("valid_premium_flac", f"/v1/s/{premium}/flac/seg_00000.m4s", 200, 200, ""),
        ("missing_file", f"/v1/s/{free}/aac_160/seg_00099.m4s", 200, 404, "not_found"),
        (
            "expired",
            f"/v1/s/{sign_token({**FREE, 'exp': EXPIRED_EXP}, SECRETS[0])}/{seg}",
            401,
            401,
            "token_expired",
        ),
        (
            "tampered_payload",
            f"/v1/s/{_b64(forged_claims)}.{signature}/aac_256/seg_00000.m4s",
            401,
            401,
            "token_invalid",
        ),
        ("tampered_signature", f"/v1/s/{payload}.{flipped}/{seg}", 401, 401, "token_invalid"),
        (
            "wrong_kind_key",
            f"/v1/s/{sign_token({**FREE, 't': 'k', 'kid': 'k1'}, SECRETS[0])}/{seg}",
            403,
            403,
            "token_mismatch",
        ),
        (
            "wrong_kind_segment",
            f"/v1/s/{sign_token({**FREE, 't': 'g'}, SECRETS[0])}/{seg}",
            403,
            403,
            "token_mismatch",
        ),
        (
            "expired_wrong_kind",
            f"/v1/s/{sign_token({**FREE, 't': 'k', 'exp': EXPIRED_EXP}, SECRETS[0])}/{seg}",
            401,
            401,
            "token_expired",
        ),
        ("rendition_not_in_var", f"/v1/s/{free}/aac_256/seg_00000.m4s", 403, 403, "not_entitled"),
        (
            "signed_with_other_secret",
            f"/v1/s/{sign_token(FREE, OTHER_SECRET)}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        ("second_rotated_secret", f"/v1/s/{sign_token(FREE, SECRETS[1])}/{seg}", 200, 200, ""),
        ("malformed_no_dot", f"/v1/s/{payload}/{seg}", 401, 401, "token_invalid"),
        ("malformed_dash", f"/v1/s/-/{seg}", 401, 401, "token_invalid"),
        (
            "malformed_short_signature",
            f"/v1/s/{payload}.{signature[:42]}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "malformed_payload_not_json",
            f"/v1/s/{_raw(b'not json', SECRETS[0])}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "malformed_no_exp",
            f"/v1/s/{_raw(json.dumps({**FREE, 'exp': 'soon'}).encode(), SECRETS[0])}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "malformed_bool_claim",
            f"/v1/s/{_raw(json.dumps({**FREE, 'reg': True}).encode(), SECRETS[0])}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "claims_tier_unknown",
            f"/v1/s/{sign_token({**FREE, 'tier': 'gold'}, SECRETS[0])}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "claims_missing_sid",
            f"/v1/s/{sign_token({k: v for k, v in FREE.items() if k != 'sid'}, SECRETS[0])}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "claims_track_traversal",
            f"/v1/s/{sign_token({**FREE, 'trk': '..'}, SECRETS[0])}/{seg}",
            401,
            401,
            "token_invalid",
        ),
        (
            "traversal_encoded_slash",
            f"/v1/s/{free}/..%2f../seg_00001.m4s",
            400,
            400,
            "malformed_name",
        ),
        (
            "traversal_encoded_slash_upper",
            f"/v1/s/{free}/aac_160%2F..%2F/seg_00001.m4s",
            400,
            400,
            "malformed_name",
        ),
        (
            "traversal_encoded_dots",
            f"/v1/s/{free}/%2e%2e/seg_00001.m4s",
            400,
            400,
            "malformed_name",
        ),
        (
            "traversal_dot_segment",
            f"/v1/s/{free}/aac_160/../aac_160/seg_00001.m4s",
            400,
            400,
            "malformed_name",
        ),
        ("traversal_current_dir", f"/v1/s/{free}/./seg_00001.m4s", 400, 400, "malformed_name"),
        ("double_slash_before_rendition", f"/v1/s/{free}//{seg}", 400, 400, "malformed_name"),
        (
            "double_slash_before_file",
            f"/v1/s/{free}/aac_160//seg_00001.m4s",
            400,
            400,
            "malformed_name",
        ),
        ("empty_token", f"/v1/s//{seg}", 400, 400, "malformed_name"),
        ("hidden_rendition", f"/v1/s/{free}/.aac_160/seg_00001.m4s", 400, 400, "malformed_name"),
        ("encoded_token_char", f"/v1/s/%41{free[1:]}/{seg}", 400, 400, "malformed_name"),
        ("short_segment_number", f"/v1/s/{free}/aac_160/seg_1.m4s", 400, 400, "malformed_name"),
        ("backslash", f"/v1/s/{free}/aac_160\\seg_00001.m4s", 400, 400, "malformed_name"),
    ]
    doc = {
        "comment": "TEST-ONLY secrets and tokens for the nginx tier's session-token gate; "
        "generated by generate_session_tokens.py. 'gate' is the decision of "
        "cdn_edge.nginx_tier.segment_access (and streamer_tier.lua); 'status' is what nginx "
        "answers over 'objects'. Python checks at 'now'; nginx at its real clock.",
        "secrets_hex_test_only": [s.hex() for s in SECRETS],
        "now": NOW,
        "objects": OBJECTS,
        "claims": {"free": FREE, "premium": PREMIUM},
        "tokens": {"free": free, "premium": premium},
        "cases": [
            {"name": n, "path": p, "gate": g, "status": s, "error": e} for n, p, g, s, e in cases
        ],
    }
    OUT.write_text(json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
