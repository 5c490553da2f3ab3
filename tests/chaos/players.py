"""Players as threads against a running edge over HTTP: each opens a session, fetches its
segments one after another and reports what it played, and keeps every event the edge did not
acknowledge (202) to send again, as a real player does. What they were told is what the
scenarios count against the store afterwards."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

from cdn_edge.listener_auth import issue_listener_token
from streamer.token_secrets import TokenSecrets

REQUEST_TIMEOUT_S = 5.0
SEGMENT_S = 6.0  # the published tracks' segment length: a heartbeat's step of position
_MEDIA_URI = re.compile(r"^([^#\s][^\s]*playlist\.m3u8)$", re.MULTILINE)
_SEGMENT_URI = re.compile(r"^([^#\s][^\s]*\.m4s)$", re.MULTILINE)


def request(url: str, token: str | None = None, body: object = None) -> tuple[int, bytes]:
    """One HTTP request; the status (0 when the connection failed) and the body."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, OSError):
        return 0, b""


@dataclass
class Player:
    """One listener playing one track from the start, one segment and one event per step."""

    base: str
    name: str
    track_id: str
    listener_token: str
    session_id: str = ""
    session_token: str = ""
    segments: list[str] = field(default_factory=list)
    step_index: int = 0
    start_ms: int = 0
    pending: list[dict[str, Any]] = field(default_factory=list)  # not acknowledged yet
    acked: set[str] = field(default_factory=set)  # event ids answered 202
    segments_ok: int = 0
    segments_failed: int = 0
    posts_failed: int = 0

    def open(self) -> bool:
        """Open the session and read its first media playlist; False if the edge is down."""
        status, body = request(
            f"{self.base}/v1/sessions",
            self.listener_token,
            {"track_id": self.track_id, "device": {"codecs": ["mp4a.40.2"]}},
        )
        if status != 201:
            return False
        doc = json.loads(body)
        main_url = doc["playlist_url"]
        status, main = request(main_url)
        found = _MEDIA_URI.search(main.decode()) if status == 200 else None
        if found is None:
            return False
        media_url = urljoin(main_url, found.group(1))
        status, media = request(media_url)
        if status != 200:
            return False
        self.session_id = doc["session_id"]
        self.session_token = urlsplit(main_url).path.split("/")[3]
        self.segments = [urljoin(media_url, uri) for uri in _SEGMENT_URI.findall(media.decode())]
        self.start_ms = int(time.time() * 1000)
        return True

    @property
    def finished(self) -> bool:
        return bool(self.segments) and self.step_index >= len(self.segments) and not self.pending

    def step(self) -> None:
        """Fetch the next segment, report the position reached, send what is unacknowledged."""
        if not self.session_id and not self.open():
            return
        if self.step_index < len(self.segments):
            status, _ = request(self.segments[self.step_index])
            if status != 200:
                self.segments_failed += 1
                return  # a player retries the same segment
            self.segments_ok += 1
            position = self.step_index * SEGMENT_S
            self.pending.append(self._event(self.step_index, position))
            self.step_index += 1
        if self.pending:
            self.post()

    def post(self) -> None:
        status, _ = request(
            f"{self.base}/v1/sessions/{self.session_id}/events",
            self.session_token,
            {"events": self.pending},
        )
        if status == 202:
            self.acked.update(e["event_id"] for e in self.pending)
            self.pending = []
        else:
            self.posts_failed += 1

    def _event(self, seq: int, position: float) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "event_id": f"{self.session_id}-{seq}",
            "type": "play" if seq == 0 else "heartbeat",
            "ts_ms": self.start_ms + int(position * 1000),
            "position_s": position,
            "seq": seq,
        }
        return doc


class Load:
    """Players in threads, each stepping every `interval_s`, new ones replacing finished ones
    until `stop()`; then every player finishes what it has pending (or gives up)."""

    def __init__(
        self,
        base: str,
        secrets: TokenSecrets,
        track_id: str,
        *,
        players: int = 4,
        interval_s: float = 0.1,
    ) -> None:
        self.base = base
        self.secrets = secrets
        self.track_id = track_id
        self.interval_s = interval_s
        self.all: list[Player] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(i,), name=f"player-{i}", daemon=True)
            for i in range(players)
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _new_player(self, index: int) -> Player:
        name = f"listener-{index}-{len(self.all)}"
        token = issue_listener_token(
            self.secrets.platform_key, name, "free", "SE", 3600, time.time()
        )
        player = Player(self.base, name, self.track_id, token)
        with self._lock:
            self.all.append(player)
        return player

    def _run(self, index: int) -> None:
        player = self._new_player(index)
        while not self._stop.is_set():
            if player.finished:
                player = self._new_player(index)
            player.step()
            self._stop.wait(self.interval_s)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def flush(self, deadline_s: float = 30.0) -> None:
        """Send every player's unacknowledged events until acknowledged (or the deadline)."""
        deadline = time.monotonic() + deadline_s
        for player in self.all:
            while player.session_id and player.pending and time.monotonic() < deadline:
                player.post()
                if player.pending:
                    time.sleep(0.2)

    @property
    def acked(self) -> int:
        return sum(len(p.acked) for p in self.all)

    @property
    def segments_ok(self) -> int:
        return sum(p.segments_ok for p in self.all)
