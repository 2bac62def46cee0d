"""The per-series table: one slot per series seen, its last reading and fast-path bounds in typed numpy arrays.

Both paths read and move the same arrays (the one copy of a series' last reading), so the fast path and the
per-series path can never disagree about what came before. Memory per series: ~260 bytes (its key, one entry
in each array and in the look-up tables), plus a SeriesState only when its plan needs one.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Sequence
from operator import itemgetter
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from monitor.domain.reading import Reading
from monitor.rules.plan import Plan, Planner, SeriesState

log = logging.getLogger("riverwatch.rules")

# How a series is evaluated: not at all (no plan), on the fast path when its batch allows, per series, or
# not at all but its readings are kept because limits depend on them (hardness without a limit of its own).
SKIP, SIMPLE, SLOW, DEPENDENCY = range(4)
NO_TS = int(np.iinfo(np.int64).min)  # "no reading yet" in the per-series arrays
END_TS = int(np.iinfo(np.int64).max)
_KEY = itemgetter(0, 1)  # Reading -> (station, parameter), at C speed
_STATION, _PARAMETER = itemgetter(0), itemgetter(1)


_T = TypeVar("_T", bound=np.generic)


def _grown(old: NDArray[_T], capacity: int, fill: float) -> NDArray[_T]:
    new = np.full(capacity, fill, dtype=old.dtype)
    new[: len(old)] = old[:capacity]
    return new


class SeriesTable:
    """Every series seen, by slot: the index into the arrays below and into `keys`, `plans`, `states`.

    [wfrom[s], wuntil[s]) is the time during which the fast path's bounds low[s]..high[s] hold (empty until
    a simple series' first reading shows which dated step applies). `seq` is the order of first evaluation
    (-1: not yet), which `Rules.silent` reports in.
    """

    __slots__ = (
        "dependencies",
        "gap_ns",
        "grid",
        "high",
        "keys",
        "kind",
        "last_ts",
        "last_value",
        "late",
        "late_n",
        "low",
        "nodata",
        "parameter_ix",
        "planner",
        "plans",
        "seq",
        "seq_next",
        "slot_of",
        "states",
        "station_ix",
        "wfrom",
        "wuntil",
    )

    def __init__(self, planner: Planner) -> None:
        self.planner = planner
        self.dependencies: set[str] = planner.thresholds.dependencies()
        self.slot_of: dict[tuple[str, str], int] = {}
        self.keys: list[tuple[str, str]] = []
        self.plans: list[Plan | None] = []
        self.states: dict[int, SeriesState] = {}  # only for plans that need more than the last reading
        self.nodata: set[int] = set()  # slots whose plan has a no-data rule
        # (station × parameter) -> slot, with station_ix and parameter_ix; None once it would be too sparse
        self.grid: NDArray[np.int32] | None = np.full((0, 0), -1, dtype=np.int32)
        self.station_ix: dict[str, int] = {}
        self.parameter_ix: dict[str, int] = {}
        self.last_ts: NDArray[np.int64] = np.full(0, NO_TS, dtype=np.int64)
        self.last_value: NDArray[np.float64] = np.full(0, math.nan, dtype=np.float64)
        self.late_n: NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self.seq: NDArray[np.int64] = np.full(0, -1, dtype=np.int64)
        self.kind: NDArray[np.int8] = np.full(0, SKIP, dtype=np.int8)
        self.low: NDArray[np.float64] = np.full(0, math.nan, dtype=np.float64)
        self.high: NDArray[np.float64] = np.full(0, math.nan, dtype=np.float64)
        self.wfrom: NDArray[np.int64] = np.full(0, END_TS, dtype=np.int64)
        self.wuntil: NDArray[np.int64] = np.full(0, NO_TS, dtype=np.int64)
        self.gap_ns: NDArray[np.int64] = np.zeros(0, dtype=np.int64)  # learnt silence limit (sensor health); 0 none
        self.seq_next = 0
        self.late = 0  # readings left out as late or repeated, over all series

    def __len__(self) -> int:
        return len(self.keys)

    def _grow(self, capacity: int) -> None:
        self.last_ts = _grown(self.last_ts, capacity, NO_TS)
        self.last_value = _grown(self.last_value, capacity, math.nan)
        self.late_n = _grown(self.late_n, capacity, 0)
        self.seq = _grown(self.seq, capacity, -1)
        self.kind = _grown(self.kind, capacity, SKIP)
        self.low = _grown(self.low, capacity, math.nan)
        self.high = _grown(self.high, capacity, math.nan)
        self.wfrom = _grown(self.wfrom, capacity, END_TS)
        self.wuntil = _grown(self.wuntil, capacity, NO_TS)
        self.gap_ns = _grown(self.gap_ns, capacity, 0)

    # ---- slots

    def register(self, station: str, parameter: str) -> int:
        key = (sys.intern(station), sys.intern(parameter))  # one copy of a station's id for all its parameters
        slot = len(self.keys)
        if slot >= len(self.last_ts):
            self._grow(max(16, 2 * slot))
        self.slot_of[key] = slot
        self.keys.append(key)
        self.plans.append(None)
        self.set_plan(slot, self.planner.compile(*key))
        self._index(slot, key)
        return slot

    def _index(self, slot: int, key: tuple[str, str]) -> None:
        """Enter a series in the (station × parameter) grid of slots: two string look-ups per reading cost less
        than making and hashing a key tuple. Dropped for good if it would have more than 4 cells per series."""
        if self.grid is None:
            return
        si = self.station_ix.setdefault(key[0], len(self.station_ix))
        pi = self.parameter_ix.setdefault(key[1], len(self.parameter_ix))
        rows, cols = self.grid.shape
        if si >= rows or pi >= cols:
            rows, cols = max(rows, 2 * si + 1), max(cols, 2 * pi + 1)
            if rows * cols > max(4 * (slot + 1), 1 << 16):
                self.grid, self.station_ix, self.parameter_ix = None, {}, {}
                return
            grid = np.full((rows, cols), -1, dtype=np.int32)
            grid[: self.grid.shape[0], : self.grid.shape[1]] = self.grid
            self.grid = grid
        self.grid[si, pi] = slot

    def slot(self, station: str, parameter: str) -> int:
        slot = self.slot_of.get((station, parameter))
        return self.register(station, parameter) if slot is None else slot

    def slots(self, readings: Sequence[Reading]) -> NDArray[np.int64]:
        """The slot of every reading (new series get one first)."""
        n = len(readings)
        if self.grid is not None:
            try:
                si = np.fromiter(map(self.station_ix.__getitem__, map(_STATION, readings)), dtype=np.intp, count=n)
                pi = np.fromiter(map(self.parameter_ix.__getitem__, map(_PARAMETER, readings)), dtype=np.intp, count=n)
            except KeyError:
                pass
            else:
                slots = self.grid[si, pi].astype(np.int64)
                if slots.min() >= 0:
                    return slots
        try:
            return np.fromiter(map(self.slot_of.__getitem__, map(_KEY, readings)), dtype=np.int64, count=n)
        except KeyError:
            for key in dict.fromkeys(map(_KEY, readings)):
                self.slot(*key)
            return np.fromiter(map(self.slot_of.__getitem__, map(_KEY, readings)), dtype=np.int64, count=n)

    # ---- plans

    def set_plan(self, slot: int, plan: Plan | None) -> None:
        self.plans[slot] = plan
        dependency = self.keys[slot][1] in self.dependencies
        if plan is None:
            self.kind[slot] = DEPENDENCY if dependency else SKIP
        else:
            self.kind[slot] = SIMPLE if plan.simple and not dependency else SLOW
        if plan is not None and plan.no_data:
            self.nodata.add(slot)
        else:
            self.nodata.discard(slot)
        self.wfrom[slot], self.wuntil[slot] = END_TS, NO_TS
        if self.kind[slot] == SIMPLE:
            self.set_window(slot)

    def replan(self, planner: Planner) -> None:
        """Every series under new thresholds; rolling state of series that still have a plan is kept."""
        self.planner = planner
        self.dependencies = planner.thresholds.dependencies()
        self.plans = [None] * len(self.keys)  # a new list: a QuietChecks keeps the plans of its batch
        for slot, key in enumerate(self.keys):
            plan = planner.compile(*key)
            self.set_plan(slot, plan)
            if plan is None:  # its state goes, as if never seen
                self.last_ts[slot], self.last_value[slot], self.late_n[slot], self.seq[slot] = NO_TS, math.nan, 0, -1
                self.states.pop(slot, None)
                continue
            st = self.states.get(slot)
            if st is not None and st.persist is not None:
                names = plan.rule_names()
                st.persist = {k: v for k, v in st.persist.items() if k in names}

    def set_window(self, slot: int) -> None:
        """The fast path's bounds: the limit in force around the series' last reading, and while it holds."""
        plan = self.plans[slot]
        assert plan is not None and plan.spec is not None
        spec = plan.spec
        if not spec.step_ns.size:
            i, start, end = 0, NO_TS, END_TS
        else:
            last = int(self.last_ts[slot])
            if last == NO_TS:
                return  # not before a first reading has shown which step applies
            i = int(np.searchsorted(spec.step_ns, last, side="right"))
            start = int(spec.step_ns[i - 1]) if i > 0 else NO_TS
            end = int(spec.step_ns[i]) if i < spec.step_ns.size else END_TS
        self.low[slot], self.high[slot] = spec.lows[i], spec.highs[i]
        self.wfrom[slot], self.wuntil[slot] = start, end

    # ---- per-series bookkeeping

    def see(self, slot: int) -> None:
        """First evaluation of a series (with a plan): fixes its place in `Rules.silent`'s order."""
        self.seq[slot] = self.seq_next
        self.seq_next += 1

    def count_late(self, slot: int, count: int) -> None:
        """Readings not newer than the series' last one: counted, and logged the first time per series."""
        self.late += count
        if self.late_n[slot] == 0:
            station, parameter = self.keys[slot]
            log.warning(
                "%s/%s: %d reading(s) not newer than the last one evaluated were left out of the rules "
                "(late or repeated); further ones are only counted",
                station,
                parameter,
                count,
            )
        self.late_n[slot] += count
