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

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Protocol

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.flapping import FlapGuard, Verdict
from monitor.alerts.incidents import Incident, Incidents
from monitor.alerts.ledger import Ledger
from monitor.metrics import Metrics
from monitor.notify.outbox import Outbox
from monitor.notify.render import Message, render
from monitor.notify.routes import Target
from monitor.thresholds import Station


@dataclass(slots=True)
class Notice:
    """One alert transition, or one repeat of a firing alert, and what the stages decided about it so far."""

    event: AlertEvent
    repeat: bool = False  # re-sent because nobody acknowledged it: changes no state
    released: bool = False  # a resolve held while flapping, sent now that the series has calmed
    incident: Incident | None = None
    verdict: Verdict | None = None  # the flap guard's, once asked (a repeat or a release is not asked: SEND)
    muted: str | None = None  # why it is not sent: "flapping", "silence 3 (analyser maintenance)"
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
    """Flap holds and silences: a muted notice is recorded (audit, metric) and not queued for any target."""

    def __init__(self, flaps: FlapGuard, ledger: Ledger, metrics: Metrics | None = None) -> None:
        self.flaps = flaps
        self.ledger = ledger
        self.metrics = metrics

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
            return
        n.muted = f"silence {silence.id} ({silence.reason})"
        if self.metrics is not None:
            self.metrics.notifications_silenced.inc()
        self.ledger.note("riverwatch", "suppressed", f"alert {e.alert_id}", f"{what} silenced by {n.muted}")


class RenderStage:
    """Title and body, also for a muted notice: its title goes with the alert point into the database."""

    def __init__(
        self, stations: Callable[[], Mapping[str, Station]], language: str, tz: tzinfo, default_km_per_day: float
    ) -> None:
        self.stations = stations
        self.language = language
        self.tz = tz
        self.default_km_per_day = default_km_per_day

    def exec(self, n: Notice) -> None:
        n.message = render(
            n.event,
            self.language,
            self.stations(),
            self.tz,
            n.incident,
            self.default_km_per_day,
            repeat=n.repeat,
            flapping=n.verdict is Verdict.START,
        )


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
        n.targets = tuple(t.id for t in self.targets if t.wants(n.event, stations, n.incident))


class OutboxStage:
    """Committed to the outbox per target before any send; `queued` then wakes the delivery workers."""

    def __init__(self, outbox: Outbox, queued: Callable[[], None] = lambda: None) -> None:
        self.outbox = outbox
        self.queued = queued

    def exec(self, n: Notice) -> None:
        if n.muted is not None or n.message is None or not n.targets:
            return
        self.outbox.add(n.message, n.targets)
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
) -> AlertPath:
    """The alert path, in its order."""
    return AlertPath(
        ledger,
        IncidentStage(incidents),
        MuteStage(flaps, ledger, metrics),
        RenderStage(stations, language, tz, default_km_per_day),
        RouteStage(targets, stations),
        OutboxStage(outbox, queued),
        LedgerStage(ledger, flaps, metrics),
        incidents=incidents,
    )
