"""Gauges whose value is read from a function, in one process or shared by workers.

In one process a gauge reads its function at each scrape (`Gauge.set_function`). With
`--workers N`, every worker writes its series to files the scraped worker exports for all
(cdn_edge.metrics); a function stays in its own process's registry, which that export never
reads, so there the value must be set: `refresh()` sets every watched gauge from its reader,
and the edge calls it before each export and every second.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

# prometheus_client reads it when first imported: set before worker processes start.
MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"

Reader = Callable[[], float]


def shared_by_workers() -> bool:
    """Whether this process's series go to the files all of the edge's workers share."""
    return bool(os.environ.get(MULTIPROCESS_DIR_ENV))


class GaugeReaders:
    def __init__(self) -> None:
        self._watched: list[tuple[Any, Reader]] = []

    def watch(self, gauge: Any, read: Reader) -> None:
        """Keep `gauge` (a Gauge, or one labelled child of it) at `read()`."""
        if not shared_by_workers():
            gauge.set_function(read)
            return
        self._watched.append((gauge, read))
        self._set(gauge, read)

    def refresh(self) -> None:
        for gauge, read in self._watched:
            self._set(gauge, read)

    @staticmethod
    def _set(gauge: Any, read: Reader) -> None:
        try:
            gauge.set(float(read()))
        except Exception:  # a broken reader must not break the metrics page
            logger.exception("reading gauge %s failed", getattr(gauge, "_name", gauge))
