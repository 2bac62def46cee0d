"""The cross-series fast path: the compliant readings of simple series judged for the whole batch at once.

A series whose plan is only an instantaneous limit (no screening, no mean, rate or no-data rule, no dependency,
no dated step inside the batch) and whose readings carry no flag is judged across series, in numpy over the
batch. If none of its readings violates the limit and its limit alert is not open, it cannot cause an alert
event, so it costs no SeriesCheck: only its last reading time and value move (in the SeriesTable, the one copy
both paths use). Everything else takes the per-series path, the reference (tests/test_rules_fastpath.py holds
this one to it). Work: about 0.25 µs per reading (two dict look-ups, a few C-level passes and numpy over the
whole batch) and nothing per quiet series.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from operator import itemgetter

import numpy as np

from monitor.domain.reading import Reading
from monitor.rules.checks import AlertKey, SeriesCheck
from monitor.rules.kinds import Judge
from monitor.rules.table import NO_TS, SIMPLE, SeriesTable

_FLAG = itemgetter(4)


class QuietChecks:
    """The series of one batch that the fast path found compliant, standing for their SeriesChecks.

    `Rules.evaluate` returns one when the caller did not say which alerts are open: such a series can only
    resolve an open limit alert, so `AlertBook.update` expands just those. `expand()` gives the SeriesChecks
    the per-series path would have made. Memory: the batch's compliant readings, until it is dropped.
    """

    __slots__ = ("_judge", "_keys", "_plans", "_present", "_slot_of", "count", "slots", "ts_ns", "values")

    def __init__(
        self, table: SeriesTable, judge: Judge, slots: np.ndarray, ts_ns: np.ndarray, values: np.ndarray
    ) -> None:
        self._judge = judge
        self._plans = table.plans  # the plans of this batch (a reload swaps in a new list)
        self._keys = table.keys
        self._slot_of = table.slot_of
        self.slots, self.ts_ns, self.values = slots, ts_ns, values  # each series' readings in time order
        self._present = np.zeros(len(table), dtype=bool)
        self._present[slots] = True
        self.count = int(np.count_nonzero(self._present))

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: object) -> bool:
        slot = self._slot_of.get(key)  # type: ignore[call-overload]
        return slot is not None and slot < len(self._present) and bool(self._present[slot])

    def expand(self, keys: Iterable[tuple[str, str]] | None = None) -> list[SeriesCheck]:
        """The SeriesChecks of these series (of `keys` only, when given), in slot order."""
        if keys is None:
            sel = np.arange(len(self.slots))
        else:
            want = np.zeros(len(self._present), dtype=bool)
            for key in keys:
                slot = self._slot_of.get(key)
                if slot is not None and slot < len(want):
                    want[slot] = True
            sel = np.flatnonzero(want[self.slots])
        if not sel.size:
            return []
        sel = sel[np.argsort(self.slots[sel], kind="stable")]
        s = self.slots[sel]
        bounds = np.concatenate(([0], np.flatnonzero(s[1:] != s[:-1]) + 1, [len(s)]))
        out: list[SeriesCheck] = []
        for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
            slot = int(s[a])
            plan = self._plans[slot]
            assert plan is not None
            ts, values = self.ts_ns[sel[a:b]], self.values[sel[a:b]]
            quality, dl = np.zeros(b - a, dtype=np.int8), np.full(b - a, np.nan)
            out += self._judge.judge(plan, self._keys[slot][0], None, ts, values, quality, dl)
        return out


def off_fast_path(
    table: SeriesTable,
    readings: Sequence[Reading],
    slots: np.ndarray,
    kind: np.ndarray,
    ts: np.ndarray,
    values: np.ndarray,
    open_alerts: Collection[AlertKey] | None,
) -> np.ndarray:
    """Per reading, whether its series leaves the fast path for this batch: on any of its readings that is
    flagged, violates the limit or falls outside the time its fast-path limit holds, when its limit alert is
    open, or when it is not simple at all."""
    n = len(readings)
    out = (kind != SIMPLE) | (values > table.high[slots]) | (values < table.low[slots])
    out |= (ts < table.wfrom[slots]) | (ts >= table.wuntil[slots])
    if any(map(_FLAG, readings)):
        out |= np.fromiter(map(bool, map(_FLAG, readings)), dtype=bool, count=n)
    slow_series = np.zeros(len(table), dtype=bool)
    slow_series[slots[out]] = True
    if open_alerts:
        for station, parameter, key in open_alerts:
            if not key and (slot := table.slot_of.get((station, parameter))) is not None:
                slow_series[slot] = True
    return slow_series[slots]


def quiet_batch(
    table: SeriesTable, slots: np.ndarray, ts: np.ndarray, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Late readings out, then the last reading of each quiet series moved; the kept readings, each
    series' in time order (None if none). Same rule as the per-series path: not newer than the last one, or a
    repeat of a time within the batch, is late; of equal times the first in the batch is kept."""
    counts = np.bincount(slots)
    last = table.last_ts[slots]
    keep = (ts > last) | (last == NO_TS)
    many = bool(counts.max() > 1)
    if many:  # put each series' readings together, in time order
        order = np.lexsort((ts, slots))  # stable: of equal times, the first in the batch comes first
        slots, ts, values, keep = slots[order], ts[order], values[order], keep[order]
        keep[1:] &= (ts[1:] != ts[:-1]) | (slots[1:] != slots[:-1])
    if not keep.all():
        late, count = np.unique(slots[~keep], return_counts=True)
        for slot, c in zip(late.tolist(), count.tolist(), strict=True):
            table.count_late(slot, c)
        slots, ts, values = slots[keep], ts[keep], values[keep]
    if not len(slots):
        return None
    if many:
        end = np.concatenate((slots[1:] != slots[:-1], [True]))
        table.last_ts[slots[end]] = ts[end]
        table.last_value[slots[end]] = values[end]
    else:
        table.last_ts[slots] = ts
        table.last_value[slots] = values
    return slots, ts, values


def merge(
    table: SeriesTable, slots: np.ndarray, checks: list[SeriesCheck], quiet: list[SeriesCheck]
) -> list[SeriesCheck]:
    """Per-series checks and expanded quiet ones in the order their series first appear in the batch."""
    unique, first = np.unique(slots, return_index=True)
    rank = dict(zip(unique.tolist(), first.tolist(), strict=True))
    keyed = [(rank[table.slot_of[(c.station, c.parameter)]], c) for c in [*checks, *quiet]]
    keyed.sort(key=itemgetter(0))  # stable: a series' own checks keep their order
    return [c for _, c in keyed]
