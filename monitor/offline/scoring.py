"""Alerts scored against a reference: false alerts, missed exceedances, detection latency.

The reference is the scenario's ground truth (when the TRUE concentration crossed each class limit), or a
ground-truth file, or else the readings themselves ("measured"). Water alerts and sensor alerts are kept
apart: a sensor alert is about the instrument and is never a false or a true pollution alarm. A water alert
that began as an unconfirmed first notice keeps both times: the notice (`first_ns`) and the confirmed alert
(`confirmed_ns`); a notice that was withdrawn never became an alert. A confirmed water alert is false when it
is open only outside every exceedance of its station's class limit, widened by a tolerance on both sides; an
exceedance is missed when no confirmed alert is open at any time within that widened window; detection
latency is the confirmed alert's time minus the true crossing (negative: an early warning), and the first
notice's latency beside it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from monitor.alerts.evaluator import AlertEvent
from monitor.offline.dataset import NS_PER_HOUR, Dataset, Exceedance
from monitor.offline.replay import Run
from monitor.thresholds import Limit, ThresholdSet

DEFAULT_TOLERANCE_NS = 6 * NS_PER_HOUR
NOTICE_STATES = frozenset({"unconfirmed", "withdrawn"})


@dataclass
class AlertSpan:
    """One alert (an alert id) from its first notice to resolved (or withdrawn), as the lifecycle reported it."""

    alert_id: str
    station: str
    parameter: str
    rule: str
    started_ns: int
    resolved_ns: int | None  # resolved, or withdrawn (an unconfirmed notice the next reading did not confirm)
    severity: str  # the highest it reached
    peak_value: float
    peak_ratio: float
    limit: Limit
    escalations: int = 0
    verdict: str = ""  # "true" | "false" | "" (no reference for this series, or a sensor alert)
    category: str = "water"  # "water" | "sensor"
    first_ns: int | None = None  # its first message (a notice, or the alert itself); None: started_ns
    confirmed_ns: int | None = None  # when it became the alert a bureau acts on; None: never (a notice only)
    noticed: bool = False  # it began as an unconfirmed first notice
    withdrawn: bool = False  # the notice was withdrawn
    cycle_ns: int = 0  # the series' analyser cycle; 0: unknown

    @property
    def water(self) -> bool:
        return self.category == "water" and self.rule != "no_data"

    @property
    def sensor(self) -> bool:
        return not self.water

    @property
    def confirmed(self) -> bool:
        return self.confirmed_ns is not None

    @property
    def notice_ns(self) -> int:
        return self.first_ns if self.first_ns is not None else self.started_ns


@dataclass
class Detection:
    exceedance: Exceedance
    first_alert: AlertSpan | None  # the first confirmed water alert within the widened window
    first_notice: AlertSpan | None = None  # the first water alert or notice within it
    cycle_ns: int = 0  # the series' analyser cycle (0: unknown)

    @property
    def latency_ns(self) -> int | None:
        """Confirmed alert minus the crossing: when a bureau would act."""
        a = self.first_alert
        if a is None:
            return None
        return (a.confirmed_ns if a.confirmed_ns is not None else a.started_ns) - self.exceedance.start_ns

    @property
    def notice_latency_ns(self) -> int | None:
        """First notice (or alert) minus the crossing: when someone first heard of it."""
        a = self.first_notice or self.first_alert
        return None if a is None else a.notice_ns - self.exceedance.start_ns

    def cycles(self, ns: int | None) -> float | None:
        """A latency in analyser cycles of the series (None when the cycle or the latency is unknown)."""
        return None if ns is None or self.cycle_ns <= 0 else ns / self.cycle_ns


@dataclass
class Score:
    run_name: str
    alerts: list[AlertSpan]
    reference: str  # "truth" | "measured"
    tolerance_ns: int
    detections: list[Detection]
    events: int

    @property
    def water(self) -> list[AlertSpan]:
        """Confirmed water alerts: the alerts a bureau acts on."""
        return [a for a in self.alerts if a.water and a.confirmed]

    @property
    def sensor(self) -> list[AlertSpan]:
        return [a for a in self.alerts if a.sensor]

    @property
    def notices(self) -> list[AlertSpan]:
        """Water alerts that began as an unconfirmed first notice (confirmed later, withdrawn, or still open)."""
        return [a for a in self.alerts if a.water and a.noticed]

    @property
    def withdrawn(self) -> list[AlertSpan]:
        return [a for a in self.notices if a.withdrawn]

    @property
    def false_alerts(self) -> list[AlertSpan]:
        return [a for a in self.water if a.verdict == "false"]

    @property
    def missed(self) -> list[Detection]:
        return [d for d in self.detections if d.first_alert is None]

    def by_severity(self) -> Counter[str]:
        return Counter(a.severity for a in self.water)

    def first_latency(self) -> dict[tuple[str, str], Detection]:
        """Per series: the detection of its first exceedance (what "caught N minutes later" compares)."""
        out: dict[tuple[str, str], Detection] = {}
        for d in sorted(self.detections, key=lambda d: d.exceedance.start_ns):
            out.setdefault((d.exceedance.station, d.exceedance.parameter), d)
        return out


def spans(events: Iterable[AlertEvent], tiers: Sequence[tuple[float, str]]) -> list[AlertSpan]:
    """Alert events to one span per alert id, in order of start."""
    rank = {name: i for i, (_, name) in enumerate(tiers)}
    out: dict[str, AlertSpan] = {}
    for e in events:
        a = out.get(e.alert_id)
        if a is None:
            a = out[e.alert_id] = AlertSpan(
                e.alert_id,
                e.station,
                e.parameter,
                e.rule,
                e.started_ns,
                None,
                e.severity,
                e.peak_value,
                e.peak_ratio,
                e.limit,
                category=e.category,
                first_ns=e.ts_ns,
                noticed=e.state == "unconfirmed",
                cycle_ns=e.cycle_ns,
            )
        if e.state == "escalated":
            a.escalations += 1
        if e.state not in NOTICE_STATES and a.confirmed_ns is None:
            a.confirmed_ns = e.ts_ns
        if e.state == "withdrawn":
            a.withdrawn, a.resolved_ns = True, e.ts_ns
        if rank.get(e.severity, -1) > rank.get(a.severity, -1):
            a.severity = e.severity
        if e.state == "resolved":
            a.resolved_ns = e.ts_ns
        if e.peak_ratio >= a.peak_ratio:
            a.peak_value, a.peak_ratio = e.peak_value, e.peak_ratio
        if e.cycle_ns and not a.cycle_ns:
            a.cycle_ns = e.cycle_ns
    return sorted(out.values(), key=lambda a: (a.started_ns, a.alert_id))


def score(
    run: Run, ds: Dataset, reference: list[Exceedance], default_class: str, tolerance_ns: int = DEFAULT_TOLERANCE_NS
) -> Score:
    """False alerts, detections, missed exceedances and latencies of one run against a reference."""
    alerts = spans(run.events, run.variant.thresholds.alerts.tiers)
    return score_alerts(
        run.variant.name, alerts, run.variant.thresholds, ds, reference, default_class, tolerance_ns, len(run.events)
    )


def score_alerts(
    name: str,
    alerts: list[AlertSpan],
    t: ThresholdSet,
    ds: Dataset,
    reference: list[Exceedance],
    default_class: str,
    tolerance_ns: int = DEFAULT_TOLERANCE_NS,
    events: int = 0,
) -> Score:
    """Judge water alerts (of a run, or from the ledger) against the exceedances of each station's class limit."""
    klass = {st: t.class_of(st, default_class)[0] for st in ds.stations}
    mine: dict[tuple[str, str], list[Exceedance]] = {}
    for e in reference:
        if klass.get(e.station) == e.klass:
            mine.setdefault((e.station, e.parameter), []).append(e)
    source = reference[0].source if reference else "measured"
    cycles = ds.cadences()
    for a in alerts:
        if not a.cycle_ns:
            a.cycle_ns = cycles.get((a.station, a.parameter), 0)
        if not a.water:
            continue
        windows = mine.get((a.station, a.parameter), [])
        until = a.resolved_ns if a.resolved_ns is not None else ds.end_ns
        inside = any(
            a.started_ns <= e.end(ds.end_ns) + tolerance_ns and until >= e.start_ns - tolerance_ns for e in windows
        )
        a.verdict = "true" if inside else "false"
    detections = []
    for key, eps in mine.items():
        if not _judges(t, key[0], key[1], default_class):
            continue
        candidates = [a for a in alerts if (a.station, a.parameter) == key and a.water]
        for e in eps:
            lo, hi = e.start_ns - tolerance_ns, e.end(ds.end_ns) + tolerance_ns
            hits = [a for a in candidates if a.started_ns <= hi and (a.resolved_ns is None or a.resolved_ns >= lo)]
            alerts_hit = [a for a in hits if a.confirmed_ns is not None and a.confirmed_ns <= hi]
            detections.append(
                Detection(
                    e,
                    min(alerts_hit, key=lambda a: a.confirmed_ns or 0) if alerts_hit else None,
                    min(hits, key=lambda a: a.notice_ns) if hits else None,
                    cycles.get(key, 0),
                )
            )
    detections.sort(key=lambda d: (d.exceedance.start_ns, d.exceedance.station, d.exceedance.parameter))
    return Score(name, alerts, source, tolerance_ns, detections, events)


def _judges(t: ThresholdSet, station: str, parameter: str, default_class: str) -> bool:
    """Whether the variant evaluates this series at all (a parameter without a limit cannot miss anything)."""
    return t.spec(station, parameter, default_class) is not None
