"""One progress line on stderr while a phase runs; nothing at all when stderr is not a TTY."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 24
REDRAW_S = 0.2


class ProgressLine:
    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stderr
        self.live = self.out.isatty()
        self._last = 0.0
        self._width = 0

    def show(
        self, label: str, done_s: float, total_s: float, ok: float, errors: float, active: float
    ) -> None:
        now = time.monotonic()
        if not self.live or now - self._last < REDRAW_S:
            return
        self._last = now
        rate = ok / done_s if done_s > 0 else 0.0
        listeners = f" {active:7.0f} listeners" if active else ""
        if total_s <= 0:  # open-ended (setup): a count, no bar
            where = f"{done_s:5.0f} s"
        elif done_s < 0:  # client processes still starting
            where = f"[{'.' * BAR_WIDTH}] starting"
        else:
            filled = int(BAR_WIDTH * min(1.0, done_s / total_s))
            where = f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {done_s:5.0f}/{total_s:.0f} s"
        line = f"\r{label[:34]:34} {where} {ok:9.0f} ok {rate:8.0f}/s {errors:6.0f} err{listeners}"
        self._width = max(self._width, len(line))
        self.out.write(line)
        self.out.flush()

    def clear(self) -> None:
        if self.live and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()
            self._width = 0
