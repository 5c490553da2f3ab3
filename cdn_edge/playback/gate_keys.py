"""The gate's key fetch: what the nginx gate (streamer_tier.lua, `serve_key`) asks the edge when
its dict lacks a content key, and how the edge knows the question is the gate's.

The gate serves /v1/s/{token}/keys/{key id} itself (docs/decisions/0010-keys-in-the-gate.md).
On a miss it sends one internal subrequest to GET /v1/gate/s/{token}/keys/{key id} with the
credential below; the edge verifies the token as for its own key route, unwraps the key, and
answers with the 16 bytes and, in headers, the key's tier and the session's and listener's key
budgets (`cdn_edge.policy.key_budget`). The edge spends no budget here: the gate does, once per
key it hands out.

The credential is derived from the newest playback key, which both sides hold already (the gate
in its 0600 settings file): a client that reaches the edge's route, through nginx's catch-all
location or the edge's own port, cannot fetch keys past the budgets without it.
"""

from __future__ import annotations

import hashlib
import hmac

from cdn_edge.policy.key_budget import KeyBudget

CREDENTIAL_HEADER = "Streamer-Gate"
KEY_TIER_HEADER = "Streamer-Key-Tier"
SESSION_BUDGET_HEADER = "Streamer-Key-Budget"
LISTENER_BUDGET_HEADER = "Streamer-Listener-Budget"
_CREDENTIAL_LABEL = b"streamer nginx gate key fetch v1"


def gate_credential(playback_key: bytes) -> str:
    """The credential (64 hex digits) of the gate that verifies tokens with `playback_key`."""
    return hmac.new(playback_key, _CREDENTIAL_LABEL, hashlib.sha256).hexdigest()


def gate_credentials(playback_keys: bytes | tuple[bytes, ...]) -> tuple[str, ...]:
    """The credentials the edge accepts: one per playback key it verifies with (rotation)."""
    keys = playback_keys if isinstance(playback_keys, tuple) else (playback_keys,)
    return tuple(gate_credential(key) for key in keys)


def is_gate(given: str, credentials: tuple[str, ...]) -> bool:
    """Whether `given` is one of `credentials`; compared without an early exit."""
    found = False
    for credential in credentials:
        found = hmac.compare_digest(given.encode(), credential.encode()) or found
    return found


def render_budget(budget: KeyBudget) -> str:
    """A budget as the gate reads it: "capacity refill_per_s" (repr keeps every digit)."""
    return f"{budget.capacity} {budget.refill_per_s!r}"
