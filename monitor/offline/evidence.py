"""What a bureau must be able to trust, measured on a scored run: notices per station and week, resolves inside
a plume, which injected fault caused each false alarm, and whether each blinding fault was announced.

Why apart from scoring: these figures need what only a scenario knows (its injected faults) or judge the
lifecycle rather than single alerts. Times are counted in analyser cycles of the series (the median interval
of its readings), because "within one cycle" is what a station can promise whatever its cadence.

Definitions (issue 13, "Done means"):
- a notice is a water alert's first message while unconfirmed; per station, notices are counted per 7 days from
  the start of the data;
- a resolve inside a plume is a confirmed water alert resolved while the truth of its series still violated the
  station's class limit (between the crossing and the first compliant time);
- a blinding fault (stuck, gap, below-DL run) is announced when a sensor alert of its station (the parameter's,
  or station-wide) is open at some time between the fault's start and two cycles after it (a stuck or
  below-DL fault starts at its first reading in the data: one that begins inside a gap shows only after it);
  a fault over within two cycles hides nothing that the next reading does not show, and is counted apart as
  "short";
- a blinding fault is "hidden in the series' own noise" when the clean readings of its series make the same
  pattern within two cycles more than once a year (a stuck fault: equal readings, at the series' rate of
  equal successive readings; a below-DL run: below-DL readings, at its below-DL share and the rate at which
  one follows another), or more often than the shipped `run_probability` per reading. The bar is fixed here,
  apart from the screens' own, so that screens can be compared against it. No detector can tell such a fault
  within two cycles without a false sensor alert a year, so it is counted apart, with whether and how late it
  was announced before it ended.
- a false alert's cause is the injected fault of its series whose time (widened by two cycles after its end,
  the time a confirmation takes) holds the alert's first notice; none: the river's own noise near the limit.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from monitor.offline.dataset import NS_PER_HOUR, Dataset
from monitor.offline.scoring import AlertSpan, Detection, Score
from monitor.thresholds.model import RUN_PROBABILITY
from simulators.faults import BLINDING, Fault
from simulators.sensors import BELOW_DL

NS_PER_WEEK = 7 * 24 * NS_PER_HOUR
NS_PER_YEAR = 365 * 24 * NS_PER_HOUR
ANNOUNCE_CYCLES = 2  # a blinding fault must raise a sensor alert within this many cycles of its start
NOTICE_CYCLES = 1  # the first notice within one cycle of the true crossing
CONFIRM_CYCLES = 2  # the confirmed alert within two


@dataclass(frozen=True)
class Blinding:
    """One blinding fault and the sensor alert that announced it (None: none did in time)."""

    fault: Fault
    cycle_ns: int
    alert: AlertSpan | None
    delay_ns: int | None  # the alert's first message after the fault's start (0: already open)
    hidden: bool = False  # the clean series makes this fault's pattern within two cycles too often to tell
    later_ns: int | None = None  # hidden: the first sensor alert's delay, if one came before the fault ended

    @property
    def short(self) -> bool:
        """Over within ANNOUNCE_CYCLES cycles: the next reading shows the river again."""
        return self.cycle_ns > 0 and self.fault.end_ns - self.fault.start_ns <= ANNOUNCE_CYCLES * self.cycle_ns


@dataclass
class Evidence:
    """The figures of one scored run."""

    score: Score
    notices_per_week: dict[str, list[int]]  # station -> notices in each 7 days from the start
    plume_resolves: list[tuple[AlertSpan, Detection]]
    causes: list[tuple[AlertSpan, Fault | None]]  # every false water alert and false notice, with its cause
    blinding: list[Blinding] = field(default_factory=list)
    unexplained_sensor: list[AlertSpan] = field(default_factory=list)  # sensor alerts no injected fault explains

    @property
    def max_notices_per_week(self) -> int:
        return max((max(w) for w in self.notices_per_week.values() if w), default=0)

    @property
    def blinding_due(self) -> list[Blinding]:
        """The blinding faults that had to be announced within two cycles (not short, not hidden in noise)."""
        return [b for b in self.blinding if not b.short and not b.hidden]

    @property
    def blinding_hidden(self) -> list[Blinding]:
        """The faults the series' own noise hides for two cycles (not short): announced later or not at all."""
        return [b for b in self.blinding if not b.short and b.hidden]

    @property
    def blinding_announced(self) -> list[Blinding]:
        return [b for b in self.blinding_due if b.alert is not None]

    def on_time(self) -> tuple[int, int, int]:
        """(first notices within NOTICE_CYCLES, confirmed alerts within CONFIRM_CYCLES, exceedances judged)."""
        first = self.score.first_latency().values()
        notice = sum(1 for d in first if _within(d, d.notice_latency_ns, NOTICE_CYCLES))
        confirm = sum(1 for d in first if _within(d, d.latency_ns, CONFIRM_CYCLES))
        return notice, confirm, len(first)


def _within(d: Detection, ns: int | None, cycles: int) -> bool:
    c = d.cycles(ns)
    return c is not None and c <= cycles


def evidence(sc: Score, ds: Dataset) -> Evidence:
    """Every figure of the module docstring for one scored run over `ds`."""
    return Evidence(
        sc,
        notices_per_week(sc, ds),
        plume_resolves(sc, ds),
        causes(sc, ds.faults or []),
        blinding(sc, ds.faults or [], ds),
        unexplained_sensor(sc, ds.faults) if ds.faults is not None else [],
    )


def notices_per_week(sc: Score, ds: Dataset) -> dict[str, list[int]]:
    """Per station: the water notices in each 7 days from the start of the data (every station, zeros too)."""
    weeks = max(1, -(-(ds.end_ns - ds.start_ns) // NS_PER_WEEK))
    counts: Counter[tuple[str, int]] = Counter(
        (a.station, min(weeks - 1, max(0, (a.notice_ns - ds.start_ns) // NS_PER_WEEK))) for a in sc.notices
    )
    return {st: [counts[(st, w)] for w in range(weeks)] for st in ds.stations}


def plume_resolves(sc: Score, ds: Dataset) -> list[tuple[AlertSpan, Detection]]:
    """Confirmed water alerts resolved while the truth of their series still violated the class limit."""
    out = []
    for d in sc.detections:
        e = d.exceedance
        for a in sc.water:
            if (a.station, a.parameter) != (e.station, e.parameter) or a.withdrawn or a.resolved_ns is None:
                continue
            if e.start_ns <= a.resolved_ns < e.end(ds.end_ns):
                out.append((a, d))
    return sorted(out, key=lambda x: (x[0].resolved_ns or 0, x[0].alert_id))


def causes(sc: Score, faults: Sequence[Fault]) -> list[tuple[AlertSpan, Fault | None]]:
    """Each false water alert and each false notice with the fault of its series that explains it."""
    out = []
    for a in sc.alerts:
        if not a.water or a.verdict != "false" or not (a.confirmed or a.noticed):
            continue
        slack = ANNOUNCE_CYCLES * a.cycle_ns
        mine = [
            f
            for f in faults
            if (f.station, f.parameter) == (a.station, a.parameter) and f.start_ns <= a.notice_ns <= f.end_ns + slack
        ]
        out.append((a, max(mine, key=lambda f: f.start_ns) if mine else None))
    return out


def blinding(sc: Score, faults: Sequence[Fault], ds: Dataset) -> list[Blinding]:
    """Each stuck, gap and below-DL fault, with the first sensor alert of its station open within two cycles
    (for a fault hidden in its series' noise, also the first one open before it ended)."""
    cycles = ds.cadences()
    rates, below_at = clean_rates(ds, faults)
    sensors: dict[str, list[AlertSpan]] = {}
    for a in sc.sensor:
        sensors.setdefault(a.station, []).append(a)
    out = []
    for f in sorted((f for f in faults if f.kind in BLINDING), key=lambda f: (f.start_ns, f.station, f.parameter)):
        start, end = f.start_ns, min(f.end_ns, ds.end_ns)  # cut by the end of the data: judged on what it holds
        seen = below_at.get((f.station, f.parameter))
        if f.kind != "gap" and seen is not None:  # a stuck or blank analyser shows from its first reading on
            i = int(np.searchsorted(seen[0], f.start_ns))
            if f.kind == "below_dl":  # ... a blank from its first below-DL reading (a check may come first)
                i += int(np.argmax(seen[1][i:])) if seen[1][i:].any() else len(seen[0]) - i
            start = int(seen[0][i]) if i < len(seen[0]) else end
        if start >= end:
            continue  # it touched no reading (inside a gap, or after the data): the gap is judged on its own
        f = replace(f, start_ns=start, end_ns=end)
        cycle = cycles.get((f.station, f.parameter), 0)
        mine = [a for a in sensors.get(f.station, []) if a.parameter in (f.parameter, "*")]
        best = _first_open(mine, f.start_ns, f.start_ns + ANNOUNCE_CYCLES * cycle)
        delay = None if best is None else max(0, best.notice_ns - f.start_ns)
        series = (f.station, f.parameter)
        kind = (
            "below_dl"
            if f.kind == "stuck" and series in below_at and _first_at(below_at[series], f.start_ns)
            else f.kind
        )
        hidden = _hidden(kind, rates.get(series), max(RUN_PROBABILITY, cycle / NS_PER_YEAR))
        later = _first_open(mine, f.start_ns, f.end_ns) if hidden else None
        later_ns = None if later is None else max(0, later.notice_ns - f.start_ns)
        out.append(Blinding(f, cycle, best, delay, hidden, later_ns))
    return out


def unexplained_sensor(sc: Score, faults: Sequence[Fault]) -> list[AlertSpan]:
    """Sensor alerts raised where no injected fault of their series (any of the station's, for a station-wide
    one) was under way or had ended within two cycles: a sensor alert that cries wolf."""
    by_station: dict[str, list[Fault]] = {}
    for f in faults:
        by_station.setdefault(f.station, []).append(f)
    out = []
    for a in sc.sensor:
        slack = ANNOUNCE_CYCLES * a.cycle_ns
        if not any(
            a.parameter in (f.parameter, "*") and f.start_ns <= a.notice_ns <= f.end_ns + slack
            for f in by_station.get(a.station, [])
        ):
            out.append(a)
    return out


def _first_open(alerts: Sequence[AlertSpan], start_ns: int, deadline_ns: int) -> AlertSpan | None:
    """The earliest of `alerts` raised by the deadline and still open at `start_ns` or later."""
    open_in_time = [
        a for a in alerts if a.notice_ns <= deadline_ns and (a.resolved_ns is None or a.resolved_ns > start_ns)
    ]
    return min(open_in_time, key=lambda a: a.notice_ns, default=None)


def _first_at(readings: tuple[np.ndarray, np.ndarray], ts_ns: int) -> bool:
    """Whether the series' first reading at or after `ts_ns` is below the DL (a stuck analyser that holds a
    below-DL reading makes a below-DL run, and is as hidden as one)."""
    ts, below = readings
    i = int(np.searchsorted(ts, ts_ns))
    return bool(i < len(ts) and below[i])


def _hidden(kind: str, rates: tuple[float, float, float] | None, bar: float) -> bool:
    """Whether the clean series makes the fault's pattern over its first two cycles at least `bar` per reading."""
    if rates is None or kind == "gap":
        return False
    equal, share, again = rates
    if kind == "stuck":  # the reading before the fault and the next ANNOUNCE_CYCLES + 1 all equal
        return bool(equal ** (ANNOUNCE_CYCLES + 1) >= bar)
    return bool(share * again**ANNOUNCE_CYCLES >= bar)  # below_dl: ANNOUNCE_CYCLES + 1 below in a row


Series = tuple[str, str]


def clean_rates(
    ds: Dataset, faults: Sequence[Fault]
) -> tuple[dict[Series, tuple[float, float, float]], dict[Series, tuple[np.ndarray, np.ndarray]]]:
    """Per series, from its readings outside every injected fault (and one cycle around it): the rate of equal
    successive readings above the DL, the share of readings below the DL, and the rate at which a below-DL
    reading follows another; and every reading's (time, below the DL). Empty for a streamed Dataset."""
    c = ds.columns
    if c is None:
        return {}, {}
    is_below = np.array([f == BELOW_DL for f in ds.flags] + [False])  # flag index -1: no flag
    cycles = ds.cadences()
    windows: dict[tuple[str, str], list[Fault]] = {}
    for f in faults:
        windows.setdefault((f.station, f.parameter), []).append(f)
    order = np.lexsort((c.ts, c.parameter, c.station))
    key = c.station[order].astype(np.int64) * (len(ds.parameters) + 1) + c.parameter[order]
    bounds = np.flatnonzero(np.diff(key)) + 1
    out = {}
    readings = {}
    for idx in np.split(order, bounds):
        if len(idx) < 3:
            continue
        series = (ds.stations[c.station[idx[0]]], ds.parameters[c.parameter[idx[0]]])
        ts, v, below = c.ts[idx], c.value[idx], is_below[c.flag[idx]]
        clean = np.ones(len(idx), dtype=bool)
        pad = cycles.get(series, 0)
        for f in windows.get(series, []):
            clean &= (ts < f.start_ns - pad) | (ts > f.end_ns + pad)
        pair = clean[1:] & clean[:-1]
        above_pair = pair & ~below[1:] & ~below[:-1]
        equal = float(np.mean(v[1:][above_pair] == v[:-1][above_pair])) if above_pair.any() else 0.0
        share = float(np.mean(below[clean])) if clean.any() else 0.0
        after_below = pair & below[:-1]
        again = float(np.mean(below[1:][after_below])) if after_below.any() else 0.0
        out[series] = (equal, share, again)
        readings[series] = (ts, below)
    return out, readings
