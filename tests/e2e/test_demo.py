"""`streamer demo` end to end: it ingests its sample, serves it and prints working player URLs."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.conftest import free_port, streamer_env, streamer_process

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

_PLAYER_LINE = re.compile(r"^player \((free|premium) listener\): (\S+)$", re.MULTILINE)


def _fetch(url: str, token: str | None = None, body: object = None) -> tuple[int, str, bytes]:
    request = urllib.request.Request(
        url,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}"} if token else {},
    )
    if body is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers.get_content_type(), response.read()


def test_demo_serves_the_player_hls_js_and_a_session(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    data_dir = tmp_path / "data"
    log = tmp_path / "demo.log"
    args = ["--data-dir", str(data_dir), "demo", "--port", str(port)]
    with streamer_process(args, streamer_env(data_dir), log, base):
        urls = dict(_PLAYER_LINE.findall(log.read_text()))
        assert set(urls) == {"free", "premium"}, log.read_text()[-2000:]
        # nginx and its Lua module are installed (./dev setup): the demo serves through the tier.
        assert (data_dir / "nginx" / "nginx.pid").exists(), log.read_text()[-2000:]
        page = urlsplit(urls["premium"])
        assert f"{page.scheme}://{page.netloc}" == base and page.path == "/"
        query = parse_qs(page.query)
        track_id, token = query["track"][0], query["token"][0]

        status, kind, html = _fetch(urls["premium"])
        assert (status, kind) == (200, "text/html") and b"/static/hls.min.js" in html
        status, kind, script = _fetch(f"{base}/static/hls.min.js")
        assert (status, kind) == (200, "text/javascript") and len(script) > 100_000
        _, _, listed = _fetch(f"{base}/v1/tracks", token)
        assert track_id in [t["track_id"] for t in json.loads(listed)["tracks"]]
        device = {"codecs": ["mp4a.40.2", "opus", "fLaC"]}
        status, _, session = _fetch(
            f"{base}/v1/sessions", token, {"track_id": track_id, "device": device}
        )
        assert status == 201
        playlist_url = json.loads(session)["playlist_url"]
        status, kind, playlist = _fetch(playlist_url)
        assert (status, kind) == (200, "application/vnd.apple.mpegurl")
        assert b"flac/playlist.m3u8" in playlist  # a premium session
