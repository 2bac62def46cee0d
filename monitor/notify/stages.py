"""The alert path: one list of small stages that every transition and every repeat goes through, in order.

After Alertmanager's notify package: a `Stage` has one method, `MultiStage` runs a list of them in order,
and one mute stage decides for silences and flap holds alike, recording why it muted. First notifications
and repeats share the list, so they cannot disagree (a repeat is routed with its incident, as the first
message was). `alert_path` is the list:

    incident -> mute -> render -> route -> outbox -> ledger

The outbox comes before the ledger: the ledger restores alert state at start-up, so a transition it knows
of must already be owed to its targets (a crash in between re-evaluates it and the outbox's key drops the
copy). Stages are synchronous (the service runs the path in a worker thread); a stage that raises (disk
full) leaves the notice where it was, and running the path again resumes at that stage, so no stage acts
twice on one notice.

Forecast notices (category "forecast", monitor.alerts.forecast_notice) take the same path: their incident
is looked up, never moved; the flap guard is not asked; the ledger stage leaves them to the incident's own
record, which the rules loop writes after the batch's path (`Ledger.save_incidents`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Protocol

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.flapping import FlapGuard, Verdict
from monitor.alerts.incidents import Incident, Incidents
from monitor.alerts.ledger import AlertRecord, Ledger
from monitor.config.messages import RouteMessages
from monitor.config.notify import InhibitConfig
from monitor.metrics import Metrics
from monitor.notify.inhibit import judge, suspect_line
from monitor.notify.message import event_facts, group_key
from monitor.notify.outbox import Outbox
from monitor.notify.render import Message, render
from monitor.notify.render_group import change_line, group_context, stale_label
from monitor.notify.routes import Target
from monitor.notify.templates import what_to_do
from monitor.notify.terms import DEFAULT_TERMS, Terms
from monitor.thresholds import Station

log = logging.getLogger("riverwatch.notify")


@dataclass(slots=True)
class Notice:
    """One alert transition, or one repeat of a firing alert, and what the stages decided about it so far."""

    event: AlertEvent
    repeat: bool = False  # re-sent because nobody acknowledged it: changes no state
    released: bool = False  # a resolve held while flapping, sent now that the series has calmed
    stale: bool = False  # from a reading that arrived later than [notify].stale_after: stale routes only
    late: bool = False  # a repeat of an alert that only stale notices told of, sent when readings are on time
    incident: Incident | None = None
    verdict: Verdict | None = None  # the flap guard's, once asked (a repeat or a release is not asked: SEND)
    muted: str | None = None  # why it is not sent: "flapping", "silence 3 (analyser maintenance)", "inhibited by"
    suspect: AlertRecord | None = None  # an open sensor alert on the same series: the message says so
    message: Message | None = None
    targets: tuple[str, ...] = ()  # target ids that want it
    done: int = 0  # stages of the path completed: running the path again resumes after them

    @property
    def title(self) -> str:
        return self.message.title if self.message is not None else ""


class Stage(Protocol):
    def exec(self, n: Notice) -> None:
        """Move the notice one step along; raise to leave it where it is (it is run again)."""


class MultiStage:
    """Stages run in order; a notice remembers how far it got, so a retry resumes at the stage that failed."""

    def __init__(self, *stages: Stage) -> None:
        self.stages = stages

    def exec(self, n: Notice) -> None:
        for i in range(n.done, len(self.stages)):
            self.stages[i].exec(n)
            n.done = i + 1


class IncidentStage:
    """The incident a transition belongs to, after it moved it on; a repeat only looks its incident up."""

    def __init__(self, incidents: Incidents) -> None:
        self.incidents = incidents

    def exec(self, n: Notice) -> None:
        n.incident = self.incidents.of(n.event) if n.repeat else self.incidents.on_event(n.event)


class MuteStage:
    """Flap holds, silences and inhibition (monitor.notify.inhibit): a muted notice is recorded (audit, metric)
    and not queued for any target."""

    def __init__(
        self,
        flaps: FlapGuard,
        ledger: Ledger,
        metrics: Metrics | None = None,
        inhibit: InhibitConfig | None = None,
        stations: Callable[[], Mapping[str, Station]] = dict,
    ) -> None:
        self.flaps = flaps
        self.ledger = ledger
        self.metrics = metrics
        self.inhibit = inhibit if inhibit is not None else InhibitConfig()
        self.stations = stations

    def exec(self, n: Notice) -> None:
        e = n.event
        if n.verdict is None:  # asked once per notice, also when a retry runs this stage again
            forecast = e.category == "forecast"  # a forecast notice is no series' transition: never held
            n.verdict = Verdict.SEND if n.repeat or n.released or forecast else self.flaps.observe(e)
        what = "repeat" if n.repeat else e.state
        if n.verdict is Verdict.HOLD:
            n.muted = "flapping"
            self.ledger.note("riverwatch", "held", f"alert {e.alert_id}", f"{what} not sent: the alert is flapping")
            return
        silence = self.ledger.silence_for(e.station, e.parameter, time.time_ns())
        if silence is None:
            n.muted = None
            self._inhibit(n, what)
            return
        n.muted = f"silence {silence.id} ({silence.reason})"
        if self.metrics is not None:
            self.metrics.notifications_silenced.inc()
        self.ledger.note("riverwatch", "suppressed", f"alert {e.alert_id}", f"{what} silenced by {n.muted}")

    def _inhibit(self, n: Notice, what: str) -> None:
        e = n.event
        if e.category != "water" or n.repeat:
            return
        verdict = judge(e, n.incident, self.stations(), self.ledger.alerts(True), self.inhibit)
        n.suspect = verdict.suspect
        if verdict.muted is None:
            return
        n.muted = verdict.muted
        if self.metrics is not None:
            self.metrics.notifications_silenced.inc()
        self.ledger.note("riverwatch", "muted", f"alert {e.alert_id}", f"{what} not sent: {verdict.muted}")


class RenderStage:
    """Title and body, also for a muted notice: its title goes with the alert point into the database."""

    def __init__(
        self,
        stations: Callable[[], Mapping[str, Station]],
        language: str,
        tz: tzinfo,
        default_km_per_day: float,
        terms: Callable[[], Terms] = lambda: DEFAULT_TERMS,
    ) -> None:
        self.stations = stations
        self.language = language
        self.tz = tz
        self.default_km_per_day = default_km_per_day
        self.terms = terms  # asked per notice: a threshold reload may rename a river

    def exec(self, n: Notice) -> None:
        e, stations, terms = n.event, self.stations(), self.terms()
        m = render(
            e,
            self.language,
            stations,
            self.tz,
            n.incident,
            self.default_km_per_day,
            repeat=n.repeat,
            flapping=n.verdict is Verdict.START,
            terms=terms,
        )
        change = change_line(
            e, n.incident, stations, self.language, self.tz, default_km_per_day=self.default_km_per_day, terms=terms
        )
        body = m.body
        if n.stale or n.late:
            label, line = stale_label(e, n.late, self.language, self.tz)
            m = dataclasses.replace(m, title=f"{label} {m.title}")
            body, change = f"{body}\n\n{line}", f"{label} {change}"
        if n.suspect is not None:
            mark = suspect_line(n.suspect, self.language)
            body, change = f"{body}\n\n{mark}", f"{change} ({mark})"
        context = group_context(
            n.incident,
            stations,
            self.language,
            self.tz,
            event=e,
            default_km_per_day=self.default_km_per_day,
            terms=terms,
        )
        n.message = dataclasses.replace(
            m,
            body=body,
            group=group_key(e, n.incident.id if n.incident is not None else None),
            change=change,
            context=context,
            urgent=e.severity == "critical" or _at_intake(e, stations),
            language=self.language,
            facts=event_facts(e, stations),
        )


def _at_intake(e: AlertEvent, stations: Mapping[str, Station]) -> bool:
    """At a water intake itself (a plume merely heading for one waits like any other change)."""
    st = stations.get(e.station)
    return st is not None and st.intake


class RouteStage:
    """The targets whose route filters or apprise tags want this alert, judged with its incident."""

    def __init__(self, targets: Sequence[Target], stations: Callable[[], Mapping[str, Station]]) -> None:
        self.targets = targets
        self.stations = stations

    def exec(self, n: Notice) -> None:
        if n.muted is not None:
            n.targets = ()
            return
        stations = self.stations()
        wanted = (t for t in self.targets if t.wants_stale or not n.stale)  # stale readings: stale routes only
        n.targets = tuple(t.id for t in wanted if t.wants(n.event, stations, n.incident))


# An alert's last transitions: sent only to the targets that were sent the alert (as Alertmanager sends a
# resolved notification only where the firing one went): a target that was not told of it (silenced, held as
# flapping, or told only through stale-data routes) is not told it ended. A resolve released when a flapping
# series calms is the exception: the targets were told its notices are held until then.
ENDS = ("resolved", "withdrawn")


class OutboxStage:
    """Committed to the outbox per target before any send, with each target's grouping times and "what to do"
    lines; `queued` then wakes the delivery workers. A repeat goes only to the targets whose own
    repeat_interval has passed since this alert was last queued for them; an end only where the alert went."""

    def __init__(
        self,
        outbox: Outbox,
        queued: Callable[[], None] = lambda: None,
        targets: Sequence[Target] = (),
        stations: Callable[[], Mapping[str, Station]] = dict,
        language: str = "en",
    ) -> None:
        self.outbox = outbox
        self.queued = queued
        self.targets = {t.id: t for t in targets}
        self.stations = stations
        self.language = language

    def exec(self, n: Notice) -> None:
        if n.muted is not None or n.message is None or not n.targets:
            return
        e, now = n.event, time.time_ns()
        if e.state in ENDS and e.category != "forecast" and not n.released:  # only to those told of the alert
            wanted = [t for t in n.targets if self.outbox.last_queued(t, e.alert_id) is not None]
        else:
            wanted = [
                t
                for t in n.targets
                if not n.repeat
                or t not in self.targets
                or (last := self.outbox.last_queued(t, e.alert_id)) is None
                or now - last >= self.targets[t].repeat_interval_s * 1e9
            ]
        if not wanted:
            return
        stations = self.stations()
        timing, todo = {}, {}
        for t in wanted:
            target = self.targets.get(t)
            if target is None:
                continue
            timing[t] = target.timing
            route = target.route.messages if target.route is not None else RouteMessages()
            todo[t] = what_to_do(target.messages, route, e, n.incident, stations, self.language)
        self.outbox.add(n.message, wanted, timing=timing, todo=todo)
        self.queued()  # delivery starts now, while the ledger records it


class LedgerStage:
    """The alert record with the incident and flap state after it (what a restart restores), then when it was
    last sent (what repeats count from). A repeat changes no record, only the time it was sent. Each transition
    is counted here, once, by category and state (`riverwatch_alert_transitions_total`)."""

    def __init__(self, ledger: Ledger, flaps: FlapGuard, metrics: Metrics | None = None) -> None:
        self.ledger = ledger
        self.flaps = flaps
        self.metrics = metrics

    def exec(self, n: Notice) -> None:
        e = n.event
        if not n.repeat:
            log.info(
                "alert %s %s: %s %s %s at %s (%.2fx, %s)%s%s",
                e.alert_id,
                e.state,
                e.category,
                e.station,
                e.parameter,
                e.ts_ns,
                e.ratio,
                e.severity,
                f" incident {n.incident.id}" if n.incident is not None else "",
                f"; muted: {n.muted}" if n.muted is not None else f"; to {len(n.targets)} target(s)",
            )
            if n.stale and n.muted is None:
                self.ledger.note(
                    "riverwatch", "stale", f"alert {e.alert_id}", f"{e.state} from a late reading: stale routes only"
                )
        if e.category == "forecast":  # kept with its incident (Ledger.save_incidents, after the batch's path)
            if self.metrics is not None:
                self.metrics.alert_transitions.labels(e.category, e.state).inc()
            return
        if not n.repeat:
            key = self.flaps.key(e)
            self.ledger.record(
                e,
                flapping=self.flaps.is_flapping(e),
                incident=n.incident,
                flap_key=key,
                flap=self.flaps.state(key),
            )
        if n.repeat or n.muted is None:
            self.ledger.mark_sent(e.alert_id, time.time_ns())
        if not n.repeat and self.metrics is not None:
            self.metrics.alert_transitions.labels(e.category, e.state).inc()


class AlertPath(MultiStage):
    """The alert path's stages, and the ledger they write (the pipeline keeps each batch's evaluated marks there)."""

    def __init__(self, ledger: Ledger, *stages: Stage, incidents: Incidents | None = None) -> None:
        super().__init__(*stages)
        self.ledger = ledger
        self.incidents = incidents  # what the rules loop feeds readings and asks for forecasts (evaluate)


def alert_path(
    *,
    incidents: Incidents,
    flaps: FlapGuard,
    ledger: Ledger,
    outbox: Outbox,
    targets: Sequence[Target],
    stations: Callable[[], Mapping[str, Station]],
    language: str,
    tz: tzinfo,
    default_km_per_day: float,
    metrics: Metrics | None = None,
    queued: Callable[[], None] = lambda: None,
    inhibit: InhibitConfig | None = None,
    terms: Callable[[], Terms] = lambda: DEFAULT_TERMS,
) -> AlertPath:
    """The alert path, in its order."""
    return AlertPath(
        ledger,
        IncidentStage(incidents),
        MuteStage(flaps, ledger, metrics, inhibit, stations),
        RenderStage(stations, language, tz, default_km_per_day, terms),
        RouteStage(targets, stations),
        OutboxStage(outbox, queued, targets, stations, language),
        LedgerStage(ledger, flaps, metrics),
        incidents=incidents,
    )
