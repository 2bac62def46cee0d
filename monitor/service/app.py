"""The service: wires ingest -> journal -> (store, rules -> alerts -> notify) as asyncio tasks.

The rules loop is in evaluate, the alert path in monitor.notify.stages, reloads in reload, /healthz and
/metrics in http; this module opens what they need, restores the alert state the ledger kept, starts them
and stops them in order.

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
import logging
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from monitor.alerts.evaluator import AlertEvent, Evaluator
from monitor.alerts.flapping import FlapGuard
from monitor.alerts.forecast_notice import settings_from
from monitor.alerts.incidents import Incidents
from monitor.alerts.ledger import Ledger
from monitor.config import Config
from monitor.domain.pacing import Backoff, nap
from monitor.domain.rejection import REASONS
from monitor.ingest.deadletter import DeadLetterSink, FileSink, TopicSink
from monitor.ingest.hj212_server import HJ212Server
from monitor.ingest.mqtt import Ingest
from monitor.journal import Journal, JournalError
from monitor.metrics import Metrics, package_version
from monitor.notify.deliver import deliver
from monitor.notify.outbox import Outbox
from monitor.notify.pipeline import Pipeline
from monitor.notify.render import parse_offset
from monitor.notify.routes import make_targets
from monitor.notify.stages import alert_path
from monitor.notify.terms import Terms
from monitor.service.console import Console
from monitor.service.evaluate import Evaluation
from monitor.service.http import start_http
from monitor.service.reload import Reloader
from monitor.service.startup import RulesInForce, changes, rules_in_force, startup_line
from monitor.store.influx import Drain, EmbeddedStore, InfluxV1Writer, InfluxV2Writer, Writer
from monitor.thresholds import ThresholdSet, load_or_shipped

log = logging.getLogger("riverwatch.service")

SHUTDOWN_BUDGET_S = 8.0  # of the 10 s promised by `riverwatch run`
ACTIVE_ALERTS_EVERY_S = 5.0  # riverwatch_active_alerts from the ledger: one small query, fresher than a scrape


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
    stations: set[str]


class Service:
    def __init__(
        self, cfg: Config, thresholds: ThresholdSet | None = None, on_alert: Callable[[AlertEvent], None] | None = None
    ) -> None:
        self.cfg = cfg
        self.threshold_paths, loaded = load_or_shipped(cfg.thresholds.files)
        self.evaluator = Evaluator(thresholds if thresholds is not None else loaded, cfg.thresholds.default_class)
        self.metrics = Metrics()
        self.incidents = Incidents(
            self.thresholds.stations, cfg.notify.front_velocity_km_per_day, settings=settings_from(cfg.forecast)
        )
        self.flaps = FlapGuard(cfg.notify.flap_max_transitions, cfg.notify.flap_window_s)
        self.targets = make_targets(cfg.notify)
        self.on_alert = on_alert
        self._store_wake = asyncio.Event()
        self._rules_wake = asyncio.Event()
        self._notify_wake = asyncio.Event()
        self.reloader = Reloader(
            self.threshold_paths, cfg.thresholds.default_class, self.evaluator, self.metrics, self._swapped
        )
        self.reloader.wake = self._rules_wake
        # Opened by open() from run(), which waits for a usable data_dir (read-only, full, missing) instead of crashing.
        self.journal: Journal
        self.outbox: Outbox
        self.ledger: Ledger
        self.writer: Writer
        self.ingest: Ingest
        self.hj212: HJ212Server | None = None  # [hj212].enabled: data loggers over TCP
        self.evaluation: Evaluation | None = None
        self._rules_in_force: RulesInForce | None = None  # what the last summary line said, for the reload's diff
        self._background: set[asyncio.Task[None]] = set()

    async def open(self, stop: asyncio.Event) -> bool:
        """Open the journal, the outbox, the ledger and the store; until data_dir takes writes, report unhealthy
        and retry.

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
                self._restore()
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
        self._warn_orphans()
        self.metrics.bind_backlogs(
            lambda: self.journal.backlog("store"), self.notify_backlog, lambda: sum(self.orphans().values())
        )
        self.evaluation = Evaluation(
            self.evaluator,
            self.journal,
            self.ledger,
            self._pipeline(asyncio.get_running_loop()),
            self.reloader,
            self.metrics,
            repeat_interval_s=self.cfg.notify.repeat_interval_s,
            wake=self._rules_wake,
            persisted=self._persisted,
            on_alert=self.on_alert,
        )
        dead_letter = make_dead_letter(self.cfg)
        self.ingest = Ingest(
            self.cfg.mqtt,
            self.journal,
            self.metrics,
            self._journaled,
            batch=self.cfg.service.ingest_batch,
            dead_letter=dead_letter,
            # The thresholds in force: a reload's new stations and parameters pass from its next batch on.
            stations=lambda: self.thresholds.stations,
            catalogue=lambda: self.thresholds.catalogue,
            admission=self.cfg.admission,
            on_clock_fault=self.evaluation.clock_fault,
        )
        if self.cfg.hj212.enabled:  # the same journal, admission and clock faults as MQTT; 9014 after the commit
            self.hj212 = HJ212Server(
                self.cfg.hj212,
                self.journal,
                self.metrics,
                self._journaled,
                stations=lambda: self.thresholds.stations,
                catalogue=lambda: self.thresholds.catalogue,
                dead_letter=dead_letter,
                admission=self.cfg.admission,
                on_clock_fault=self.evaluation.clock_fault,
                max_clock_skew_s=self.cfg.mqtt.max_clock_skew_s,
            )
        return True

    @property
    def target_ids(self) -> list[str]:
        return [t.id for t in self.targets]

    def orphans(self) -> dict[str, int]:
        """Undelivered rows of targets no longer configured: nobody will send them, so they are no backlog."""
        return self.outbox.orphans(self.target_ids)

    def notify_backlog(self) -> int:
        """Notifications owed to the configured targets (what the workers will still send)."""
        configured = set(self.target_ids)  # orphans(()) knows no target: every target's undelivered rows
        return sum(n for target, n in self.outbox.orphans(()).items() if target in configured)

    def _warn_orphans(self) -> None:
        for target, n in sorted(self.orphans().items()):
            log.warning(
                "outbox: %d undelivered notification(s) for target %s, which is no longer configured: they will "
                "not be sent; `riverwatch outbox list` shows them, `riverwatch outbox drop %s` deletes them",
                n,
                target,
                target,
            )

    def _restore(self) -> None:
        """What the ledger kept at the last stop: open alerts continue instead of firing again, open incidents
        keep their hits (and so their observed velocity), flapping series stay held."""
        for a in self.ledger.alerts(active_only=True):
            self.evaluator.book.restore(
                a.alert_id,
                a.station,
                a.parameter,
                a.rule,
                a.severity,
                a.started_ns,
                a.peak_value,
                a.peak_ratio,
                a.last_evaluated_ns,
                a.value,
                state=a.state,
                category=a.category,
            )
        self.incidents.restore(self.ledger.open_incidents())
        self.flaps.restore(self.ledger.flap_states())

    def _pipeline(self, loop: asyncio.AbstractEventLoop) -> Pipeline:
        n = self.cfg.notify
        path = alert_path(
            incidents=self.incidents,
            flaps=self.flaps,
            ledger=self.ledger,
            outbox=self.outbox,
            targets=self.targets,
            stations=lambda: self.thresholds.stations,
            language=n.language,
            tz=parse_offset(n.utc_offset),
            default_km_per_day=n.front_velocity_km_per_day,
            metrics=self.metrics,
            queued=lambda: _call_soon(loop, self._notify_wake.set),  # the path runs in a worker thread
            inhibit=n.inhibit,
            terms=lambda: Terms(messages=n.messages, rivers=self.thresholds.rivers),
        )
        return Pipeline(path, self.flaps, stale_after_s=n.stale_after_s)

    def _open_ledger(self) -> Ledger | None:
        """The ledger once `open` has it (the console answers 503 before)."""
        return self.ledger if self.evaluation is not None else None

    @property
    def thresholds(self) -> ThresholdSet:
        """The thresholds in force (they change on reload)."""
        return self.evaluator.thresholds

    @property
    def stations_seen(self) -> set[str]:
        return self.evaluation.stations_seen if self.evaluation is not None else set()

    def _swapped(self, thresholds: ThresholdSet) -> None:
        self.incidents.stations = thresholds.stations
        with contextlib.suppress(RuntimeError):  # no loop: a reload outside run() (tests) says nothing
            task = asyncio.get_running_loop().create_task(self._say_reloaded(thresholds))
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _say(self) -> None:
        """The start-up summary line (counting limit checks walks every station, so off the loop)."""
        rules = await asyncio.to_thread(rules_in_force, self.thresholds, self.cfg.thresholds.default_class)
        self._rules_in_force = rules
        log.info(startup_line(package_version(), self.cfg, rules, self.targets, self.threshold_paths))

    async def _say_reloaded(self, thresholds: ThresholdSet) -> None:
        rules = await asyncio.to_thread(rules_in_force, thresholds, self.cfg.thresholds.default_class)
        old, self._rules_in_force = self._rules_in_force, rules
        what = changes(old, rules) if old is not None else "first summary"
        log.info("in force after the reload: %s (%s)", rules.describe(self.cfg.thresholds.default_class), what)

    async def _count_active_alerts(self, stop: asyncio.Event) -> None:
        """riverwatch_active_alerts from the ledger's open alerts (what `riverwatch alerts --active` lists)."""
        while True:
            try:
                active = await asyncio.to_thread(self.ledger.alerts, True)
            except sqlite3.Error as e:  # the ledger is also written by the CLI: try again at the next round
                log.warning("active alerts not counted: %s", e)
            else:
                self.metrics.set_active_alerts(dict(Counter((a.category, a.severity) for a in active)))
            if stop.is_set():
                return
            await nap(None, stop, ACTIVE_ALERTS_EVERY_S)

    def _open_alert_ids(self) -> set[str]:
        """What an Alertmanager target still posts as firing (monitor.notify.alertmanager)."""
        return {a.alert_id for a in self.ledger.alerts(True)}

    def _journaled(self) -> None:
        self._store_wake.set()
        self._rules_wake.set()

    def _persisted(self) -> None:
        self._notify_wake.set()
        self._store_wake.set()  # the alert points

    def request_reload(self) -> None:
        self.reloader.request()

    async def run(self, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
        """Run until `stop` is set, then shut down within the budget."""
        asyncio.get_running_loop().set_exception_handler(_log_loop_error)
        _tune_gc()
        console = (
            Console(self.cfg.console, lambda: self.thresholds, self._open_ledger, self.cfg.notify.utc_offset)
            if self.cfg.console.enabled
            else None
        )
        http = await start_http(self.cfg.service.http_listen, self.metrics, [console.mount] if console else [])
        await self._say()
        if not await self.open(stop):
            if http is not None:
                await http.cleanup()
            return
        assert self.evaluation is not None
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
                bad_request_retries=influx.bad_request_retries if influx else 8,
            ).run(tail_stop)
        )
        rules_task = asyncio.create_task(self.evaluation.run(tail_stop))
        watch_task = asyncio.create_task(self.reloader.watch(tail_stop))
        notify_stop = asyncio.Event()
        active_task = asyncio.create_task(self._count_active_alerts(notify_stop))
        notify_tasks = [
            asyncio.create_task(
                deliver(
                    self.outbox,
                    url,
                    self.metrics,
                    self._notify_wake,
                    notify_stop,
                    timeout_s=self.cfg.notify.timeout_s,
                    connect_timeout_s=self.cfg.notify.connect_timeout_s,
                    retry_cap_s=self.cfg.notify.retry_cap_s,
                    active=self._open_alert_ids,
                )
            )
            for url in [t.url for t in self.targets]
        ]
        ingest_task = asyncio.create_task(self.ingest.run(stop))
        hj212_task = asyncio.create_task(self.hj212.run(stop)) if self.hj212 is not None else None
        if ready is not None:
            ready.set()
        await stop.wait()
        deadline = time.monotonic() + SHUTDOWN_BUDGET_S
        await _within(ingest_task, 2.0)
        if hj212_task is not None:  # what it received is journaled and answered before the rules catch up
            await _within(hj212_task, 2.0)
        tail_stop.set()
        await _within(rules_task, deadline - time.monotonic() - 3.0)
        await _within(watch_task, 0.5)
        notify_stop.set()
        self._notify_wake.set()
        await _within(asyncio.gather(store_task, *notify_tasks), deadline - time.monotonic())
        await _within(active_task, 0.5)
        for task in list(self._background):
            task.cancel()
        if http is not None:
            await http.cleanup()
        await self.writer.close()
        left = self.journal.backlog("store")
        if left:
            log.warning("%d readings stay journaled for the database; they are written at the next start", left)
        if pending := self.notify_backlog():
            log.warning("%d notifications stay in the outbox; they are sent at the next start", pending)
        self.close()

    def close(self) -> None:
        """Close what `open` opened (the store's writer is closed by `run`)."""
        self.journal.close()
        self.outbox.close()
        self.ledger.close()

    def summary(self) -> Summary:
        def total(name: str, **labels: str) -> int:
            return int(self.metrics.registry.get_sample_value(f"riverwatch_{name}_total", labels) or 0)

        return Summary(
            messages=total("messages_received"),
            readings=total("readings_accepted"),
            rejected=sum(total("readings_rejected", reason=r) for r in REASONS),
            written=total("readings_written"),
            stations=set(self.stations_seen),
        )

    def settled(self) -> bool:
        """Everything journaled is evaluated, stored and notified."""
        return (
            self.journal.backlog("rules") == 0
            and self.journal.backlog("store") == 0
            and not self.journal.alert_lines(1)
            and self.notify_backlog() == 0
        )


def _call_soon(loop: asyncio.AbstractEventLoop, fn: Callable[[], None]) -> None:
    loop.call_soon_threadsafe(fn)


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
