"""The rules' journal consumer: every journaled reading evaluated once, in journal order, and its transitions
through the alert path; between batches, the no-data clock, the repeats and a requested reload.

A batch's notices stay in the pipeline until all of them are through the path; a ledger, outbox or journal
error (disk full) retries the persisting where it stopped, never the evaluation, so alert state moves once
per reading and no transition is lost or doubled. The rules cursor moves after that.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.alerts.ledger import Ledger
from monitor.domain.pacing import Backoff, nap
from monitor.ingest.clock import ClockFault
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.notify.pipeline import Pipeline, due_repeats
from monitor.service.reload import Reloader
from monitor.store.lineprotocol import alert_line, screening_line

log = logging.getLogger("riverwatch.service")

BATCH = 5000  # readings per evaluation


class Evaluation:
    def __init__(
        self,
        evaluator: Evaluator,
        journal: Journal,
        ledger: Ledger,
        pipeline: Pipeline,
        reloader: Reloader,
        metrics: Metrics,
        *,
        repeat_interval_s: float,
        wake: asyncio.Event,
        persisted: Callable[[], None] = lambda: None,
        on_alert: Callable[[AlertEvent], None] | None = None,
        batch: int = BATCH,
    ) -> None:
        self.evaluator = evaluator
        self.journal = journal
        self.ledger = ledger
        self.pipeline = pipeline
        self.reloader = reloader
        self.metrics = metrics
        self.repeat_interval_s = repeat_interval_s
        self.wake = wake  # set when readings are journaled
        self.persisted = persisted  # called when alert points and outbox rows are committed
        self.on_alert = on_alert
        self.batch = batch
        self.stations_seen: set[str] = set()
        self.done = 0  # highest journal seq whose transitions are persisted
        self.stream_ns = 0  # the newest reading time evaluated: the flap guard's calm clock
        self._seq: int | None = None  # the journal seq of the batch being persisted
        self._points: list[str] = []  # alert points not yet journaled
        self._last_tick = 0.0
        self._last_repeat = time.monotonic()
        self._clock_faults: list[ClockFault] = []  # refused by ingest as dated in the future, not yet evaluated

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop` is set and every journaled reading is evaluated."""
        backoff = Backoff(first=0.5, cap=10.0)
        while True:
            try:
                if not await self.step(stop):
                    return
                backoff.reset()
            except (JournalError, sqlite3.Error) as e:
                self.metrics.health.fail("journal", str(e))
                delay = backoff.step()
                log.error("rules: %s; retrying in %.1f s", e, delay)
                if stop.is_set():
                    return
                await nap(None, stop, delay)

    async def step(self, stop: asyncio.Event) -> bool:
        """One unit of work (a batch, a tick, repeats or a reload), persisted; False when stopped and caught up.

        Raises JournalError or sqlite3.Error with the work kept: the next call resumes persisting it.
        """
        if self._seq is None:
            seq = await self._next(stop)
            if seq is None:
                return False
            self._seq = seq
        for n in await asyncio.to_thread(self.pipeline.drain):
            if n.repeat:
                continue
            self._points.append(alert_line(n.event, n.title))
            self.metrics.alerts.labels(n.event.state).inc()
            if self.on_alert is not None:
                self.on_alert(n.event)
        if self._points:
            await asyncio.to_thread(self.journal.append_alert_lines, self._points)
            self._points = []
            self.persisted()
        if self._seq > self.done:
            await asyncio.to_thread(self.journal.advance, "rules", self._seq)
            self.done = self._seq
        self._seq = None
        return True

    def clock_fault(self, fault: ClockFault) -> None:
        """Ingest's callback for a reading refused as future_timestamp: its sensor alert comes at the next step."""
        self._clock_faults.append(fault)
        self.wake.set()

    async def _next(self, stop: asyncio.Event) -> int | None:
        """Feed the pipeline the next work; the journal seq it completes (0: none), None when caught up."""
        if self.reloader.requested.is_set():
            self.reloader.requested.clear()
            self.pipeline.feed(self.reloader.apply())
            return 0
        if self._clock_faults:
            faults, self._clock_faults = self._clock_faults, []
            self.pipeline.feed([e for f in faults for e in self.evaluator.clock_fault(*f)])
            return 0
        now = time.monotonic()
        if now - self._last_tick >= 1.0:
            self._last_tick = now
            ticked = self.evaluator.tick()
            if ticked:
                self.pipeline.feed(ticked)
                return 0
        if now - self._last_repeat >= min(60.0, self.repeat_interval_s / 4):
            self._last_repeat = now
            active = await asyncio.to_thread(self.ledger.alerts, True)
            due = due_repeats(active, time.time_ns(), self.repeat_interval_s, self.evaluator.rules.limit)
            if due:
                self.pipeline.feed_repeats(due)
                return 0
        readings, last = await asyncio.to_thread(self.journal.take, "rules", self.batch, self.done)
        if not readings:
            if stop.is_set():
                return None
            await nap(self.wake, stop, 1.0)
            return 0
        self.stations_seen.update(r.station for r in readings)
        events = self.evaluator.process(readings)
        self._points += [screening_line(*s) for s in self.evaluator.rules.suspects]
        self.stream_ns = max(self.stream_ns, max(r.ts_ns for r in readings))
        self.pipeline.feed(events, self.stream_ns, evaluated=self.evaluator.evaluated())
        self.metrics.readings_evaluated.inc(len(readings))
        return last
