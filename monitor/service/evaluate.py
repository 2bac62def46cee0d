"""The rules' journal consumer: every journaled reading evaluated once, in journal order, and its transitions
through the alert path; between batches, the no-data clock, the repeats and a requested reload.

A batch's notices stay in the pipeline until all of them are through the path; a ledger, outbox or journal
error (disk full) retries the persisting where it stopped, never the evaluation, so alert state moves once
per reading and no transition is lost or doubled. The rules cursor moves after that.

Forecasts (issue 14): each batch's accepted readings go to the incidents' forecasters (`Incidents.observe`);
after the batch's transitions went through the path, the forecasts due (`Incidents.due_at`) give their
notices, which take the same path, and then the incidents that changed are written to the ledger.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.alerts.forecast_notice import CATEGORY as FORECAST
from monitor.alerts.incidents import Incidents
from monitor.alerts.ledger import Ledger
from monitor.domain.pacing import Backoff, nap
from monitor.domain.reading import Reading
from monitor.ingest.clock import ClockFault
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.notify.pipeline import Pipeline, due_repeats
from monitor.notify.stages import Notice
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
        incidents: Incidents | None = None,
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
        # The incidents the alert path moves: fed each batch's readings, asked for forecasts after its path.
        self.incidents = incidents if incidents is not None else getattr(pipeline.path, "incidents", None)
        self._bind()

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
        finished = await asyncio.to_thread(self.pipeline.drain)
        if self.incidents is not None:
            finished += await asyncio.to_thread(self._forecast)
        for n in finished:
            if n.repeat or n.event.category == FORECAST:
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

    def _forecast(self) -> list[Notice]:
        """The forecasts due after the batch's transitions, their notices through the alert path (outbox), then
        the incidents that changed into the ledger: what a restart restores, after what it owes the targets."""
        assert self.incidents is not None
        notices: list[AlertEvent] = []
        for inc, issued_ns, forecasts in self.incidents.due_at(self.stream_ns):
            notices += self.incidents.notices(inc, forecasts, issued_ns)
        finished: list[Notice] = []
        if notices:
            self.pipeline.feed(notices)
            finished = self.pipeline.drain()
        changed = self.incidents.take_dirty()
        try:
            self.ledger.save_incidents(changed, self.stream_ns)
        except sqlite3.Error:
            self.incidents.unsaved(changed)
            raise
        return finished

    def _bind(self) -> None:
        """The rivers and limits of the thresholds in force, for the incidents' forecasters."""
        if self.incidents is None:
            return
        thresholds, klass = self.evaluator.thresholds, self.reloader.default_class

        def limit(station: str, parameter: str, ts_ns: int) -> float | None:
            lim = thresholds.limit(station, parameter, klass, ts_ns)
            return lim.value if lim is not None and lim.kind == "max" else None

        self.incidents.bind(getattr(thresholds, "rivers", {}), limit)

    def clock_fault(self, fault: ClockFault) -> None:
        """Ingest's callback for a reading refused as future_timestamp: its sensor alert comes at the next step."""
        self._clock_faults.append(fault)
        self.wake.set()

    def _take(self) -> tuple[list[Reading], int, int | None]:
        """The next batch, and when its oldest reading arrived if staleness is asked for (one tail lookup)."""
        readings, last = self.journal.take("rules", self.batch, self.done)
        stale = bool(readings) and self.pipeline.stale_after_ns > 0
        return readings, last, self.journal.arrival("rules", self.done) if stale else None

    async def _next(self, stop: asyncio.Event) -> int | None:
        """Feed the pipeline the next work; the journal seq it completes (0: none), None when caught up."""
        if self.reloader.requested.is_set():
            self.reloader.requested.clear()
            self.pipeline.feed(self.reloader.apply())
            self._bind()
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
        readings, last, arrived = await asyncio.to_thread(self._take)
        if not readings:
            if stop.is_set():
                return None
            await nap(self.wake, stop, 1.0)
            return 0
        self.stations_seen.update(r.station for r in readings)
        events = self.evaluator.process(readings)
        self._points += [screening_line(*s) for s in self.evaluator.rules.suspects]
        if self.incidents is not None:
            self.incidents.observe(readings, [(s[0], s[1], s[2]) for s in self.evaluator.rules.suspects])
        self.stream_ns = max(self.stream_ns, max(r.ts_ns for r in readings))
        self.pipeline.feed(events, self.stream_ns, evaluated=self.evaluator.evaluated(), arrived_ns=arrived)
        self.metrics.readings_evaluated.inc(len(readings))
        return last
