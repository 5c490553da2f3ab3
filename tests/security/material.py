"""What an attacker must not get, and a detector that finds it in any response body.

Every content key, every stored object (init sections and encrypted segments), every secret
file and the canaries are indexed by their 16-byte windows, so a body holding any 16
consecutive bytes of one of them is caught wherever they sit in it (a whole object, a range
of one, a key inside JSON). Media playlists are caught by the key URIs they name.

A `Principal` is whom an attempt speaks for: a session (its track, tier and offered
renditions) or nobody. A leak is a 2xx response carrying material the principal is not
entitled to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

WINDOW = 16  # a content key is exactly one window; objects and files are many
TIER_RANK = {"free": 0, "premium": 1}


@dataclass(frozen=True)
class Principal:
    """Whom a request speaks for; `track` is None for nobody (forged, expired, other kinds)."""

    name: str
    track: str | None = None  # "A" or "B"
    tier: str = "free"
    variants: tuple[str, ...] = ()

    def may_have(self, item: str) -> bool:
        """Whether material named `item` ("A:key:<id>:<tier>", "A:obj:<rendition>/<file>")
        is this principal's to have."""
        if self.track is None:
            return False
        track, kind, rest = item.split(":", 2)
        if track != self.track:
            return False
        if kind == "key":
            return TIER_RANK[rest.rsplit(":", 1)[1]] <= TIER_RANK[self.tier]
        if kind == "obj":
            return rest.split("/", 1)[0] in self.variants
        return False  # secrets and canaries belong to nobody


NOBODY = Principal("nobody")


class Material:
    """The index of everything secret, and the detector over it."""

    def __init__(self) -> None:
        self._windows: dict[bytes, set[str]] = {}
        self._markers: dict[bytes, str] = {}

    def add(self, name: str, data: bytes) -> None:
        if len(data) < WINDOW:
            raise ValueError(f"{name} is {len(data)} bytes; material needs at least {WINDOW}")
        for at in range(len(data) - WINDOW + 1):
            self._windows.setdefault(data[at : at + WINDOW], set()).add(name)

    def add_marker(self, name: str, text: str) -> None:
        """A string that names material (a key URI in a playlist) rather than holding it."""
        self._markers[text.encode()] = name

    def found(self, body: bytes) -> set[str]:
        """The names of every piece of material in `body`."""
        names: set[str] = set()
        windows = self._windows
        for at in range(len(body) - WINDOW + 1):
            hit = windows.get(body[at : at + WINDOW])
            if hit:
                names |= hit
        for marker, name in self._markers.items():
            if marker in body:
                names.add(name)
        return names

    def leaked(self, principal: Principal, body: bytes) -> set[str]:
        """Material in `body` that `principal` is not entitled to."""
        return {name for name in self.found(body) if not principal.may_have(name)}

    def __len__(self) -> int:
        return len({name for names in self._windows.values() for name in names})


def item_names(track: str, keys: dict[str, str], objects: Iterable[str]) -> list[str]:
    """Material names of a track's keys (id -> tier) and objects ("rendition/file")."""
    return [f"{track}:key:{kid}:{tier}" for kid, tier in keys.items()] + [
        f"{track}:obj:{key}" for key in objects
    ]
