"""hls.js seeks forward and back across a free session's ad breaks and plays on from each.

A 3 min track is served with ads on, a break slot every 30 s and no campaign, so every break
answers 204 (no ad) and hls.js drops it from its schedule. The page buffers at most 15 s
ahead (`?buffer=15`), as on a slow network, so each seek crosses breaks hls.js has not asked
about yet. Seeking forward to 100 s crosses three of them (X-RESTRICT JUMP: hls.js goes to the
first and falls back to the primary there), seeking back to 40 s re-arms the breaks it passed
(hls.js resets their errors), then forward again to 160 s, with a level switch every 5 s.
hls.js 1.7.4 alone stalls for good at the first two (docs/decisions/0011, amendment "seeking
across breaks"); the player page keeps its schedule in step with the element.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest

from tests.e2e.conftest import free_port, run_streamer, streamer_env, streamer_process
from tests.e2e.test_browser import play_in_chromium, require_browser_tools
from tests.masters import make_master

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(240)]

TRACK_ID = "ADS-SEEK"
MASTER_S = 180.0
SLOT_S = 30  # breaks at 0 (pre-roll), 30, 60, ... 150 s
BUFFER_S = 15  # the page's ?buffer=: breaks more than 15 s ahead are not asked for yet
SEEK_TO = (100.0, 40.0, 160.0)  # forward across 3 breaks, back across 2, forward across 4
PLAY_AFTER_SEEK_S = 8.0
TIMEOUT_S = 40.0  # per wait


@dataclass(frozen=True)
class Server:
    base_url: str
    token: str  # a free listener's


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    require_browser_tools()
    root = tmp_path_factory.mktemp("ads-seek")
    env = streamer_env(root / "data", ads="true", ad_slot_s=str(SLOT_S))
    master = make_master(root / "master.flac", seconds=MASTER_S)
    run_streamer(["ingest", str(master), "--track-id", TRACK_ID], env, timeout_s=120)
    token = run_streamer(["token", "--tier", "free", "--user", "ads-seek"], env, 30).strip()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port), "--segments", "nginx"]
    with streamer_process(serve, env, root / "serve.log", base_url):
        yield Server(base_url, token)


def test_hls_js_seeks_forward_and_back_across_breaks_without_an_ad(server: Server) -> None:
    params = {
        "track": TRACK_ID,
        "token": server.token,
        "codecs": "opus",
        "muted": "1",
        "buffer": str(BUFFER_S),
    }
    report = play_in_chromium(
        [{"name": "free", "url": f"{server.base_url}/?{urlencode(params)}"}],
        min_seconds=6.0,
        timeout_s=TIMEOUT_S,
        run_timeout_s=2 * TIMEOUT_S * (len(SEEK_TO) + 1) + 60,
        exercise={
            "switchEverySeconds": 5.0,
            "seekTo": list(SEEK_TO),
            "playAfterSeekSeconds": PLAY_AFTER_SEEK_S,
        },
    )
    (result,) = report["results"]
    summary = json.dumps(report, indent=1)[:8000]
    state = result["state"]
    assert result["outcome"] == "played", summary  # every seek played on, none stalled
    assert state["fatalError"] is None, summary
    for position, reached in zip(SEEK_TO, result["exercise"]["seeks"], strict=True):
        assert reached >= position + PLAY_AFTER_SEEK_S - 0.5, summary
    assert [e for e in state["errors"] if not e.endswith(" aborted")] == [], summary
    assert result["failed"] == [] and result["pageErrors"] == [], summary
    ads = state["ads"]
    # No campaign: every break asked about answered 204, none played. The breaks up to 160 s
    # were asked about (the pre-roll and five more), those re-armed by the seek back again.
    assert ads["served"] == 0 and ads["started"] == [], summary
    assert ads["empty"] >= 6 and result["requests"]["adLists"] >= 6, summary
    assert result["requests"]["adSegments"] == 0, summary
