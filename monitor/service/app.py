"""The service: wires ingest -> journal -> (store, rules -> alerts -> notify) as asyncio tasks.

No stage hands another an unbounded queue: ingest is bounded by the broker's in-flight window, and the
store and rules read the journal on disk one batch at a time, so a slow database costs disk, not memory.
Shutdown order matters: ingest stops taking messages first, then the rules catch up with the journal
(so every journaled reading is evaluated), then the store and the notifier get what time is left of the
10 s budget; whatever they cannot finish stays journaled or in the outbox for the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.alerts.flapping import FlapGuard, Verdict
from monitor.alerts.incidents import Incidents
from monitor.alerts.ledger import Ledger
from monitor.config import Config
from monitor.domain.pacing import Backoff, nap
from monitor.domain.rejection import REASONS
from monitor.ingest.deadletter import DeadLetterSink, FileSink, TopicSink
from monitor.ingest.mqtt import Ingest
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics
from monitor.notify.notifier import Outbox, deliver, make_targets, parse_offset, render
from monitor.store.influx import Drain, EmbeddedStore, InfluxV1Writer, InfluxV2Writer, Writer, alert_line
from monitor.thresholds import ThresholdSet, load_or_shipped

log = logging.getLogger("riverwatch.service")

SHUTDOWN_BUDGET_S = 8.0  # of the 10 s promised by `riverwatch run`


def make_writer(cfg: Config) -> Writer:
    if cfg.influxdb is None:
        return EmbeddedStore(cfg.service.data_dir / "store.sqlite")
    i = cfg.influxdb
    if i.api == "v1":
        return InfluxV1Writer(i.url, i.database, i.retention_policy, i.username, i.password, i.timeout_s)
    return InfluxV2Writer(i.url, i.org, i.bucket, i.token, i.timeout_s)


def make_dead_letter(cfg: Config) -> DeadLetterSink | None:
    d = cfg.dead_letter
    if d is None:
        return None
    if d.file is not None:
        return FileSink(d.file, d.max_bytes)
    assert d.topic is not None
    return TopicSink(d.topic, d.max_per_second)


@dataclass
class Summary:
    messages: int
    readings: int
    rejected: int
    written: int
    alerts: dict[str, int]
    stations: set[str]


class Service:
    def __init__(
        self, cfg: Config, thresholds: ThresholdSet | None = None, on_alert: Callable[[AlertEvent], None] | None = None
    ) -> None:
        self.cfg = cfg
        self.threshold_paths, loaded = load_or_shipped(cfg.thresholds.files)
        self.evaluator = Evaluator(thresholds if thresholds is not None else loaded, cfg.thresholds.default_class)
        self.metrics = Metrics()
        self.incidents = Incidents(self.thresholds.stations, cfg.notify.front_velocity_km_per_day)
        self.flaps = FlapGuard(cfg.notify.flap_max_transitions, cfg.notify.flap_window_s)
        self._stream_ns = 0  # the newest reading time evaluated: the clock of the flap windows
        self.targets = make_targets(cfg.notify)
        self.on_alert = on_alert
        self.stations_seen: set[str] = set()
        self._rules_done = 0  # highest journal seq whose alert events are persisted
        self._unpersisted: tuple[list[AlertEvent], int] | None = None
        self._reload_requested = asyncio.Event()
        self._last_tick = 0.0
        self._tz = parse_offset(cfg.notify.utc_offset)
        self._store_wake = asyncio.Event()
        self._rules_wake = asyncio.Event()
        self._notify_wake = asyncio.Event()
        # Opened by run(), which waits for a usable data_dir (read-only, full, missing) instead of crashing.
        self.journal: Journal
        self.outbox: Outbox
        self.ledger: Ledger
        self.writer: Writer
        self.ingest: Ingest

    async def _open(self, stop: asyncio.Event) -> bool:
        """Open the journal, the outbox and the store; until data_dir takes writes, report unhealthy and retry.

        Nothing connects to the broker before this succeeds, so nothing is acknowledged that could not be
        journaled. Returns False if stopped first.
        """
        data = self.cfg.service.data_dir
        backoff = Backoff(first=1.0, cap=10.0)
        while not stop.is_set():
            journal = None
            try:
                data.mkdir(parents=True, exist_ok=True)
                journal = Journal(data / "journal.sqlite")
                journal.probe()
                self.outbox = Outbox(data / "outbox.sqlite", [t.url for t in self.targets])
                self.ledger = Ledger(data / "alerts.sqlite")
                self.writer = make_writer(self.cfg)
                self.journal = journal
                break
            except (JournalError, sqlite3.Error, OSError) as e:
                if journal is not None:
                    journal.close()
                delay = backoff.step()
                self.metrics.health.fail("journal", f"data_dir {data}: {e}")
                log.error(
                    "cannot use data_dir %s: %s; nothing is consumed until it can; retrying in %.0f s", data, e, delay
                )
                await nap(None, stop, delay)
        else:
            return False
        self.metrics.health.ok("journal")
        for a in self.ledger.alerts(active_only=True):  # alerts open at the last stop continue, not re-fire
            self.evaluator.book.restore(
                a.alert_id,
                a.station,
                a.parameter,
                a.rule,
                a.severity,
                a.started_ns,
                a.peak_value,
                a.peak_ratio,
                a.updated_ns,
                a.value,
            )
        self.metrics.bind_backlogs(lambda: self.journal.backlog("store"), self.outbox.pending)
        self.ingest = Ingest(
            self.cfg.mqtt,
            self.journal,
            self.metrics,
            self._journaled,
            batch=self.cfg.service.ingest_batch,
            dead_letter=make_dead_letter(self.cfg),
        )
        return True

    @property
    def thresholds(self) -> ThresholdSet:
        """The thresholds in force (they change on reload)."""
        return self.evaluator.thresholds

    def _journaled(self) -> None:
        self._store_wake.set()
        self._rules_wake.set()

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Run until `stop` is set, then shut down within the budget."""
        asyncio.get_running_loop().set_exception_handler(_log_loop_error)
        _tune_gc()
        http = await self._start_http()
        if not await self._open(stop):
            if http is not None:
                await http.cleanup()
            return
        tail_stop = asyncio.Event()  # tells the rules, store and notifier that ingest is done
        influx = self.cfg.influxdb
        store_task = asyncio.create_task(
            Drain(
                self.journal,
                self.writer,
                self.metrics,
                self._store_wake,
                batch_size=influx.batch_size if influx else 5000,
                flush_interval_s=influx.flush_interval_s if influx else 0.2,
                retry_cap_s=influx.retry_cap_s if influx else 5.0,
            ).run(tail_stop)
        )
        rules_task = asyncio.create_task(self._evaluate(tail_stop))
        repeat_task = asyncio.create_task(self._repeat(tail_stop))
        watch_task = asyncio.create_task(self._watch_thresholds(tail_stop))
        notify_stop = asyncio.Event()
        notify_tasks = [
            asyncio.create_task(
                deliver(
                    self.outbox,
                    url,
                    self.metrics,
                    self._notify_wake,
                    notify_stop,
                    timeout_s=self.cfg.notify.timeout_s,
                    retry_cap_s=self.cfg.notify.retry_cap_s,
                )
            )
            for url in [t.url for t in self.targets]
        ]
        ingest_task = asyncio.create_task(self.ingest.run(stop))
        if ready is not None:
            ready.set()
        await stop.wait()
        deadline = time.monotonic() + SHUTDOWN_BUDGET_S
        await _within(ingest_task, 2.0)
        tail_stop.set()
        await _within(rules_task, deadline - time.monotonic() - 3.0)
        await _within(repeat_task, 0.5)
        await _within(watch_task, 0.5)
        notify_stop.set()
        self._notify_wake.set()
        await _within(asyncio.gather(store_task, *notify_tasks), deadline - time.monotonic())
        if http is not None:
            await http.cleanup()
        await self.writer.close()
        left = self.journal.backlog("store")
        if left:
            log.warning("%d readings stay journaled for the database; they are written at the next start", left)
        if pending := self.outbox.pending():
            log.warning("%d notifications stay in the outbox; they are sent at the next start", pending)
        self.journal.close()
        self.outbox.close()
        self.ledger.close()

    async def _evaluate(self, stop: asyncio.Event) -> None:
        """The rules' journal consumer: every journaled reading is evaluated once, in journal order.

        A batch's events stay in memory until all of them are persisted (outbox, ledger, alert points); a
        journal or outbox error (disk full) retries the persisting, never the evaluation, so alert state
        moves once per reading and no transition is lost or doubled. The cursor moves after that. The
        no-data clock ticks at least every second, and a requested reload happens here, between batches.
        """
        backoff = Backoff(first=0.5, cap=10.0)
        while True:
            try:
                if self._unpersisted is None:
                    got = await self._next_events(stop)
                    if got is None:
                        return
                    self._unpersisted = got
                events, seq = self._unpersisted
                await self._persist(events)
                self._unpersisted = None
                if seq > self._rules_done:
                    self._rules_done = seq
                    await asyncio.to_thread(self.journal.advance, "rules", seq)
                backoff.reset()
            except (JournalError, sqlite3.Error) as e:
                self.metrics.health.fail("journal", str(e))
                delay = backoff.step()
                log.error("rules: %s; retrying in %.1f s", e, delay)
                if stop.is_set():
                    return
                await nap(None, stop, delay)

    async def _next_events(self, stop: asyncio.Event) -> tuple[list[AlertEvent], int] | None:
        """The next batch's transitions and its last journal seq; None when stopped and caught up."""
        if self._reload_requested.is_set():
            self._reload_requested.clear()
            return self._reload(), 0
        now = time.monotonic()
        if now - self._last_tick >= 1.0:
            self._last_tick = now
            ticked = self.evaluator.tick()
            if ticked:
                return ticked, 0
        readings, last = await asyncio.to_thread(self.journal.take, "rules", 5000, self._rules_done)
        if not readings:
            if stop.is_set():
                return None
            await nap(self._rules_wake, stop, 1.0)
            return [], 0
        self.stations_seen.update(r.station for r in readings)
        events = self.evaluator.process(readings)
        self._stream_ns = max(self._stream_ns, max(r.ts_ns for r in readings))
        events += self.flaps.calmed(self._stream_ns)
        self.metrics.readings_evaluated.inc(len(readings))
        return events, last

    async def _persist(self, events: list[AlertEvent]) -> None:
        if not events:
            return
        alert_points = [alert_line(e, await self._dispatch(e)) for e in events]
        await asyncio.to_thread(self.journal.append_alert_lines, alert_points)
        for e in events:
            self.metrics.alerts.labels(e.state).inc()
            if self.on_alert is not None:
                self.on_alert(e)
        self._notify_wake.set()
        self._store_wake.set()

    def _reload(self) -> list[AlertEvent]:
        """Validate and swap the threshold files; on any problem the rules in force stay."""
        events, problems = self.evaluator.reload_files(self.threshold_paths, self.cfg.thresholds.default_class)
        if problems:
            self.metrics.health.degrade("thresholds", f"reload refused: {problems[0]} (+{len(problems) - 1} more)")
            return []
        self.metrics.health.ok("thresholds")
        self.metrics.reloads.inc()
        self.incidents.stations = self.evaluator.thresholds.stations
        return events

    async def _watch_thresholds(self, stop: asyncio.Event) -> None:
        """Reload when a threshold file changes (checked every 2 s), as on SIGHUP."""

        def stamp() -> tuple[float, ...]:
            return tuple(p.stat().st_mtime if p.exists() else 0.0 for p in self.threshold_paths)

        seen = stamp()
        while not stop.is_set():
            await nap(None, stop, 2.0)
            now = stamp()
            if now != seen:
                seen = now
                log.info("threshold files changed; reloading")
                self.request_reload()

    def request_reload(self) -> None:
        self._reload_requested.set()
        self._rules_wake.set()

    async def _dispatch(self, e: AlertEvent) -> str:
        """One transition through the notify pipeline: incident, ledger, silence, route, outbox. Returns the
        title (for the alert point in the database)."""
        stations = self.thresholds.stations
        incident = self.incidents.on_event(e)
        verdict = self.flaps.observe(e)
        msg = render(
            e,
            self.cfg.notify.language,
            stations,
            self._tz,
            incident,
            self.cfg.notify.front_velocity_km_per_day,
            flapping=verdict is Verdict.START,
        )
        now = time.time_ns()
        silence = await asyncio.to_thread(self.ledger.silence_for, e.station, e.parameter, now)
        if verdict is Verdict.HOLD:
            await asyncio.to_thread(
                self.ledger.note,
                "riverwatch",
                "held",
                f"alert {e.alert_id}",
                f"{e.state} not sent: the alert is flapping",
            )
        elif silence is not None:
            self.metrics.notifications_silenced.inc()
            await asyncio.to_thread(
                self.ledger.note,
                "riverwatch",
                "suppressed",
                f"alert {e.alert_id}",
                f"{e.state} silenced by silence {silence.id} ({silence.reason})",
            )
        else:
            wanted = [t.id for t in self.targets if t.wants(e, stations, incident)]
            await asyncio.to_thread(self.outbox.add, msg, wanted)
            self._notify_wake.set()  # committed: delivery starts now, while the ledger records it
        # The ledger only after the outbox: the ledger restores alert state at start-up, so a transition it
        # knows of must already be owed to the targets (a crash in between re-evaluates and re-queues it,
        # and the outbox's key drops the copy).
        await asyncio.to_thread(self.ledger.record, e, incident.id if incident else None, self.flaps.is_flapping(e))
        if silence is None and verdict is not Verdict.HOLD:
            await asyncio.to_thread(self.ledger.mark_sent, e.alert_id, now)
        return msg.title

    async def _repeat(self, stop: asyncio.Event) -> None:
        """Re-send firing alerts nobody acknowledged, every repeat_interval (wall clock)."""
        interval = self.cfg.notify.repeat_interval_s
        while not stop.is_set():
            await nap(None, stop, min(60.0, interval / 4))
            now = time.time_ns()
            try:
                due = [
                    a
                    for a in await asyncio.to_thread(self.ledger.alerts, True)
                    if a.acked_by is None and a.last_sent_ns is not None and now - a.last_sent_ns >= interval * 1e9
                ]
                for a in due:
                    limit = self.evaluator.rules.limit(a.station, a.parameter)
                    if limit is None:
                        continue
                    e = AlertEvent(
                        a.alert_id,
                        "firing",
                        a.station,
                        a.parameter,
                        a.updated_ns,
                        a.value,
                        a.value / limit.value if limit.value else 0.0,
                        a.severity,
                        limit,
                        a.started_ns,
                        a.peak_value,
                        a.peak_ratio,
                    )
                    if await asyncio.to_thread(self.ledger.silence_for, a.station, a.parameter, now) is None:
                        msg = render(
                            e,
                            self.cfg.notify.language,
                            self.thresholds.stations,
                            self._tz,
                            self.incidents.open_for(a.incident_id),
                            self.cfg.notify.front_velocity_km_per_day,
                            repeat=True,
                        )
                        wanted = [t.id for t in self.targets if t.wants(e, self.thresholds.stations, None)]
                        await asyncio.to_thread(self.outbox.add, msg, wanted)
                        self._notify_wake.set()
                    await asyncio.to_thread(self.ledger.mark_sent, a.alert_id, now)
            except sqlite3.Error as e:
                log.error("repeat notifications: %s", e)

    async def _start_http(self) -> web.AppRunner | None:
        listen = self.cfg.service.http_listen
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, int(port)).start()
        log.info("serving /healthz and /metrics on http://%s", listen)
        return runner

    async def _healthz(self, _: web.Request) -> web.Response:
        report = self.metrics.health.report()
        return web.Response(
            text=json.dumps(report),
            content_type="application/json",
            status=503 if report["status"] == "unhealthy" else 200,
        )

    async def _metrics(self, _: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.metrics.exposition)
        return web.Response(body=body, headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})

    def summary(self) -> Summary:
        def total(name: str, **labels: str) -> int:
            return int(self.metrics.registry.get_sample_value(f"riverwatch_{name}_total", labels) or 0)

        return Summary(
            messages=total("messages_received"),
            readings=total("readings_accepted"),
            rejected=sum(total("readings_rejected", reason=r) for r in REASONS),
            written=total("readings_written"),
            alerts={s: total("alerts", state=s) for s in ("firing", "escalated", "resolved")},
            stations=set(self.stations_seen),
        )

    def settled(self) -> bool:
        """Everything journaled is evaluated, stored and notified."""
        return (
            self.journal.backlog("rules") == 0
            and self.journal.backlog("store") == 0
            and not self.journal.alert_lines(1)
            and self.outbox.pending() == 0
        )


def _tune_gc() -> None:
    """Readings are short-lived tuples made at up to 100k/s, and none of them forms a cycle. With the default
    thresholds a young collection ran every 700 allocations and the full ones walked every long-lived
    object (thresholds, the journal's tail); frozen start-up objects and a larger young generation keep
    cycle collection to a small share of the work while still collecting real cycles."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


def _log_loop_error(loop: asyncio.AbstractEventLoop, context: dict[str, object]) -> None:
    """Errors in loop callbacks (aiomqtt's socket callbacks after a failed TLS handshake, say) as one log line.

    They are already handled where it matters (the connection is retried); a multi-line traceback per
    reconnect would bury the line that says why.
    """
    exc = context.get("exception")
    log.warning("event loop: %s%s", context.get("message", "error"), f": {exc!r}" if exc else "")


async def _within(aw: asyncio.Future | asyncio.Task, timeout: float) -> None:
    """Await with a deadline; cancel on expiry (what is unfinished is still journaled)."""
    with contextlib.suppress(TimeoutError, asyncio.CancelledError):
        await asyncio.wait_for(aw, timeout=max(timeout, 0.1))
