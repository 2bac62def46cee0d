"""The no-data rule: a series or a whole station silent for longer than factor × its reporting interval.

Silences inside the data (a gap longer than factor × interval) fire at the moment the series became overdue and
clear with the reading that ends the gap; silences up to now are found by `Rules.silent` at stream time, the
clock below. Memory O(1) per series (the last reading's time and value, in the SeriesTable) and per station.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules.checks import SeriesCheck
from monitor.rules.plan import NoDataRule, Plan
from monitor.rules.table import NO_TS, SeriesTable
from monitor.rules.wording import iso_minutes
from monitor.thresholds import NS_PER_HOUR, Limit, RuleSpec, ThresholdSet, format_duration


class StreamClock:
    """ "Stream time": the newest reading time seen, advanced by the wall clock since it was seen. Live, that is
    the wall clock; in a replay of old data, it follows the data, so a replay does not look silent (at any
    speed). A reading's time never moves it beyond the wall clock: one logger with its clock ahead must not
    make every other station look silent."""

    __slots__ = ("clock_ns", "clock_wall_ns", "started_ns")

    def __init__(self) -> None:
        self.clock_ns: int | None = None
        self.clock_wall_ns = 0
        self.started_ns: int | None = None  # the first reading's time (or the first `silent` call's)

    def stream_time(self, now_ns: int) -> int:
        """Stream time at wall time `now_ns`."""
        if self.clock_ns is None:
            return now_ns
        return self.clock_ns + max(0, now_ns - self.clock_wall_ns)

    def advance(self, first_ts: int, last_ts: int, now_ns: int) -> None:
        """A batch with readings from `first_ts` to `last_ts` arrived at wall time `now_ns`."""
        first_ts, last_ts = min(first_ts, now_ns), min(last_ts, now_ns)
        if self.started_ns is None:
            self.started_ns = first_ts
        if self.clock_ns is None or last_ts >= self.clock_ns:
            self.clock_ns = last_ts
            self.clock_wall_ns = now_ns


def series_gaps(
    plan: Plan,
    station: str,
    prev: int | None,
    prev_value: float,
    ts: np.ndarray,
    values: np.ndarray,
    started_ns: int | None,
) -> list[SeriesCheck]:
    """A series' no-data checks over a batch; any reading clears an alert the clock fired. A series the
    station file expects counts as silent since start-up before its first reading."""
    if not plan.no_data:
        return []
    if prev is None and plan.listed:
        prev = started_ns
    return [_gap_check(station, plan.parameter, nd, prev, prev_value, ts, values) for nd in plan.no_data]


def silent_series(
    table: SeriesTable, listed: Sequence[tuple[str, str]], now: int, started_ns: int
) -> list[SeriesCheck]:
    """Series overdue at stream time `now`: those evaluated before, in order of their first evaluation, then
    expected ones never evaluated. Time O(series with a no-data rule)."""
    out: list[SeriesCheck] = []
    seen = sorted((int(table.seq[s]), s) for s in table.nodata if table.seq[s] >= 0)
    slots = [s for _, s in seen]
    slots += [s for s in (table.slot(*k) for k in listed) if table.seq[s] < 0]
    for slot in slots:
        plan = table.plans[slot]
        if plan is None or not plan.no_data:
            continue
        station, parameter = table.keys[slot]
        last_ts = int(table.last_ts[slot])
        last = last_ts if last_ts != NO_TS else (started_ns if plan.listed else None)
        if last is None:
            continue
        value = float(table.last_value[slot])
        for nd in plan.no_data:
            if now - last > nd.limit_ns:
                out.append(_overdue(station, parameter, nd, last, value))
    return out


class StationSilence:
    """Station-wide no-data rules (`scope = "station"`): the same, over every reading of a station.
    The last reading time per station outlives a reload."""

    __slots__ = ("_last", "rules", "thresholds")

    def __init__(self, thresholds: ThresholdSet) -> None:
        self._last: dict[str, tuple[int, float]] = {}
        self.rules: list[RuleSpec] = []
        self.thresholds = thresholds
        self.reload(thresholds)

    def reload(self, thresholds: ThresholdSet) -> None:
        self.thresholds = thresholds
        self.rules = [r for r in thresholds.rules if r.kind == "no_data" and r.scope == "station"]

    def rules_of(self, station: str) -> list[RuleSpec]:
        return [r for r in self.rules if station_match(r, station, self.thresholds)]

    def _rule(self, r: RuleSpec) -> NoDataRule:
        return NoDataRule(r.name, r.interval_ns, r.factor, r.severity or self.thresholds.alerts.tiers[0][1], r.origin)

    def batch(self, readings: Sequence[Reading], started_ns: int | None) -> list[SeriesCheck]:
        """The station-wide checks of a batch, stations in order of appearance."""
        by_station: dict[str, list[int]] = {}
        for r in readings:
            by_station.setdefault(r.station, []).append(r.ts_ns)
        out: list[SeriesCheck] = []
        t = self.thresholds
        for sid, pairs in by_station.items():
            rules = self.rules_of(sid)
            last = self._last.get(sid)
            ts = np.unique(np.array(pairs, dtype=np.int64))
            if last is not None:
                ts = ts[ts > last[0]]
            if not len(ts):
                continue
            values = np.full(len(ts), np.nan)
            prev = last[0] if last is not None else (started_ns if sid in t.stations else None)
            for rule in rules:
                out.append(_gap_check(sid, "*", self._rule(rule), prev, math.nan, ts, values))
            self._last[sid] = (int(ts[-1]), math.nan)
        return out

    def overdue(self, now: int, started_ns: int) -> list[SeriesCheck]:
        """Stations silent at stream time `now` (seen ones and those with a station file)."""
        out: list[SeriesCheck] = []
        stations = set(self._last) | set(self.thresholds.stations)
        for sid in stations:
            rules = self.rules_of(sid)
            if not rules:
                continue
            last_seen = self._last.get(sid)
            last = last_seen[0] if last_seen is not None else started_ns
            for rule in rules:
                nd = self._rule(rule)
                if now - last > nd.limit_ns:
                    out.append(_overdue(sid, "*", nd, last, math.nan))
        return out


def station_match(rule: RuleSpec, station: str, t: ThresholdSet) -> bool:
    st = t.stations.get(station)
    if rule.stations and station not in rule.stations:
        return False
    return rule.intake is None or (st is not None and st.intake) == rule.intake


def _no_data_limit(parameter: str, nd: NoDataRule) -> Limit:
    every = format_duration(nd.interval_ns)
    return Limit(
        parameter,
        "no_data",
        nd.interval_ns / NS_PER_HOUR,
        None,
        "h",
        "no-data rule",
        "",
        nd.origin,
        origin=nd.origin,
        text=f"a reading every {every} (alarm after {format_duration(nd.limit_ns)} of silence)",
    )


def _gap_check(
    station: str,
    parameter: str,
    nd: NoDataRule,
    prev: int | None,
    prev_value: float,
    ts: np.ndarray,
    values: np.ndarray,
) -> SeriesCheck:
    """Points for one no-data rule over a batch: (overdue, violated) per long gap, then (reading, calm)."""
    times = np.concatenate(([prev], ts)) if prev is not None else ts
    vals = np.concatenate(([prev_value], values)) if prev is not None else values
    gaps = np.diff(times)
    over = np.flatnonzero(gaps > nd.limit_ns)
    if not over.size:
        pts_ts = ts[:1]
        pts_v = values[:1]
        viol = np.zeros(1, dtype=bool)
    else:
        pts_ts = np.empty(2 * over.size, dtype=np.int64)
        pts_ts[0::2] = times[over] + nd.limit_ns
        pts_ts[1::2] = times[over + 1]
        pts_v = np.empty(2 * over.size)
        pts_v[0::2] = vals[over]
        pts_v[1::2] = vals[over + 1]
        viol = np.zeros(2 * over.size, dtype=bool)
        viol[0::2] = True
    ratio = viol.astype(np.float64)
    limit = _no_data_limit(parameter, nd)
    silence = {int(pts_ts[2 * k + 1]): int(gaps[o]) for k, o in enumerate(over)}

    def detail(i: int) -> str:
        if viol[i]:
            return f"no reading since {iso_minutes(int(pts_ts[i]) - nd.limit_ns)}"
        gap = silence.get(int(pts_ts[i]))
        return f"readings again after {format_duration(gap)} of silence" if gap else "readings again"

    return SeriesCheck(
        station,
        parameter,
        limit,
        pts_ts,
        pts_v,
        ratio,
        viol,
        rule="no_data",
        key=nd.key,
        calm=~viol,
        severity=nd.severity,
        clear_hold_ns=0,
        detail=detail,
        category="sensor",
        confirm=1,
    )


def _overdue(station: str, parameter: str, nd: NoDataRule, last: int, value: float) -> SeriesCheck:
    at = last + nd.limit_ns
    return SeriesCheck(
        station,
        parameter,
        _no_data_limit(parameter, nd),
        np.array([at], dtype=np.int64),
        np.array([value]),
        np.ones(1),
        np.ones(1, dtype=bool),
        rule="no_data",
        key=nd.key,
        calm=np.zeros(1, dtype=bool),
        severity=nd.severity,
        clear_hold_ns=0,
        detail=lambda i: f"no reading since {iso_minutes(last)}",
        category="sensor",
        confirm=1,
    )
