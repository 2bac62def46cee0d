"""Forecasts against the ground truth: were the stations ahead told in time, and was the forecast right?

For each station with a forecast: the lead time of the first forecast that said "exceeds" before the true
crossing, and of the first forecast notice (what a water company is actually told: a forecast saying "exceeds"
within the horizon); the error of the forecast in force at the crossing (the last one issued before it) on the crossing
time, in hours and as a share of the travel time from the incident's first true crossing; its peak against the
true worst value (a factor, >= 1); and, for a station whose truth never exceeded, whether a forecast said
"exceeds" (a row of the CSV) and whether a notice told it so (what counts for crying wolf).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from monitor.alerts.evaluator import AlertEvent
from monitor.alerts.forecast import StationForecast
from monitor.alerts.forecast_notice import ISSUED, UPDATED
from monitor.offline.dataset import NS_PER_HOUR, Dataset, Exceedance
from monitor.thresholds import ThresholdSet

COLUMNS = (
    "issued_at",
    "incident",
    "station",
    "arrival",
    "peak_time",
    "peak_value",
    "peak_low",
    "peak_high",
    "exceeds",
    "exceed_from",
    "exceed_until",
)


@dataclass(frozen=True, slots=True)
class ForecastRow:
    issued_ns: int
    incident: str
    f: StationForecast


@dataclass(frozen=True, slots=True)
class StationScore:
    station: str
    crossing_ns: int | None  # the true first crossing of the station's class limit; None: never exceeded
    lead_h: float | None  # first correct "exceeds" before the crossing, hours ahead
    arrival_error_h: float | None  # forecast in force at the crossing: exceed_from - crossing
    arrival_share: float | None  # |error| / travel time from the incident's first true crossing
    peak_factor: float | None  # max(forecast, truth) / min(forecast, truth)
    false_warning: bool  # said "exceeds" although the truth never did
    notice_lead_h: float | None = None  # first forecast notice (issued or updated) before the crossing, hours ahead
    false_notice: bool = False  # a forecast notice although the truth never exceeded


def _time(ns: int | None) -> str:
    if ns is None:
        return ""
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_forecasts_csv(path: Path, rows: Sequence[ForecastRow]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(COLUMNS)
        for r in rows:
            f = r.f
            w.writerow(
                [
                    _time(r.issued_ns),
                    r.incident,
                    f.station,
                    _time(f.arrival_ns),
                    _time(f.peak_ns),
                    f"{f.peak_value:.6g}",
                    f"{f.peak_low:.6g}",
                    f"{f.peak_high:.6g}",
                    "true" if f.exceeds else "false",
                    _time(f.exceed_from_ns),
                    _time(f.exceed_until_ns),
                ]
            )


def _crossings(ds: Dataset, thresholds: ThresholdSet, parameter: str, default_class: str) -> dict[str, Exceedance]:
    """The first true exceedance of each station's own class limit."""
    out: dict[str, Exceedance] = {}
    for e in ds.truth or []:
        if e.parameter != parameter:
            continue
        klass, _ = thresholds.class_of(e.station, default_class)
        if e.klass == klass and (e.station not in out or e.start_ns < out[e.station].start_ns):
            out[e.station] = e
    return out


def score(
    rows: Sequence[ForecastRow],
    ds: Dataset,
    thresholds: ThresholdSet,
    parameter: str = "cd",
    default_class: str = "III",
    notices: Sequence[AlertEvent] = (),
) -> list[StationScore]:
    """One score per station that got a forecast, in river order; `notices`: the forecast notices queued."""
    crossings = _crossings(ds, thresholds, parameter, default_class)
    told: dict[str, list[int]] = {}
    for n in notices:
        if n.parameter == parameter and n.state in (ISSUED, UPDATED):
            told.setdefault(n.station, []).append(n.ts_ns)
    first = min((e.start_ns for e in crossings.values()), default=None)
    by_station: dict[str, list[ForecastRow]] = {}
    for r in sorted(rows, key=lambda r: r.issued_ns):
        by_station.setdefault(r.f.station, []).append(r)
    out = []
    for station, rs in sorted(by_station.items(), key=lambda kv: kv[1][0].f.river_km):
        cross = crossings.get(station)
        if cross is None:
            out.append(
                StationScore(
                    station, None, None, None, None, None, any(r.f.exceeds for r in rs), None, bool(told.get(station))
                )
            )
            continue
        before = [r for r in rs if r.issued_ns < cross.start_ns]
        warned = next((r for r in before if r.f.exceeds), None)
        lead = (cross.start_ns - warned.issued_ns) / NS_PER_HOUR if warned else None
        noticed = [ts for ts in told.get(station, []) if ts < cross.start_ns]
        notice_lead = (cross.start_ns - min(noticed)) / NS_PER_HOUR if noticed else None
        err = share = factor = None
        if before:
            f = before[-1].f
            predicted = f.exceed_from_ns if f.exceed_from_ns is not None else f.arrival_ns
            err = (predicted - cross.start_ns) / NS_PER_HOUR
            travel = (cross.start_ns - first) / NS_PER_HOUR if first is not None else 0.0
            share = abs(err) / travel if travel > 0 else None
            if math.isfinite(cross.worst) and cross.worst > 0 and f.peak_value > 0:
                factor = max(f.peak_value, cross.worst) / min(f.peak_value, cross.worst)
        out.append(StationScore(station, cross.start_ns, lead, err, share, factor, False, notice_lead))
    return out


def score_lines(scores: Sequence[StationScore]) -> list[str]:
    """The backtest's forecast table."""

    def num(x: float | None, fmt: str) -> str:
        return "-" if x is None else format(x, fmt)

    lines = [
        f"{'station':<16}{'crossed':<8}{'lead h':>8}{'notice h':>10}{'arrival err h':>15}{'share':>8}{'peak x':>8}"
        "  false  false notice"
    ]
    for s in scores:
        lines.append(
            f"{s.station:<16}{('yes' if s.crossing_ns is not None else 'no'):<8}{num(s.lead_h, '.0f'):>8}"
            f"{num(s.notice_lead_h, '.0f'):>10}{num(s.arrival_error_h, '+.1f'):>15}{num(s.arrival_share, '.0%'):>8}"
            f"{num(s.peak_factor, '.2f'):>8}  {'yes' if s.false_warning else 'no':<5}  "
            f"{'yes' if s.false_notice else 'no'}"
        )
    return lines
