"""Pure policies of the edge: functions and small state machines over dataclasses, with no I/O.

`negotiation` (which renditions a session gets), `key_budget` (how many keys a session and a
listener may fetch), `rate_limit` (token buckets on an injected clock), `names` (what a URL's
names may look like).
"""

__all__ = ["key_budget", "names", "negotiation", "rate_limit"]
