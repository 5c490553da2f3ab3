"""The player page and hls.js, read from disk once and served from memory."""

from __future__ import annotations

from pathlib import Path

from cdn_edge.blocking import BlockingRunner
from cdn_edge.errors import StaticNotInstalled

HLS_JS = "hls.min.js"
PLAYER_PAGE = Path(__file__).with_name("player.html")


def default_hls_dir() -> Path:
    """Where `./dev setup` installs hls.js with npm: <repo>/web/node_modules/hls.js/dist."""
    return Path(__file__).resolve().parents[2] / "web" / "node_modules" / "hls.js" / "dist"


class StaticFiles:
    """hls.js from `hls_dir` and the player page, cached after the first read."""

    def __init__(self, hls_dir: Path, run_blocking: BlockingRunner) -> None:
        self.hls_dir = hls_dir
        self._run = run_blocking
        self._hls_js: bytes | None = None
        self._player: bytes | None = None

    async def hls_js(self) -> bytes:
        """Raises StaticNotInstalled until hls.js is installed (checked again on each miss)."""
        if self._hls_js is None:
            path = self.hls_dir / HLS_JS
            try:
                self._hls_js = await self._run(path.read_bytes)
            except FileNotFoundError as exc:
                raise StaticNotInstalled(
                    f"hls.js is not installed at {path}; run ./dev setup "
                    "(npm installs it into web/node_modules)"
                ) from exc
        return self._hls_js

    async def player_page(self) -> bytes:
        if self._player is None:
            self._player = await self._run(PLAYER_PAGE.read_bytes)
        return self._player
