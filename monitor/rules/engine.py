"""Rules: each batch of readings, grouped per series, screened and judged with numpy over ring buffers.

A series is one (station, parameter). Per batch, each series' readings are put in time order; readings not
newer than the series' last one are late and dropped (a reading from the past cannot change an alert that was
already decided, and the journal's unique key already absorbs redeliveries). Then, in order: screening
(monitor.rules.screen) marks readings that are not measurements of the river; each rule kind
(monitor.rules.kinds, monitor.rules.nodata) turns the accepted readings into a `SeriesCheck` (verdict per
reading) for `monitor.alerts.evaluator`. Simple series take the cross-series fast path (monitor.rules.fastpath)
when their batch allows; everything else takes the per-series path here, the reference.

Work per batch: about 0.25 µs per reading on the fast path and nothing per quiet series; each series on the
per-series path costs O(its readings) numpy plus ~40 µs of Python. Memory per series: ~260 bytes (see
monitor.rules.table), plus its plan, shared by every series with the same one; each rule states what it adds.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Collection, Sequence
from operator import itemgetter

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules.checks import AlertKey, SeriesCheck
from monitor.rules.dependencies import Dependencies
from monitor.rules.drift import DriftRefs, DriftScreen
from monitor.rules.fastpath import QuietChecks, merge, off_fast_path, quiet_batch
from monitor.rules.kinds import Judge
from monitor.rules.nodata import StationSilence, StreamClock, series_gaps, silent_series, station_match
from monitor.rules.plan import Plan, Planner, SeriesState
from monitor.rules.screen import Suspect, screen
from monitor.rules.sensors import SensorHealth, learnt_gaps, parameter_name, sensor_check, sensor_key
from monitor.rules.table import DEPENDENCY, NO_TS, SIMPLE, SLOW, SeriesTable
from monitor.rules.timeofday import local_time
from monitor.thresholds import Limit, ThresholdSet, format_duration

_TS, _VALUE = itemgetter(2), itemgetter(3)


class Rules:
    """Stateful per-series evaluation; `evaluate(batch)` returns one SeriesCheck per (series, rule) touched
    (the fast path leaves out or summarises the compliant ones, see `evaluate`).

    Also the clock of the no-data rule (`stream_time`, see StreamClock). Each series seen gets a slot in
    `table` (see SeriesTable). `fast=False` sends every series through the per-series path (the reference, for
    tests and benchmarks).
    """

    quiet_expand = 64  # a caller that does not pass open alerts gets up to this many quiet series as SeriesChecks

    def __init__(self, thresholds: ThresholdSet, default_class: str, fast: bool = True) -> None:
        self._thresholds = thresholds
        self._default_class = default_class
        self.fast = fast
        self.table = SeriesTable(Planner(thresholds, default_class))
        self.clock = StreamClock()
        self.stations = StationSilence(thresholds)
        self.screened: Counter[str] = Counter()
        self.suspects: list[Suspect] = []  # of the last batch: what screening set aside
        self._judge = Judge(Dependencies(), {})
        self._health = SensorHealth(self._station_name, thresholds.alerts.tiers[0][1])
        self._clock_open: dict[tuple[str, str], int] = {}  # series with an open clock fault -> when it was seen
        self._drift_refs = DriftRefs(thresholds)  # readings of the series drift screens compare with
        self._drift = DriftScreen(self._drift_refs, self._station_name)
        self._listed = self._expected(thresholds)

    @property
    def thresholds(self) -> ThresholdSet:
        return self._thresholds

    @property
    def pending(self) -> dict[tuple[str, str, str], str]:
        """(station, parameter, rule) -> why it cannot alert yet (a rolling mean whose window has not filled)."""
        return self._judge.pending

    @property
    def late(self) -> int:
        """Readings left out of the rules as late or repeated, since start-up."""
        return self.table.late

    @staticmethod
    def _expected(t: ThresholdSet) -> list[tuple[str, str]]:
        return [(sid, pid) for sid, st in t.stations.items() for pid in st.expect]

    def reload(self, thresholds: ThresholdSet, default_class: str | None = None) -> None:
        """Swap in new thresholds; rolling state of series that still have a plan is kept (see Evaluator)."""
        self._thresholds = thresholds
        if default_class is not None:
            self._default_class = default_class
        self._listed = self._expected(thresholds)
        self._health.severity = thresholds.alerts.tiers[0][1]
        self.stations.reload(thresholds)
        self._drift_refs.reload(thresholds)
        self.pending.clear()
        self.table.replan(Planner(thresholds, self._default_class))

    # ---- plans

    def limit(self, station: str, parameter: str) -> Limit | None:
        """The limit a series is held to now (for the default band); kept for callers of the first version."""
        spec = self._thresholds.spec(station, parameter, self._default_class)
        return None if spec is None else spec.at()

    def plan(self, station: str, parameter: str) -> Plan | None:
        return self.table.plans[self.table.slot(station, parameter)]

    def alert_keys(self, station: str, parameter: str) -> set[str]:
        """The alert keys a series can have under the current thresholds (reload keeps only these alerts)."""
        if parameter == "*":
            return {r.name for r in self.stations.rules if station_match(r, station, self._thresholds)}
        plan = self.plan(station, parameter)
        if plan is None:
            return set()
        keys = {r.name for r in plan.extra} | {n.key for n in plan.no_data}
        if plan.spec is not None:
            keys.add("")
        if plan.sensors:
            keys |= {sensor_key(k) for k in ("range", "stuck", "below_dl", "maintenance", "gap")}
        if plan.screen.drift is not None:
            keys.add(sensor_key("drift"))
        keys.add(sensor_key("clock"))
        return keys

    def stream_time(self, now_ns: int) -> int:
        """Stream time at wall time `now_ns` (see StreamClock)."""
        return self.clock.stream_time(now_ns)

    # ---- evaluation

    def evaluate(
        self, readings: Sequence[Reading], now_ns: int | None = None, open_alerts: Collection[AlertKey] | None = None
    ) -> list[SeriesCheck | QuietChecks]:
        """Screen and judge a batch; SeriesChecks in the order the series first appear, each in time order.

        Fast path (see monitor.rules.fastpath): with `open_alerts` (the keys of the alerts open now), a
        compliant simple series without an open limit alert gets no SeriesCheck, as it cannot cause an event.
        Without it, more than `quiet_expand` such series come as one QuietChecks at the end (AlertBook.update
        takes it), fewer as their own SeriesChecks in their place.
        """
        self.suspects = []
        if not readings:
            return []
        self._health.open = open_alerts if open_alerts is not None else ()
        if self._drift_refs.active:
            self._drift_refs.record(readings)
        if not self.fast:
            return [*self._evaluate_slow(readings, now_ns)]
        table = self.table
        n = len(readings)
        slots = table.slots(readings)
        ts = np.fromiter(map(_TS, readings), dtype=np.int64, count=n)
        values = np.fromiter(map(_VALUE, readings), dtype=np.float64, count=n)
        self.clock.advance(int(ts.min()), int(ts.max()), time.time_ns() if now_ns is None else now_ns)
        kind = table.kind[slots]
        planned = (kind == SIMPLE) | (kind == SLOW)
        new = planned & (table.seq[slots] < 0)
        if new.any():  # first evaluation, in order of first appearance (as the per-series path does it)
            unique, first = np.unique(slots[new], return_index=True)
            for slot in unique[np.argsort(first)].tolist():
                table.see(slot)
        on_slow = off_fast_path(table, readings, slots, kind, ts, values, open_alerts)
        quiet = ~on_slow
        kept = quiet_batch(table, slots[quiet], ts[quiet], values[quiet]) if quiet.any() else None
        groups: dict[int, list[Reading]] = {}
        on_slow &= planned | (kind == DEPENDENCY)
        if on_slow.any():
            idx = np.flatnonzero(on_slow)
            for i, slot in zip(idx.tolist(), slots[idx].tolist(), strict=True):
                rows = groups.get(slot)
                if rows is None:
                    groups[slot] = [readings[i]]
                else:
                    rows.append(readings[i])
        per_series = self._groups(groups)
        checks: list[SeriesCheck | QuietChecks] = [*per_series]
        if kept is not None and open_alerts is None:  # the caller cannot tell which quiet series matter
            bulk = QuietChecks(table, self._judge, *kept)
            if bulk.count > self.quiet_expand:
                checks.append(bulk)
            else:
                checks = [*merge(table, slots, per_series, bulk.expand())]
        if self.stations.rules:
            checks += self.stations.batch(readings, self.clock.started_ns)
        return checks

    def _evaluate_slow(self, readings: Sequence[Reading], now_ns: int | None) -> list[SeriesCheck]:
        """The per-series path for a whole batch: the reference the fast path must agree with."""
        groups: dict[int, list[Reading]] = {}
        for r in readings:
            groups.setdefault(self.table.slot(r.station, r.parameter), []).append(r)
        first = min(r.ts_ns for r in readings)
        last = max(r.ts_ns for r in readings)
        self.clock.advance(first, last, time.time_ns() if now_ns is None else now_ns)
        checks = self._groups(groups)
        if self.stations.rules:
            checks += self.stations.batch(readings, self.clock.started_ns)
        return checks

    def _groups(self, groups: dict[int, list[Reading]]) -> list[SeriesCheck]:
        table = self.table
        if table.dependencies:
            for slot, rows in groups.items():
                key = table.keys[slot]
                if key[1] in table.dependencies:
                    self._judge.deps.record(key, rows)
        checks: list[SeriesCheck] = []
        for slot, rows in groups.items():
            checks += self._series_batch(slot, rows)
        return checks

    def _series_batch(self, slot: int, rows: list[Reading]) -> list[SeriesCheck]:
        """The per-series path for one series' readings of a batch."""
        table = self.table
        plan = table.plans[slot]
        if plan is None:
            return []
        station = table.keys[slot][0]
        if table.seq[slot] < 0:
            table.see(slot)
        st = table.states.get(slot)
        if st is None and plan.stateful:
            st = table.states[slot] = SeriesState()
        n = len(rows)
        ts = np.fromiter((r.ts_ns for r in rows), dtype=np.int64, count=n)
        values = np.fromiter((r.value for r in rows), dtype=np.float64, count=n)
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        flags = [rows[i].flag for i in order] if any(r.flag for r in rows) else None
        keep = np.ones(n, dtype=bool)
        last = int(table.last_ts[slot])
        prev = None if last == NO_TS else last
        if prev is not None:
            keep &= ts > prev
        keep[1:] &= ts[1:] != ts[:-1]
        if not keep.all():
            table.count_late(slot, int((~keep).sum()))
            ts, values = ts[keep], values[keep]
            if flags is not None:
                flags = [f for f, k in zip(flags, keep, strict=True) if k]
        if not len(ts):
            return []
        prev_value = float(table.last_value[slot])
        checks = series_gaps(plan, station, prev, prev_value, ts, values, self.clock.started_ns)
        if st is not None and plan.sensors and plan.screen.gap_factor and not plan.no_data:
            gap = learnt_gaps(
                plan, station, st, prev, ts, values, self._sensor_severity, self._station_name, self._health.open
            )
            if gap is not None:
                checks.append(gap)
            table.gap_ns[slot] = int(plan.screen.gap_factor * st.interval)
        table.last_ts[slot], table.last_value[slot] = int(ts[-1]), float(values[-1])
        if table.kind[slot] == SIMPLE:
            table.set_window(slot)
        ts, values, quality, dl = screen(plan, station, st, ts, values, flags, self.suspects, self.screened)
        if st is not None and plan.screen.drift is not None:
            drift = self._drift.screen(
                plan,
                station,
                st,
                ts,
                values,
                quality,
                self.suspects,
                self.screened,
                self._sensor_severity,
                self._health.open,
            )
            if drift is not None:
                checks.append(drift)
        if st is not None and plan.sensors:
            checks += self._health.checks(plan, station, st, ts, values, quality, dl)
        if plan.evaluates:
            checks += self._judge.judge(plan, station, st, ts, values, quality, dl)
        checks += self._clock_cleared(station, plan.parameter, ts, values, quality)
        return checks

    # ---- sensor health beyond the readings: clocks

    def _station_name(self, station: str) -> str:
        st = self._thresholds.stations.get(station)
        return st.name if st is not None and st.name else station

    @property
    def _sensor_severity(self) -> str:
        return self._thresholds.alerts.tiers[0][1]

    def clock_fault(self, station: str, parameter: str, ts_ns: int, now_ns: int) -> SeriesCheck:
        """A reading refused as dated in the future (`future_timestamp`): a sensor alert "clock" at `now_ns`,
        which clears at the series' next accepted reading. The refused time moves nothing: not the series'
        last reading, not the no-data clock."""
        self._clock_open[(station, parameter)] = now_ns
        ahead = format_duration(max(ts_ns - now_ns, 0))
        name = self._station_name(station)
        text = (
            f"{parameter_name(parameter)} at {name}: the data logger's clock is ahead by {ahead}; "
            "readings dated in the future are refused"
        )
        return sensor_check(
            station,
            parameter,
            "clock",
            np.array([now_ns], dtype=np.int64),
            np.array([np.nan]),
            np.ones(1, dtype=bool),
            self._sensor_severity,
            "a data logger clock within the allowed skew of the receiver's",
            lambda i: text,
        )

    def _clock_cleared(
        self, station: str, parameter: str, ts: np.ndarray, values: np.ndarray, quality: np.ndarray
    ) -> list[SeriesCheck]:
        """The calm point that clears a clock alert: the series' first reading accepted after it."""
        if not self._clock_open or (station, parameter) not in self._clock_open or not len(ts):
            return []
        # The fault is dated when it was received; a correct reading that arrives later may be dated earlier
        # (it was measured before): the clear is placed just after the fault, so the alert book takes it.
        seen = self._clock_open.pop((station, parameter))
        at = np.array([max(int(ts[0]), seen + 1)], dtype=np.int64)
        return [
            sensor_check(
                station,
                parameter,
                "clock",
                at,
                values[:1],
                np.zeros(1, dtype=bool),
                self._sensor_severity,
                "a data logger clock within the allowed skew of the receiver's",
                lambda i: "readings with a plausible time again",
            )
        ]

    # ---- no data at stream time

    def silent(self, now_ns: int | None = None) -> list[SeriesCheck]:
        """No-data checks at stream time: series (and stations) overdue now, without any reading arriving.
        Time O(series with a no-data rule) per call."""
        now = self.stream_time(time.time_ns() if now_ns is None else now_ns)
        if self.clock.started_ns is None:
            self.clock.started_ns = now
        started = self.clock.started_ns
        return (
            silent_series(self.table, self._listed, now, started)
            + self._learnt_overdue(now)
            + self.stations.overdue(now, started)
        )

    def _learnt_overdue(self, now: int) -> list[SeriesCheck]:
        """Series silent beyond their learnt interval at stream time `now` (sensor alerts "gap"): one numpy
        pass over the table, Python only for the overdue ones."""
        t = self.table
        n = len(t)
        if not n:
            return []
        lim = t.gap_ns[:n]
        last = t.last_ts[:n]
        over = np.flatnonzero((lim > 0) & (last != NO_TS) & (now - last > lim))
        out: list[SeriesCheck] = []
        for slot in over.tolist():
            plan = t.plans[slot]
            st = t.states.get(slot)
            if plan is None or st is None or plan.no_data:
                continue
            station, parameter = t.keys[slot]
            since, every = int(last[slot]), st.interval
            text = (
                f"{parameter_name(parameter)} at {self._station_name(station)} unobserved since "
                f"{local_time(since, plan.screen.timezone)} (a reading every {format_duration(every)} learnt from "
                "its cadence): a plume would not be seen"
            )
            out.append(
                sensor_check(
                    station,
                    parameter,
                    "gap",
                    np.array([since + int(lim[slot])], dtype=np.int64),
                    np.array([np.nan]),  # no reading: as when a batch finds the gap (sensors.learnt_gaps)
                    np.ones(1, dtype=bool),
                    self._sensor_severity,
                    f"a reading every {format_duration(every)} (learnt), alarm after {format_duration(int(lim[slot]))}",
                    _fixed(text),
                )
            )
        return out


def _fixed(text: str) -> Callable[[int], str]:
    return lambda i: text
