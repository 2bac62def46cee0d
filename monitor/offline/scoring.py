"""Alerts scored against a reference: false alerts, missed exceedances, detection latency.

The reference is the scenario's ground truth (when the TRUE concentration crossed each class limit), or a
ground-truth file, or else the readings themselves ("measured"). An alert is false when it fires outside
every exceedance of its station's class limit, widened by a tolerance on both sides; an exceedance is missed
when no alert is open at any time within that widened window; detection latency is the first alert's start
minus the true crossing (negative: an early warning).
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


@dataclass
class AlertSpan:
    """One alert (an alert id) from firing to resolved, as the lifecycle reported it."""

    alert_id: str
    station: str
    parameter: str
    rule: str
    started_ns: int
    resolved_ns: int | None
    severity: str  # the highest it reached
    peak_value: float
    peak_ratio: float
    limit: Limit
    escalations: int = 0
    verdict: str = ""  # "true" | "false" | "" (no reference for this series, or a no-data alert)


@dataclass
class Detection:
    exceedance: Exceedance
    first_alert: AlertSpan | None

    @property
    def latency_ns(self) -> int | None:
        return None if self.first_alert is None else self.first_alert.started_ns - self.exceedance.start_ns


@dataclass
class Score:
    run_name: str
    alerts: list[AlertSpan]
    reference: str  # "truth" | "measured"
    tolerance_ns: int
    detections: list[Detection]
    events: int

    @property
    def concentration(self) -> list[AlertSpan]:
        return [a for a in self.alerts if a.rule != "no_data"]

    @property
    def false_alerts(self) -> list[AlertSpan]:
        return [a for a in self.alerts if a.verdict == "false"]

    @property
    def missed(self) -> list[Detection]:
        return [d for d in self.detections if d.first_alert is None]

    def by_severity(self) -> Counter[str]:
        return Counter(a.severity for a in self.concentration)

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
            )
        if e.state == "escalated":
            a.escalations += 1
        if rank.get(e.severity, -1) > rank.get(a.severity, -1):
            a.severity = e.severity
        if e.state == "resolved":
            a.resolved_ns = e.ts_ns
        if e.peak_ratio >= a.peak_ratio:
            a.peak_value, a.peak_ratio = e.peak_value, e.peak_ratio
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
    """Judge alerts (of a run, or from the ledger) against the exceedances of each station's class limit."""
    klass = {st: t.class_of(st, default_class)[0] for st in ds.stations}
    mine: dict[tuple[str, str], list[Exceedance]] = {}
    for e in reference:
        if klass.get(e.station) == e.klass:
            mine.setdefault((e.station, e.parameter), []).append(e)
    source = reference[0].source if reference else "measured"
    for a in alerts:
        if a.rule == "no_data":
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
        candidates = [a for a in alerts if (a.station, a.parameter) == key and a.rule != "no_data"]
        for e in eps:
            lo, hi = e.start_ns - tolerance_ns, e.end(ds.end_ns) + tolerance_ns
            hits = [a for a in candidates if a.started_ns <= hi and (a.resolved_ns is None or a.resolved_ns >= lo)]
            detections.append(Detection(e, min(hits, key=lambda a: a.started_ns) if hits else None))
    detections.sort(key=lambda d: (d.exceedance.start_ns, d.exceedance.station, d.exceedance.parameter))
    return Score(name, alerts, source, tolerance_ns, detections, events)


def _judges(t: ThresholdSet, station: str, parameter: str, default_class: str) -> bool:
    """Whether the variant evaluates this series at all (a parameter without a limit cannot miss anything)."""
    return t.spec(station, parameter, default_class) is not None
