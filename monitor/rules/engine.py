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
from collections.abc import Collection, Sequence
from operator import itemgetter

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules.checks import AlertKey, SeriesCheck
from monitor.rules.dependencies import Dependencies
from monitor.rules.fastpath import QuietChecks, merge, off_fast_path, quiet_batch
from monitor.rules.kinds import Judge
from monitor.rules.nodata import StationSilence, StreamClock, series_gaps, silent_series, station_match
from monitor.rules.plan import Plan, Planner, SeriesState
from monitor.rules.screen import Suspect, screen
from monitor.rules.table import DEPENDENCY, NO_TS, SIMPLE, SLOW, SeriesTable
from monitor.thresholds import Limit, ThresholdSet

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
        self.stations.reload(thresholds)
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
        table.last_ts[slot], table.last_value[slot] = int(ts[-1]), float(values[-1])
        if table.kind[slot] == SIMPLE:
            table.set_window(slot)
        quality, dl = screen(plan, station, st, ts, values, flags, self.suspects, self.screened)
        if plan.evaluates:
            checks += self._judge.judge(plan, station, st, ts, values, quality, dl)
        return checks

    # ---- no data at stream time

    def silent(self, now_ns: int | None = None) -> list[SeriesCheck]:
        """No-data checks at stream time: series (and stations) overdue now, without any reading arriving.
        Time O(series with a no-data rule) per call."""
        now = self.stream_time(time.time_ns() if now_ns is None else now_ns)
        if self.clock.started_ns is None:
            self.clock.started_ns = now
        started = self.clock.started_ns
        return silent_series(self.table, self._listed, now, started) + self.stations.overdue(now, started)
