"""Threshold files reloaded on SIGHUP or when one changes, as Alertmanager's reloader does it: build everything
that can fail first (the files read and validated), then swap it all in at once, between two batches of the
rules loop. A refused reload leaves the rules in force and says why in the log and in /healthz.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.domain.pacing import nap
from monitor.metrics import Metrics
from monitor.thresholds import ThresholdError, ThresholdSet, load

log = logging.getLogger("riverwatch.service")

WATCH_EVERY_S = 2.0


class Reloader:
    def __init__(
        self,
        paths: Sequence[Path],
        default_class: str,
        evaluator: Evaluator,
        metrics: Metrics,
        swapped: Callable[[ThresholdSet], None] = lambda _: None,
    ) -> None:
        self.paths = list(paths)
        self.default_class = default_class
        self.evaluator = evaluator
        self.metrics = metrics
        self.swapped = swapped  # told the new thresholds, for what else holds the stations (incidents)
        self.requested = asyncio.Event()  # looked at by the rules loop between batches
        self.wake: asyncio.Event | None = None  # the rules loop's, so that a request is seen at once

    def request(self) -> None:
        """SIGHUP: reload at the next pause between batches."""
        self.requested.set()
        if self.wake is not None:
            self.wake.set()

    def apply(self) -> list[AlertEvent]:
        """Build, then swap; the resolves of alerts whose rule is gone, or nothing if the files were refused."""
        try:
            thresholds = load(self.paths)
        except ThresholdError as e:
            log.error(
                "thresholds not reloaded, the files have %d problem(s); the rules in force stay:\n%s",
                len(e.problems),
                e,
            )
            first = e.problems[0] if e.problems else e
            self.metrics.health.degrade("thresholds", f"reload refused: {first} (+{len(e.problems) - 1} more)")
            return []
        events = self.evaluator.reload(thresholds, self.default_class)
        self.swapped(thresholds)
        self.metrics.health.ok("thresholds")
        self.metrics.reloads.inc()
        return events

    async def watch(self, stop: asyncio.Event) -> None:
        """Reload when a threshold file changes (checked every 2 s), as on SIGHUP."""

        def stamp() -> tuple[float, ...]:
            return tuple(p.stat().st_mtime if p.exists() else 0.0 for p in self.paths)

        seen = stamp()
        while not stop.is_set():
            await nap(None, stop, WATCH_EVERY_S)
            now = stamp()
            if now != seen:
                seen = now
                log.info("threshold files changed; reloading")
                self.request()
