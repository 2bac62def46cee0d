"""Rules: each batch of readings, grouped per series, screened and judged with numpy over ring buffers.

A series is one (station, parameter). Per batch, each series' readings are put in time order; readings not
newer than the series' last one are late and dropped (a reading from the past cannot change an alert that was
already decided, and the journal's unique key already absorbs redeliveries). Then, in order:

1. screening marks readings that are not measurements of the river: instrument flags (maintenance and
   calibration are ignored; suspect, fault and invalid are suspect), outside the instrument's range, flatline,
   spike against a rolling median/MAD. Below the detection limit ("0.00005L") is a valid reading whose true
   value lies in [0, DL): it can prove compliance with a maximum but never a violation of one;
2. each rule kind turns the accepted readings into a `SeriesCheck` (verdict per reading) for `monitor.alerts.evaluator`:
   the limit rule (instantaneous, or persistence when one is configured), rolling mean, rate of change,
   and no data. Every reading is judged when it arrives, never on the next one.

Fast path: a series whose plan is only an instantaneous limit (no screening, no mean, rate or no-data rule,
no dependency, no dated step inside the batch) and whose readings carry no flag is judged for the whole batch
at once, across series. If none of its readings violates the limit and its limit alert is not open, it cannot
cause an alert event, so it costs no SeriesCheck: only its last reading time and value move (kept per series
in numpy arrays, the one copy both paths use). Everything else takes the per-series path, the reference.

Work per batch: about 0.25 µs per reading on the fast path (two dict look-ups, a few C-level passes and numpy
over the whole batch) and nothing per quiet series; each series on the per-series path costs O(its readings)
numpy plus ~40 µs of Python. Memory per series: ~260 bytes (its key, slot arrays and look-up tables), plus its
plan, shared by every series with the same one; each rule states what it adds per series.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import itemgetter

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from monitor.domain.params import PARAMETERS, unit_factor
from monitor.domain.reading import Reading
from monitor.thresholds import (
    DEFAULT_IGNORE_FLAGS,
    DEFAULT_SUSPECT_FLAGS,
    LIMIT_RULES,
    NS_PER_HOUR,
    Limit,
    LimitSpec,
    RuleSpec,
    ThresholdSet,
    format_duration,
    specificity,
)

log = logging.getLogger("riverwatch.rules")

# Instrument flags that mean "this value is not a measurement of the river" by default: never alarm on them,
# and never let them resolve an alert either. [screen] in a threshold file can change the sets.
NOT_EVALUATED_FLAGS = DEFAULT_IGNORE_FLAGS | DEFAULT_SUSPECT_FLAGS

# Reading quality after screening.
OK, BELOW_DL, IGNORED, SUSPECT, RANGE, FLATLINE, SPIKE = range(7)
QUALITY = (
    "ok",
    "below detection limit",
    "ignored (flag)",
    "suspect (flag)",
    "outside the instrument range",
    "flatline",
    "spike",
)
MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation per median absolute deviation

# How a series is evaluated: not at all (no plan), on the fast path when its batch allows, per series, or
# not at all but its readings are kept because limits depend on them (hardness without a limit of its own).
SKIP, SIMPLE, SLOW, DEPENDENCY = range(4)
_NO_TS = int(np.iinfo(np.int64).min)  # "no reading yet" in the per-series arrays
_END_TS = int(np.iinfo(np.int64).max)
_KEY = itemgetter(0, 1)  # Reading -> (station, parameter), at C speed
_STATION, _PARAMETER, _TS, _VALUE, _FLAG = (itemgetter(i) for i in range(5))
AlertKey = tuple[str, str, str]  # (station, parameter, rule key): the key of an alert in monitor.alerts.evaluator


@dataclass(slots=True)
class SeriesCheck:
    """One rule's verdicts for one series over one batch, in time order; what `AlertBook.update` consumes."""

    station: str
    parameter: str
    limit: Limit  # the limit of the last reading (the limit can change with a date step or a hardness band)
    ts_ns: np.ndarray  # int64
    values: np.ndarray  # float64: the reading, or the statistic compared (rolling mean)
    ratio: np.ndarray  # >= 1 where violated: C/S for a maximum, S/C for a minimum
    violated: np.ndarray  # bool: the rule's condition holds (the alert is, or becomes, active)
    rule: str = "instantaneous"
    key: str = ""  # the alert within the series: "" for the limit alert, else the rule's name
    calm: np.ndarray | None = None  # readings that count towards clearing; None: not violated and ratio <= 1
    severity: str = ""  # a fixed severity; "" = tiers by ratio
    clear_hold_ns: int | None = None  # None: the AlertBook's own
    limits: tuple[Limit, ...] = ()  # with limit_index: the limit per reading
    limit_index: np.ndarray | None = None
    detail: Callable[[int], str] | None = None  # the human reason at reading i ("rising 0.004 mg/L per hour")

    def limit_at(self, i: int) -> Limit:
        if self.limit_index is not None and self.limits:
            return self.limits[int(self.limit_index[i])]
        return self.limit

    def detail_at(self, i: int) -> str:
        return self.detail(i) if self.detail is not None else ""


# --------------------------------------------------------------------------- kernels


def verdict(
    kind: str, low: np.ndarray | float, high: np.ndarray | float, values: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised (ratio, violated) of values against per-reading bounds; same numbers as `Limit.ratio`.

    max: (-inf, limit]; min: [limit, inf); range: [low, high]. O(n) time, no memory kept.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        if kind == "max":
            ratio = np.where(high > 0, values / high, np.where(values > high, np.inf, 0.0))
        elif kind == "min":
            ratio = np.where(values > 0, low / values, np.inf)
        else:
            ratio = np.maximum(values / high, np.where(values > 0, low / values, np.inf))
    violated = (values > high) | (values < low)
    return np.asarray(ratio, dtype=np.float64), np.asarray(violated)


def check(limit: Limit, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized (ratio, violated) of values against one limit."""
    low = (
        limit.low
        if limit.kind == "range" and limit.low is not None
        else (limit.value if limit.kind == "min" else -np.inf)
    )
    high = np.inf if limit.kind == "min" else limit.value
    return verdict(limit.kind, low, high, values)


def run_lengths(flags: np.ndarray, carry: int) -> np.ndarray:
    """For each position, how many consecutive True end there (0 where False), continuing a run of `carry`."""
    n = len(flags)
    idx = np.arange(n)
    breaks = np.maximum.accumulate(np.where(~flags, idx, -1))
    return np.where(flags, np.where(breaks >= 0, idx - breaks, carry + idx + 1), 0)


def run_starts(flags: np.ndarray, ts: np.ndarray, carry_ts: int | None) -> np.ndarray:
    """For each True position, the time its run of consecutive Trues began (a run may continue `carry_ts`)."""
    n = len(flags)
    idx = np.arange(n)
    prev = np.concatenate(([carry_ts is not None], flags[:-1]))
    first = np.maximum.accumulate(np.where(flags & ~prev, idx, -1))
    carried = np.int64(carry_ts if carry_ts is not None else 0)
    return np.where(first >= 0, ts[np.maximum(first, 0)], carried)


def window_bounds(ring_ts: np.ndarray, ts: np.ndarray, window_ns: int) -> np.ndarray:
    """Index (into ring_ts) of the first reading of each window (t − window, t]."""
    return np.searchsorted(ring_ts, ts - window_ns, side="right")


class Ring:
    """A per-series ring buffer of (time, value) kept contiguous in numpy arrays, with prefix sums.

    Appending is amortised O(1) per reading: the live part moves to the front only when the arrays are full,
    and the arrays double when it fills more than half of them. Window sums (and the sums of t, t², t·v for
    a least-squares slope) come from prefix sums, so any window costs O(1) per reading. Memory: two to four
    times the readings kept, 8 bytes each per array. `since` is the time from which every accepted reading is
    kept, which is what decides whether a window has filled.
    """

    __slots__ = ("_c", "_ct", "_ctt", "_ctv", "_ts", "_v", "base", "head", "moments", "since", "sums", "tail")

    def __init__(self, capacity: int = 16, sums: bool = True, moments: bool = False) -> None:
        self.sums = sums
        self.moments = moments
        self.head = self.tail = 0
        self.base = 0
        self.since: int | None = None
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self._ts = np.empty(capacity, dtype=np.int64)
        self._v = np.empty(capacity, dtype=np.float64)
        n = capacity + 1 if self.sums else 0
        self._c = np.zeros(n)
        m = capacity + 1 if self.moments else 0
        self._ct, self._ctt, self._ctv = np.zeros(m), np.zeros(m), np.zeros(m)

    def __len__(self) -> int:
        return self.tail - self.head

    @property
    def ts(self) -> np.ndarray:
        return self._ts[self.head : self.tail]

    @property
    def values(self) -> np.ndarray:
        return self._v[self.head : self.tail]

    def extend(self, ts: np.ndarray, values: np.ndarray) -> int:
        """Append readings (newer than the last one); returns the ring index of the first appended."""
        m = len(ts)
        if self.since is None and m:
            self.since = int(ts[0])
        if self.tail + m > len(self._ts):
            self._compact(m, int(ts[0]) if m else 0)
        t0 = self.tail
        self._ts[t0 : t0 + m] = ts
        self._v[t0 : t0 + m] = values
        if self.sums:
            self._c[t0 + 1 : t0 + m + 1] = self._c[t0] + np.cumsum(values)
        if self.moments:
            t = (ts - self.base) / NS_PER_HOUR
            self._ct[t0 + 1 : t0 + m + 1] = self._ct[t0] + np.cumsum(t)
            self._ctt[t0 + 1 : t0 + m + 1] = self._ctt[t0] + np.cumsum(t * t)
            self._ctv[t0 + 1 : t0 + m + 1] = self._ctv[t0] + np.cumsum(t * values)
        self.tail += m
        return t0 - self.head

    def _compact(self, incoming: int, first_ts: int) -> None:
        live_ts, live_v = self.ts.copy(), self.values.copy()
        need = len(live_ts) + incoming
        capacity = len(self._ts)
        if need > capacity // 2:
            capacity = max(16, 2 * need)
        self._alloc(capacity)
        self.head, self.tail = 0, 0
        self.base = int(live_ts[0]) if len(live_ts) else first_ts
        since = self.since
        if len(live_ts):
            self.extend(live_ts, live_v)
        self.since = since

    def trim_before(self, cutoff_ns: int) -> None:
        """Forget readings older than `cutoff_ns`; the ring stays complete from there on."""
        k = int(np.searchsorted(self.ts, cutoff_ns, side="left"))
        if k:
            self.head += k
            self.since = cutoff_ns if self.since is None else max(self.since, cutoff_ns)

    def keep_last(self, count: int) -> None:
        if len(self) > count:
            self.head = self.tail - count

    def window_sums(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, ...]:
        """(n, Σv, Σt, Σt², Σt·v) over ring positions [left, right) per row; t in hours since `base`."""
        a, b = left + self.head, right + self.head
        n = (b - a).astype(np.float64)
        sv = self._c[b] - self._c[a]
        if not self.moments:
            return n, sv
        return n, sv, self._ct[b] - self._ct[a], self._ctt[b] - self._ctt[a], self._ctv[b] - self._ctv[a]


# --------------------------------------------------------------------------- per-series plan and state


@dataclass(eq=False)
class _NoData:
    key: str  # alert key ("no_data" or the rule's name)
    interval_ns: int
    factor: float
    severity: str
    origin: str

    @property
    def limit_ns(self) -> int:
        return round(self.interval_ns * self.factor)


@dataclass(eq=False, slots=True)
class _Plan:
    """What to do with a series, compiled once from the ThresholdSet (until a reload). Station-free, so that
    every series with the same limits, rules and screening shares one (see Rules._compile)."""

    parameter: str
    spec: LimitSpec | None
    limit_rule: RuleSpec | None  # None: the built-in instantaneous rule
    extra: list[RuleSpec]  # mean and rate rules
    no_data: list[_NoData]
    listed: bool  # in the station file's `expect`: silent since start-up counts
    screen: dict[str, object]
    ignore: frozenset[str]
    suspect: frozenset[str]
    dl_flags: frozenset[str]
    clear_ratio: float
    clear_hold_ns: int
    lowest: str  # the mildest severity name: the default of rate and no-data alerts
    window_ns: int = 0  # the longest time window of the extra rules
    rates: dict[str, float] = field(default_factory=dict)  # rule name -> rise per hour in the standard unit
    simple: bool = field(init=False)  # may take the fast path (see Rules.evaluate)
    stateful: bool = field(init=False)  # needs a _Series (rings, runs) beyond the last reading

    def __post_init__(self) -> None:
        sc = self.screen
        screens = (
            sc.get("range") is not None
            or sc.get("detection_limit") is not None
            or bool(sc.get("flatline"))
            or bool(sc.get("spike_window"))
        )
        persistence = self.limit_rule is not None and self.limit_rule.kind != "instantaneous"
        self.stateful = persistence or bool(self.extra) or bool(sc.get("flatline")) or bool(sc.get("spike_window"))
        self.simple = (
            self.spec is not None
            and not self.spec.depends_on
            and not persistence
            and not self.extra
            and not self.no_data
            and not screens
        )

    @property
    def evaluates(self) -> bool:
        return self.spec is not None or any(r.kind == "rate" for r in self.extra)


@dataclass(slots=True)
class _Series:
    """Rolling state of one series beyond its last reading (kept in Rules' arrays); only series whose plan
    needs it have one. Memory: O(1) plus the two rings (see Ring)."""

    values: Ring | None = None  # accepted readings, for mean and rate windows
    screen: Ring | None = None  # the last spike_window screened values
    flat_value: float = math.nan
    flat_run: int = 0
    spike_dir: int = 0
    persist: dict[str, tuple[int, int]] | None = None  # rule name -> (run start ts, run length)


def _spec_key(spec: LimitSpec | None) -> object:
    """Everything of a LimitSpec that evaluation or a message can show (Limit's eq leaves out note, origin, text)."""
    if spec is None:
        return None
    return (
        spec.parameter,
        spec.kind,
        tuple((lim, lim.note, lim.origin, lim.text) for lim in spec.limits),
        spec.step_ns.tobytes(),
        spec.depends_on,
        np.asarray(spec.bounds, dtype=np.float64).tobytes(),
        spec.default,
        spec.assumed,
        spec.origin,
        _spec_key(spec.mean),
        spec.mean_window_ns,
    )


def _num(x: float) -> str:
    return f"{x:.4g}" if abs(x) < 1e6 else f"{x:.3e}"


def _iso(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).isoformat(timespec="minutes").replace("+00:00", "Z")


class QuietChecks:
    """The series of one batch that the fast path found compliant, standing for their SeriesChecks.

    `Rules.evaluate` returns one when the caller did not say which alerts are open: such a series can only
    resolve an open limit alert, so `AlertBook.update` expands just those. `expand()` gives the SeriesChecks
    the per-series path would have made. Memory: the batch's compliant readings, until it is dropped.
    """

    __slots__ = ("_keys", "_plans", "_present", "_rules", "count", "slots", "ts_ns", "values")

    def __init__(self, rules: Rules, slots: np.ndarray, ts_ns: np.ndarray, values: np.ndarray) -> None:
        self._rules = rules
        self._plans = rules._plan_of  # the plans of this batch (a reload swaps in a new list)
        self._keys = rules._keys
        self.slots, self.ts_ns, self.values = slots, ts_ns, values  # each series' readings in time order
        self._present = np.zeros(len(rules._keys), dtype=bool)
        self._present[slots] = True
        self.count = int(np.count_nonzero(self._present))

    def __len__(self) -> int:
        return self.count

    def __contains__(self, key: object) -> bool:
        slot = self._rules._slot_of.get(key)  # type: ignore[call-overload]
        return slot is not None and slot < len(self._present) and bool(self._present[slot])

    def expand(self, keys: Iterable[tuple[str, str]] | None = None) -> list[SeriesCheck]:
        """The SeriesChecks of these series (of `keys` only, when given), in slot order."""
        if keys is None:
            sel = np.arange(len(self.slots))
        else:
            want = np.zeros(len(self._present), dtype=bool)
            for key in keys:
                slot = self._rules._slot_of.get(key)
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
            out += self._rules._judge(
                plan, self._keys[slot][0], None, ts, values, np.zeros(b - a, dtype=np.int8), np.full(b - a, np.nan)
            )
        return out


class Rules:
    """Stateful per-series evaluation; `evaluate(batch)` returns one SeriesCheck per (series, rule) touched
    (the fast path leaves out or summarises the compliant ones, see `evaluate`).

    Also the clock of the no-data rule: "stream time" is the newest reading time seen, advanced by the wall
    clock since it was seen. Live, that is the wall clock; in a replay of old data, it follows the data, so a
    replay does not look silent.

    Each series seen gets a slot: an index into numpy arrays of its last reading (time, value), late count,
    fast-path limit bounds and order of first evaluation, and into the list of plans. `fast=False` sends every
    series through the per-series path (the reference, for tests and benchmarks).
    """

    quiet_expand = 64  # a caller that does not pass open alerts gets up to this many quiet series as SeriesChecks

    def __init__(self, thresholds: ThresholdSet, default_class: str, fast: bool = True) -> None:
        self._thresholds = thresholds
        self._default_class = default_class
        self.fast = fast
        self._slot_of: dict[tuple[str, str], int] = {}
        self._keys: list[tuple[str, str]] = []
        self._plan_of: list[_Plan | None] = []
        self._interned: dict[object, _Plan] = {}
        self._series: dict[int, _Series] = {}  # by slot, only for plans that need more than the last reading
        self._nodata: set[int] = set()  # slots whose plan has a no-data rule
        self._station_ix: dict[str, int] = {}  # with _parameter_ix: the indices into _table, of slots
        self._parameter_ix: dict[str, int] = {}
        self._table: np.ndarray | None = np.full((0, 0), -1, dtype=np.int32)
        self._alloc(0)
        self._seq_next = 0
        self._deps: dict[tuple[str, str], Ring] = {}  # (station, dependency parameter) -> its latest readings
        self._stations_last: dict[str, tuple[int, float]] = {}  # station-wide no data: last reading
        self.late = 0
        self.screened: Counter[str] = Counter()
        self.suspects: list[tuple[str, str, int, float, str]] = []  # of the last batch: what screening set aside
        self.pending: dict[tuple[str, str, str], str] = {}  # (station, parameter, rule) -> why it cannot alert yet
        self.clock_ns: int | None = None
        self.clock_wall_ns = 0
        self.started_ns: int | None = None
        self._prepare()

    @property
    def thresholds(self) -> ThresholdSet:
        return self._thresholds

    def _prepare(self) -> None:
        t = self._thresholds
        self._dep_params = t.dependencies()
        self._listed = [(sid, pid) for sid, st in t.stations.items() for pid in st.expect]
        self._station_rules = [r for r in t.rules if r.kind == "no_data" and r.scope == "station"]

    def reload(self, thresholds: ThresholdSet, default_class: str | None = None) -> None:
        """Swap in new thresholds; rolling state of series that still have a plan is kept (see Evaluator)."""
        self._thresholds = thresholds
        if default_class is not None:
            self._default_class = default_class
        self._interned = {}
        self._prepare()
        self.pending.clear()
        self._plan_of = [None] * len(self._keys)  # a new list: a QuietChecks keeps the plans of its batch
        for slot, key in enumerate(self._keys):
            plan = self._compile(*key)
            self._set_plan(slot, plan)
            if plan is None:  # its state goes, as if never seen
                self._last_ts[slot], self._last_value[slot], self._late_n[slot], self._seq[slot] = (
                    _NO_TS,
                    math.nan,
                    0,
                    -1,
                )
                self._series.pop(slot, None)
                continue
            st = self._series.get(slot)
            if st is not None and st.persist is not None:
                names = {r.name for r in plan.extra} | ({plan.limit_rule.name} if plan.limit_rule else set())
                st.persist = {k: v for k, v in st.persist.items() if k in names}

    # ---- slots

    _ARRAYS = (
        ("_last_ts", np.int64, _NO_TS),
        ("_last_value", np.float64, math.nan),
        ("_late_n", np.int64, 0),
        ("_seq", np.int64, -1),
        ("_kind", np.int8, SKIP),
        ("_low", np.float64, math.nan),
        ("_high", np.float64, math.nan),
        ("_wfrom", np.int64, _END_TS),
        ("_wuntil", np.int64, _NO_TS),
    )

    def _alloc(self, capacity: int) -> None:
        """(Re)size the per-slot arrays; [_wfrom, _wuntil) is the time the fast path's bounds hold (empty)."""
        for name, dtype, fill in self._ARRAYS:
            new = np.full(capacity, fill, dtype=dtype)
            old = getattr(self, name, None)
            if old is not None:
                new[: len(old)] = old[:capacity]
            setattr(self, name, new)

    def _register(self, station: str, parameter: str) -> int:
        key = (sys.intern(station), sys.intern(parameter))  # one copy of a station's id for all its parameters
        slot = len(self._keys)
        if slot >= len(self._last_ts):
            self._alloc(max(16, 2 * slot))
        self._slot_of[key] = slot
        self._keys.append(key)
        self._plan_of.append(None)
        self._set_plan(slot, self._compile(*key))
        self._index(slot, key)
        return slot

    def _index(self, slot: int, key: tuple[str, str]) -> None:
        """Enter a series in the (station × parameter) table of slots: two string look-ups per reading cost less
        than making and hashing a key tuple. Dropped for good if it would have more than 4 cells per series."""
        if self._table is None:
            return
        si = self._station_ix.setdefault(key[0], len(self._station_ix))
        pi = self._parameter_ix.setdefault(key[1], len(self._parameter_ix))
        rows, cols = self._table.shape
        if si >= rows or pi >= cols:
            rows, cols = max(rows, 2 * si + 1), max(cols, 2 * pi + 1)
            if rows * cols > max(4 * (slot + 1), 1 << 16):
                self._table, self._station_ix, self._parameter_ix = None, {}, {}
                return
            table = np.full((rows, cols), -1, dtype=np.int32)
            table[: self._table.shape[0], : self._table.shape[1]] = self._table
            self._table = table
        self._table[si, pi] = slot

    def _slot(self, station: str, parameter: str) -> int:
        slot = self._slot_of.get((station, parameter))
        return self._register(station, parameter) if slot is None else slot

    def _slots(self, readings: Sequence[Reading]) -> np.ndarray:
        """The slot of every reading (new series get one first)."""
        n = len(readings)
        if self._table is not None:
            try:
                si = np.fromiter(map(self._station_ix.__getitem__, map(_STATION, readings)), dtype=np.intp, count=n)
                pi = np.fromiter(map(self._parameter_ix.__getitem__, map(_PARAMETER, readings)), dtype=np.intp, count=n)
            except KeyError:
                pass
            else:
                slots = self._table[si, pi].astype(np.int64)
                if slots.min() >= 0:
                    return slots
        try:
            return np.fromiter(map(self._slot_of.__getitem__, map(_KEY, readings)), dtype=np.int64, count=n)
        except KeyError:
            for key in dict.fromkeys(map(_KEY, readings)):
                self._slot(*key)
            return np.fromiter(map(self._slot_of.__getitem__, map(_KEY, readings)), dtype=np.int64, count=n)

    def _set_plan(self, slot: int, plan: _Plan | None) -> None:
        self._plan_of[slot] = plan
        dependency = self._keys[slot][1] in self._dep_params
        if plan is None:
            self._kind[slot] = DEPENDENCY if dependency else SKIP
        else:
            self._kind[slot] = SIMPLE if plan.simple and not dependency else SLOW
        if plan is not None and plan.no_data:
            self._nodata.add(slot)
        else:
            self._nodata.discard(slot)
        self._wfrom[slot], self._wuntil[slot] = _END_TS, _NO_TS
        if self._kind[slot] == SIMPLE:
            self._set_window(slot)

    def _set_window(self, slot: int) -> None:
        """The fast path's bounds: the limit in force around the series' last reading, and while it holds."""
        plan = self._plan_of[slot]
        assert plan is not None and plan.spec is not None
        spec = plan.spec
        if not spec.step_ns.size:
            i, start, end = 0, _NO_TS, _END_TS
        else:
            last = int(self._last_ts[slot])
            if last == _NO_TS:
                return  # not before a first reading has shown which step applies
            i = int(np.searchsorted(spec.step_ns, last, side="right"))
            start = int(spec.step_ns[i - 1]) if i > 0 else _NO_TS
            end = int(spec.step_ns[i]) if i < spec.step_ns.size else _END_TS
        self._low[slot], self._high[slot] = spec.lows[i], spec.highs[i]
        self._wfrom[slot], self._wuntil[slot] = start, end

    def _see(self, slot: int) -> None:
        """First evaluation of a series (with a plan): fixes its place in `silent`'s order."""
        self._seq[slot] = self._seq_next
        self._seq_next += 1

    # ---- plans

    def limit(self, station: str, parameter: str) -> Limit | None:
        """The limit a series is held to now (for the default band); kept for callers of the first version."""
        spec = self._thresholds.spec(station, parameter, self._default_class)
        return None if spec is None else spec.at()

    def plan(self, station: str, parameter: str) -> _Plan | None:
        return self._plan_of[self._slot(station, parameter)]

    def alert_keys(self, station: str, parameter: str) -> set[str]:
        """The alert keys a series can have under the current thresholds (reload keeps only these alerts)."""
        if parameter == "*":
            return {r.name for r in self._station_rules if _station_match(r, station, self._thresholds)}
        plan = self.plan(station, parameter)
        if plan is None:
            return set()
        keys = {r.name for r in plan.extra} | {n.key for n in plan.no_data}
        if plan.spec is not None:
            keys.add("")
        return keys

    def _compile(self, station: str, parameter: str) -> _Plan | None:
        t = self._thresholds
        spec = t.spec(station, parameter, self._default_class)
        rules = t.rules_for(station, parameter)
        limit_rules = [r for r in rules if r.kind in LIMIT_RULES]
        limit_rule = max(limit_rules, key=specificity) if limit_rules else None
        extra = [r for r in rules if r.kind == "rate" or (r.kind == "mean" and spec is not None)]
        if spec is not None and spec.mean is not None and not any(r.name == "mean" for r in extra):
            extra.append(
                RuleSpec(
                    "mean",
                    "mean",
                    (parameter,),
                    window_ns=spec.mean_window_ns,
                    min_readings=1,
                    origin=spec.origin,
                    note="the standard's mean limit",
                )
            )
        st = t.stations.get(station)
        expect = st.expect.get(parameter) if st is not None else None
        lowest = t.alerts.tiers[0][1]
        no_data: list[_NoData] = []
        for r in rules:
            if r.kind == "no_data" and r.scope == "series" and (r.interval_ns or expect):
                no_data.append(_NoData(r.name, r.interval_ns or expect or 0, r.factor, r.severity or lowest, r.origin))
        if expect and not any(n.key == "no_data" for n in no_data):
            origin = st.lines.get(f"expect.{parameter}", st.origin) if st is not None else ""
            no_data.append(_NoData("no_data", expect, 3.0, lowest, origin))
        if spec is None and not extra and not no_data:
            return None
        screen = t.instrument(station, parameter)
        # The rest of a plan is the same for every series under one ThresholdSet: share equal plans.
        key = (
            parameter,
            _spec_key(spec),
            limit_rule,
            tuple(extra),
            tuple((n.key, n.interval_ns, n.factor, n.severity, n.origin) for n in no_data),
            expect is not None,
            repr(sorted(screen.items())),
        )
        plan = self._interned.get(key)
        if plan is not None:
            return plan
        rates: dict[str, float] = {}
        for r in extra:
            if r.kind == "rate":
                factor = unit_factor(parameter, r.unit) if r.unit else 1.0
                rates[r.name] = r.rise_per_hour * (factor or 1.0)
        sc = t.screen
        plan = _Plan(
            parameter,
            spec,
            limit_rule,
            extra,
            no_data,
            expect is not None,
            screen,
            sc.ignore_flags,
            sc.suspect_flags,
            sc.dl_flags,
            t.alerts.clear_ratio,
            t.alerts.clear_hold_ns,
            lowest,
            max((r.window_ns for r in extra), default=0),
            rates,
        )
        self._interned[key] = plan
        return plan

    # ---- the clock of the no-data rule

    def stream_time(self, now_ns: int) -> int:
        """Stream time at wall time `now_ns` (see the class docstring)."""
        if self.clock_ns is None:
            return now_ns
        return self.clock_ns + max(0, now_ns - self.clock_wall_ns)

    def _advance(self, first_ts: int, last_ts: int, now_ns: int) -> None:
        if self.started_ns is None:
            self.started_ns = first_ts
        if self.clock_ns is None or last_ts >= self.clock_ns:
            self.clock_ns = last_ts
            self.clock_wall_ns = now_ns

    # ---- evaluation

    def evaluate(
        self, readings: Sequence[Reading], now_ns: int | None = None, open_alerts: Collection[AlertKey] | None = None
    ) -> list[SeriesCheck | QuietChecks]:
        """Screen and judge a batch; SeriesChecks in the order the series first appear, each in time order.

        Fast path (see the module): with `open_alerts` (the keys of the alerts open now), a compliant simple
        series without an open limit alert gets no SeriesCheck, as it cannot cause an event. Without it, more
        than `quiet_expand` such series come as one QuietChecks at the end (AlertBook.update takes it), fewer
        as their own SeriesChecks in their place.
        """
        self.suspects = []
        if not readings:
            return []
        if not self.fast:
            return [*self._evaluate_slow(readings, now_ns)]
        n = len(readings)
        slots = self._slots(readings)
        ts = np.fromiter(map(_TS, readings), dtype=np.int64, count=n)
        values = np.fromiter(map(_VALUE, readings), dtype=np.float64, count=n)
        self._advance(int(ts.min()), int(ts.max()), time.time_ns() if now_ns is None else now_ns)
        kind = self._kind[slots]
        planned = (kind == SIMPLE) | (kind == SLOW)
        new = planned & (self._seq[slots] < 0)
        if new.any():  # first evaluation, in order of first appearance (as the per-series path does it)
            unique, first = np.unique(slots[new], return_index=True)
            for slot in unique[np.argsort(first)].tolist():
                self._see(slot)
        # A series leaves the fast path for this batch on any reading that is flagged, violates the limit
        # or falls outside the time its fast-path limit holds, or when its limit alert is open.
        out = (kind != SIMPLE) | (values > self._high[slots]) | (values < self._low[slots])
        out |= (ts < self._wfrom[slots]) | (ts >= self._wuntil[slots])
        if any(map(_FLAG, readings)):
            out |= np.fromiter(map(bool, map(_FLAG, readings)), dtype=bool, count=n)
        slow_series = np.zeros(len(self._keys), dtype=bool)
        slow_series[slots[out]] = True
        if open_alerts:
            for station, parameter, key in open_alerts:
                if not key and (slot := self._slot_of.get((station, parameter))) is not None:
                    slow_series[slot] = True
        on_slow = slow_series[slots]
        quiet = ~on_slow
        kept = self._quiet_batch(slots[quiet], ts[quiet], values[quiet]) if quiet.any() else None
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
            bulk = QuietChecks(self, *kept)
            if bulk.count > self.quiet_expand:
                checks.append(bulk)
            else:
                checks = [*self._merge(slots, per_series, bulk.expand())]
        if self._station_rules:
            checks += self._station_batch(readings)
        return checks

    def _evaluate_slow(self, readings: Sequence[Reading], now_ns: int | None) -> list[SeriesCheck]:
        """The per-series path for a whole batch: the reference the fast path must agree with."""
        groups: dict[int, list[Reading]] = {}
        for r in readings:
            groups.setdefault(self._slot(r.station, r.parameter), []).append(r)
        first = min(r.ts_ns for r in readings)
        last = max(r.ts_ns for r in readings)
        self._advance(first, last, time.time_ns() if now_ns is None else now_ns)
        checks = self._groups(groups)
        if self._station_rules:
            checks += self._station_batch(readings)
        return checks

    def _groups(self, groups: dict[int, list[Reading]]) -> list[SeriesCheck]:
        if self._dep_params:
            for slot, rows in groups.items():
                key = self._keys[slot]
                if key[1] in self._dep_params:
                    self._record_dependency(key, rows)
        checks: list[SeriesCheck] = []
        for slot, rows in groups.items():
            checks += self._series_batch(slot, rows)
        return checks

    def _merge(self, slots: np.ndarray, checks: list[SeriesCheck], quiet: list[SeriesCheck]) -> list[SeriesCheck]:
        """Per-series checks and expanded quiet ones in the order their series first appear in the batch."""
        unique, first = np.unique(slots, return_index=True)
        rank = dict(zip(unique.tolist(), first.tolist(), strict=True))
        keyed = [(rank[self._slot_of[(c.station, c.parameter)]], c) for c in [*checks, *quiet]]
        keyed.sort(key=itemgetter(0))  # stable: a series' own checks keep their order
        return [c for _, c in keyed]

    def _quiet_batch(
        self, slots: np.ndarray, ts: np.ndarray, values: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Late readings out, then the last reading of each quiet series moved; the kept readings, each
        series' in time order (None if none). Same rule as `_series_batch`: not newer than the last one, or a
        repeat of a time within the batch, is late; of equal times the first in the batch is kept."""
        counts = np.bincount(slots)
        last = self._last_ts[slots]
        keep = (ts > last) | (last == _NO_TS)
        many = bool(counts.max() > 1)
        if many:  # put each series' readings together, in time order
            order = np.lexsort((ts, slots))  # stable: of equal times, the first in the batch comes first
            slots, ts, values, keep = slots[order], ts[order], values[order], keep[order]
            keep[1:] &= (ts[1:] != ts[:-1]) | (slots[1:] != slots[:-1])
        if not keep.all():
            late, count = np.unique(slots[~keep], return_counts=True)
            for slot, c in zip(late.tolist(), count.tolist(), strict=True):
                self._late(slot, c)
            slots, ts, values = slots[keep], ts[keep], values[keep]
        if not len(slots):
            return None
        if many:
            end = np.concatenate((slots[1:] != slots[:-1], [True]))
            self._last_ts[slots[end]] = ts[end]
            self._last_value[slots[end]] = values[end]
        else:
            self._last_ts[slots] = ts
            self._last_value[slots] = values
        return slots, ts, values

    def _record_dependency(self, key: tuple[str, str], rows: list[Reading]) -> None:
        """Keep the latest readings of a parameter that limits depend on (hardness). Memory: 256 per station."""
        ok = sorted((r.ts_ns, r.value) for r in rows if not (r.flag and r.flag.lower() in NOT_EVALUATED_FLAGS))
        ring = self._deps.setdefault(key, Ring(64, sums=False))
        last = int(ring.ts[-1]) if len(ring) else None
        fresh = [(t, v) for t, v in ok if last is None or t > last]
        fresh = [x for i, x in enumerate(fresh) if i == 0 or x[0] != fresh[i - 1][0]]
        if fresh:
            ring.extend(np.array([t for t, _ in fresh], dtype=np.int64), np.array([v for _, v in fresh]))
            ring.keep_last(256)

    def _dependency(self, station: str, spec: LimitSpec, ts: np.ndarray) -> np.ndarray | None:
        """As-of values of the dependency at each reading's time; NaN (→ the default band) when unknown."""
        if not spec.depends_on:
            return None
        fallback = np.nan if spec.assumed is None else spec.assumed
        ring = self._deps.get((station, spec.depends_on))
        if ring is None or not len(ring):
            return np.full(len(ts), fallback)
        pos = np.searchsorted(ring.ts, ts, side="right") - 1
        return np.where(pos >= 0, ring.values[np.maximum(pos, 0)], fallback)

    def _series_batch(self, slot: int, rows: list[Reading]) -> list[SeriesCheck]:
        plan = self._plan_of[slot]
        if plan is None:
            return []
        station = self._keys[slot][0]
        if self._seq[slot] < 0:
            self._see(slot)
        st = self._series.get(slot)
        if st is None and plan.stateful:
            st = self._series[slot] = _Series()
        n = len(rows)
        ts = np.fromiter((r.ts_ns for r in rows), dtype=np.int64, count=n)
        values = np.fromiter((r.value for r in rows), dtype=np.float64, count=n)
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        flags = [rows[i].flag for i in order] if any(r.flag for r in rows) else None
        keep = np.ones(n, dtype=bool)
        last = int(self._last_ts[slot])
        prev = None if last == _NO_TS else last
        if prev is not None:
            keep &= ts > prev
        keep[1:] &= ts[1:] != ts[:-1]
        if not keep.all():
            self._late(slot, int((~keep).sum()))
            ts, values = ts[keep], values[keep]
            if flags is not None:
                flags = [f for f, k in zip(flags, keep, strict=True) if k]
        if not len(ts):
            return []
        checks = self._no_data_batch(plan, station, prev, float(self._last_value[slot]), ts, values)
        self._last_ts[slot], self._last_value[slot] = int(ts[-1]), float(values[-1])
        if self._kind[slot] == SIMPLE:
            self._set_window(slot)
        quality, dl = self._screen(plan, station, st, ts, values, flags)
        if plan.evaluates:
            checks += self._judge(plan, station, st, ts, values, quality, dl)
        return checks

    def _late(self, slot: int, count: int) -> None:
        self.late += count
        if self._late_n[slot] == 0:
            station, parameter = self._keys[slot]
            log.warning(
                "%s/%s: %d reading(s) not newer than the last one evaluated were left out of the rules "
                "(late or repeated); further ones are only counted",
                station,
                parameter,
                count,
            )
        self._late_n[slot] += count

    # ---- screening

    def _screen(
        self,
        plan: _Plan,
        station: str,
        st: _Series | None,
        ts: np.ndarray,
        values: np.ndarray,
        flags: list[str | None] | None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quality per reading (OK, BELOW_DL, IGNORED, SUSPECT, RANGE, FLATLINE, SPIKE) and detection limits.

        Flatline: O(1) memory (last value, run length). Spike: the last spike_window screened values.
        Range and detection limit: O(1). Time O(n) per batch, O(n · spike_window) for the spike medians.
        """
        n = len(ts)
        q = np.zeros(n, dtype=np.int8)
        dl = np.full(n, np.nan)
        cfg = plan.screen
        config_dl = cfg.get("detection_limit")
        if flags is not None:
            low = [f.lower() if f else "" for f in flags]
            q[np.fromiter((f in plan.ignore for f in low), dtype=bool, count=n)] = IGNORED
            sus = np.fromiter((f in plan.suspect for f in low), dtype=bool, count=n)
            q[sus & (q == OK)] = SUSPECT
            below = np.fromiter((f in plan.dl_flags for f in low), dtype=bool, count=n) & (q == OK)
            q[below] = BELOW_DL
            fallback = float(config_dl) if isinstance(config_dl, float) else 0.0
            dl[below] = np.where(values[below] > 0, values[below], fallback)
        rng = cfg.get("range")
        if isinstance(rng, tuple):
            q[(q == OK) & ((values < rng[0]) | (values > rng[1]))] = RANGE
        if isinstance(config_dl, float):
            below = (q == OK) & (values < config_dl)
            q[below] = BELOW_DL
            dl[below] = config_dl
        flat_n = cfg.get("flatline")
        spike_w = cfg.get("spike_window")
        seq = np.flatnonzero(q == OK)
        if seq.size and (flat_n or spike_w):
            assert st is not None  # a plan that screens this way is stateful
            sv = values[seq]
            if isinstance(flat_n, int):
                same = np.empty(len(sv), dtype=bool)
                same[0] = sv[0] == st.flat_value
                same[1:] = sv[1:] == sv[:-1]
                run = run_lengths(same, max(st.flat_run - 1, 0)) + 1
                st.flat_value, st.flat_run = float(sv[-1]), int(run[-1])
                q[seq[run >= flat_n]] = FLATLINE
            if isinstance(spike_w, int):
                spikes = self._spikes(plan, st, sv, spike_w)
                q[seq[spikes & (q[seq] == OK)]] = SPIKE
        bad = (q == SUSPECT) | (q >= RANGE)
        if bad.any():
            for i in np.flatnonzero(bad):
                reason = QUALITY[q[i]]
                self.suspects.append((station, plan.parameter, int(ts[i]), float(values[i]), reason))
                self.screened[reason] += 1
        return q, dl

    def _spikes(self, plan: _Plan, st: _Series, sv: np.ndarray, window: int) -> np.ndarray:
        """A value further than spike_mads × max(1.4826·MAD, spike_floor) from the median of the previous
        `window` screened values is a spike, unless the previous value was a spike in the same direction
        (then it is a level shift, and real: a pollution front must not be screened away)."""
        if st.screen is None:
            st.screen = Ring(2 * window + 16, sums=False)
        hist = st.screen.values
        allv = np.concatenate((hist, sv))
        h, m = len(hist), len(sv)
        raw = np.zeros(m, dtype=np.int8)
        js = np.arange(m)[h + np.arange(m) >= window]
        if js.size:
            rows = sliding_window_view(allv[:-1], window)[h + js - window]
            med = np.median(rows, axis=1)
            mad = np.median(np.abs(rows - med[:, None]), axis=1)
            mads = float(plan.screen.get("spike_mads", 6.0))  # type: ignore[arg-type]
            floor = float(plan.screen.get("spike_floor", 0.0))  # type: ignore[arg-type]
            thr = mads * np.maximum(MAD_TO_SIGMA * mad, floor)
            dev = sv[js] - med
            raw[js] = np.where(dev > thr, 1, np.where(-dev > thr, -1, 0))
        prev = np.concatenate(([st.spike_dir], raw[:-1]))
        st.spike_dir = int(raw[-1])
        st.screen.extend(np.zeros(m, dtype=np.int64), sv)
        st.screen.keep_last(window)
        return (raw != 0) & (prev != raw)

    # ---- the rules

    def _judge(
        self,
        plan: _Plan,
        station: str,
        st: _Series | None,
        ts: np.ndarray,
        values: np.ndarray,
        quality: np.ndarray,
        dl: np.ndarray,
    ) -> list[SeriesCheck]:
        ev = (quality == OK) | (quality == BELOW_DL)
        if not ev.any():
            return []
        ets, ev_v = ts[ev], values[ev]
        below = quality[ev] == BELOW_DL
        edl = dl[ev]
        shown = np.where(below, edl, ev_v)  # a below-DL reading is reported as "< DL"
        checks: list[SeriesCheck] = []
        spec = plan.spec
        idx = ratio = viol = calm = None
        if spec is not None:
            idx = spec.index(ets, self._dependency(station, spec, ets))
            ratio, viol = verdict(spec.kind, spec.lows[idx], spec.highs[idx], shown)
            if below.any():  # the true value is somewhere in [0, DL)
                viol = np.where(below, shown <= spec.lows[idx], viol)
            calm = ~viol & (ratio <= self._clear_ratio(plan, plan.limit_rule))
            if below.any() and spec.kind != "max":
                calm &= ~below
            checks.append(self._limit_check(plan, station, st, ets, shown, ratio, viol, calm, idx, below))
        if plan.extra:
            assert st is not None  # a plan with extra rules is stateful
            stat = np.where(below, edl / 2, ev_v)  # means and slopes use half the detection limit
            ring = st.values
            if ring is None:
                ring = st.values = Ring(64, moments=any(r.kind == "rate" for r in plan.extra))
            start = ring.extend(ets, stat)
            pos = np.arange(start, start + len(ets))
            for rule in plan.extra:
                if rule.kind == "mean" and spec is not None:
                    checks.append(self._mean_check(plan, station, rule, ring, ets, pos))
                elif rule.kind == "rate":
                    checks.append(self._rate_check(plan, station, rule, ring, ets, shown, pos, ratio, viol, idx))
            if plan.window_ns:
                ring.trim_before(int(ets[-1]) - plan.window_ns)
        return checks

    @staticmethod
    def _clear_ratio(plan: _Plan, rule: RuleSpec | None) -> float:
        return rule.clear_ratio if rule is not None and rule.clear_ratio is not None else plan.clear_ratio

    @staticmethod
    def _clear_hold(plan: _Plan, rule: RuleSpec | None) -> int:
        return rule.clear_hold_ns if rule is not None and rule.clear_hold_ns is not None else plan.clear_hold_ns

    def _limit_check(
        self,
        plan: _Plan,
        station: str,
        st: _Series | None,
        ts: np.ndarray,
        shown: np.ndarray,
        ratio: np.ndarray,
        viol: np.ndarray,
        calm: np.ndarray,
        idx: np.ndarray,
        below: np.ndarray,
    ) -> SeriesCheck:
        """Instantaneous: each reading against its limit. Memory O(1) per series, time O(readings).

        Persistence (when a rule says so): the alert only once the limit is exceeded for `readings` readings
        in a row and/or for `duration`; a compliant reading ends the run, screened readings neither end nor
        extend it. Memory O(1) per series: the run's start and length.
        """
        rule = plan.limit_rule
        spec = plan.spec
        assert spec is not None
        condition = viol
        detail: Callable[[int], str] | None = None
        if below.any():
            unit = _unit(plan.parameter)

            def detail(i: int) -> str:
                return f"below the detection limit {_num(float(shown[i]))}{unit}" if below[i] else ""

        if rule is not None and rule.kind == "persistence":
            assert st is not None  # a persistence plan is stateful
            persist = st.persist if st.persist is not None else {}
            carry = persist.get(rule.name)
            starts = run_starts(viol, ts, carry[0] if carry else None)
            length = run_lengths(viol, carry[1] if carry else 0)
            condition = viol.copy()
            if rule.readings:
                condition &= length >= rule.readings
            if rule.duration_ns:
                condition &= ts - starts >= rule.duration_ns
            if viol[-1]:
                persist[rule.name] = (int(starts[-1]), int(length[-1]))
                st.persist = persist
            else:
                persist.pop(rule.name, None)

            def detail(i: int) -> str:
                return (
                    f"above the limit for {int(length[i])} readings over {format_duration(int(ts[i] - starts[i]))}"
                    if viol[i]
                    else ""
                )

        return SeriesCheck(
            station,
            plan.parameter,
            spec.limits[int(idx[-1])],
            ts,
            shown,
            ratio,
            condition,
            rule=rule.kind if rule is not None else "instantaneous",
            key="",
            calm=calm,
            severity=rule.severity if rule is not None else "",
            clear_hold_ns=self._clear_hold(plan, rule),
            limits=spec.limits,
            limit_index=idx,
            detail=detail,
        )

    def _mean_check(
        self, plan: _Plan, station: str, rule: RuleSpec, ring: Ring, ts: np.ndarray, pos: np.ndarray
    ) -> SeriesCheck:
        """Rolling mean over (t − window, t] against the standard's mean limit (AA-EQS), else its limit.
        No alert before the window has filled (data since at least t − window); the reason is kept in
        `pending` and logged once.
        Memory: the readings of one window per series (shared ring); time O(1) per reading."""
        spec = plan.spec
        assert spec is not None
        mspec = spec.mean if spec.mean is not None else spec  # a mean is held to the standard's mean limit
        window = rule.window_ns
        left = window_bounds(ring.ts, ts, window)
        n, total = ring.window_sums(left, pos + 1)[:2]
        mean = total / n
        since = ring.since if ring.since is not None else int(ts[0])
        filled = ts - window >= since
        enough = filled & (n >= max(rule.min_readings, 1))
        midx = mspec.index(ts, self._dependency(station, mspec, ts))
        ratio, viol = verdict(mspec.kind, mspec.lows[midx], mspec.highs[midx], mean)
        viol &= enough
        calm = enough & ~viol & (ratio <= self._clear_ratio(plan, rule))
        self._pending(plan, station, rule, ts, filled, since, window)

        def detail(i: int) -> str:
            return (
                f"rolling {format_duration(window)} mean {_num(float(mean[i]))}{_unit(plan.parameter)} over "
                f"{int(n[i])} readings"
            )

        return SeriesCheck(
            station,
            plan.parameter,
            mspec.limits[int(midx[-1])],
            ts,
            mean,
            ratio,
            viol,
            rule="mean",
            key=rule.name,
            calm=calm,
            severity=rule.severity,
            clear_hold_ns=self._clear_hold(plan, rule),
            limits=mspec.limits,
            limit_index=midx,
            detail=detail,
        )

    def _pending(
        self, plan: _Plan, station: str, rule: RuleSpec, ts: np.ndarray, filled: np.ndarray, since: int, window: int
    ) -> None:
        key = (station, plan.parameter, rule.name)
        if not filled[-1]:
            have = format_duration(int(ts[-1]) - since)
            reason = (
                f"rolling {format_duration(window)} mean: no alert until the window has filled "
                f"({have} of {format_duration(window)} of data so far)"
            )
            if key not in self.pending:
                log.info("%s/%s: %s", station, plan.parameter, reason)
            self.pending[key] = reason
        elif self.pending.pop(key, None) is not None:
            log.info(
                "%s/%s: rolling %s mean window filled; it is evaluated from now on",
                station,
                plan.parameter,
                format_duration(window),
            )

    def _rate_check(
        self,
        plan: _Plan,
        station: str,
        rule: RuleSpec,
        ring: Ring,
        ts: np.ndarray,
        shown: np.ndarray,
        pos: np.ndarray,
        ratio: np.ndarray | None,
        viol: np.ndarray | None,
        idx: np.ndarray | None,
    ) -> SeriesCheck:
        """Rate of change, an early warning before the limit: fires when the least-squares slope over
        (t − window, t] is at least rise_per_hour while the reading is between `above` × the limit and the
        limit. It stays open through an exceedance (the limit alert speaks then) and clears only once the
        series has enough readings to show it is no longer rising (slope ≤ 0) and is back under the warning
        level (`above` × limit, or limit × clear_ratio without `above`), held for one window unless the rule
        sets clear_hold: noise on a plateau or a gap in the data does not make it flap. Without a limit it
        works on the slope alone. Memory: the readings of one window per series (shared ring, with prefix sums
        of t, t², t·v); time O(1) per reading."""
        left = window_bounds(ring.ts, ts, rule.window_ns)
        n, sv, st_, stt, stv = ring.window_sums(left, pos + 1)
        denom = n * stt - st_ * st_
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = np.where(denom > 0, (n * stv - st_ * sv) / denom, np.nan)
        rise = plan.rates[rule.name]
        ok = (n >= rule.min_readings) & (denom > 0)
        rising = ok & (slope >= rise)
        settled = ok & (slope <= 0)
        spec = plan.spec
        if spec is not None and ratio is not None and viol is not None and idx is not None:
            condition = rising & ~viol & (ratio >= rule.above)
            level = ratio < rule.above if rule.above else ratio <= self._clear_ratio(plan, rule)
            calm = settled & ~viol & level
            limits, limit_index, shown_ratio = spec.limits, idx, ratio
            limit = spec.limits[int(idx[-1])]
        else:
            condition, calm = rising, settled
            unit = _unit(plan.parameter).strip()
            limit = Limit(
                plan.parameter,
                "rate",
                rise,
                None,
                f"{unit}/h" if unit else "/h",
                "rate rule",
                "",
                rule.origin,
                origin=rule.origin,
                text=f"a rise of {_num(rise)} {unit} per hour over {format_duration(rule.window_ns)}",
            )
            limits, limit_index = (limit,), np.zeros(len(ts), dtype=np.int64)
            with np.errstate(invalid="ignore"):
                shown_ratio = np.where(ok, slope / rise, 0.0)

        def detail(i: int) -> str:
            label = format_duration(rule.window_ns)
            if not ok[i]:
                return f"too few readings in the last {label} for a trend"
            verb = "rising" if slope[i] > 0 else "falling" if slope[i] < 0 else "flat,"
            return f"{verb} {_num(abs(float(slope[i])))}{_unit(plan.parameter)} per hour over the last {label}"

        hold = rule.clear_hold_ns if rule.clear_hold_ns is not None else rule.window_ns
        return SeriesCheck(
            station,
            plan.parameter,
            limit,
            ts,
            shown,
            shown_ratio,
            condition,
            rule="rate",
            key=rule.name,
            calm=calm,
            severity=rule.severity or plan.lowest,
            clear_hold_ns=hold,
            limits=limits,
            limit_index=limit_index,
            detail=detail,
        )

    # ---- no data

    def _no_data_batch(
        self, plan: _Plan, station: str, prev: int | None, prev_value: float, ts: np.ndarray, values: np.ndarray
    ) -> list[SeriesCheck]:
        """Silences inside the data (a gap longer than factor × interval) fire at the moment the series became
        overdue and clear with the reading that ends the gap; any reading clears an alert the clock fired.
        Memory O(1) per series (the last reading's time and value)."""
        if not plan.no_data:
            return []
        if prev is None and plan.listed:
            prev = self.started_ns
        out = []
        for nd in plan.no_data:
            out.append(_gap_check(station, plan.parameter, nd, prev, prev_value, ts, values))
        return out

    def _station_batch(self, readings: Sequence[Reading]) -> list[SeriesCheck]:
        """Station-wide no data: the same, over every reading of a station (stations in order of appearance)."""
        by_station: dict[str, list[int]] = {}
        for r in readings:
            by_station.setdefault(r.station, []).append(r.ts_ns)
        out: list[SeriesCheck] = []
        t = self._thresholds
        for sid, pairs in by_station.items():
            rules = [r for r in self._station_rules if _station_match(r, sid, t)]
            last = self._stations_last.get(sid)
            ts = np.unique(np.array(pairs, dtype=np.int64))
            if last is not None:
                ts = ts[ts > last[0]]
            if not len(ts):
                continue
            values = np.full(len(ts), np.nan)
            prev = last[0] if last is not None else (self.started_ns if sid in t.stations else None)
            for r in rules:
                nd = _NoData(r.name, r.interval_ns, r.factor, r.severity or t.alerts.tiers[0][1], r.origin)
                out.append(_gap_check(sid, "*", nd, prev, math.nan, ts, values))
            self._stations_last[sid] = (int(ts[-1]), math.nan)
        return out

    def silent(self, now_ns: int | None = None) -> list[SeriesCheck]:
        """No-data checks at stream time: series (and stations) overdue now, without any reading arriving.
        Time O(series with a no-data rule) per call."""
        now = self.stream_time(time.time_ns() if now_ns is None else now_ns)
        if self.started_ns is None:
            self.started_ns = now
        out: list[SeriesCheck] = []
        # Series evaluated before, in order of their first evaluation, then expected ones never evaluated.
        seen = sorted((int(self._seq[s]), s) for s in self._nodata if self._seq[s] >= 0)
        slots = [s for _, s in seen]
        slots += [s for s in (self._slot(*k) for k in self._listed) if self._seq[s] < 0]
        for slot in slots:
            plan = self._plan_of[slot]
            if plan is None or not plan.no_data:
                continue
            key = self._keys[slot]
            last_ts = int(self._last_ts[slot])
            last = last_ts if last_ts != _NO_TS else (self.started_ns if plan.listed else None)
            if last is None:
                continue
            value = float(self._last_value[slot])
            for nd in plan.no_data:
                if now - last > nd.limit_ns:
                    out.append(_overdue(key[0], key[1], nd, last, value))
        t = self._thresholds
        stations = set(self._stations_last) | set(t.stations)
        for sid in stations:
            rules = [r for r in self._station_rules if _station_match(r, sid, t)]
            if not rules:
                continue
            last_seen = self._stations_last.get(sid)
            last = last_seen[0] if last_seen is not None else self.started_ns
            for r in rules:
                nd = _NoData(r.name, r.interval_ns, r.factor, r.severity or t.alerts.tiers[0][1], r.origin)
                if now - last > nd.limit_ns:
                    out.append(_overdue(sid, "*", nd, last, math.nan))
        return out


def _station_match(rule: RuleSpec, station: str, t: ThresholdSet) -> bool:
    st = t.stations.get(station)
    if rule.stations and station not in rule.stations:
        return False
    return rule.intake is None or (st is not None and st.intake) == rule.intake


def _unit(parameter: str) -> str:
    p = PARAMETERS.get(parameter)
    return f" {p.unit}" if p is not None and p.unit else ""


def _no_data_limit(parameter: str, nd: _NoData) -> Limit:
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
    station: str, parameter: str, nd: _NoData, prev: int | None, prev_value: float, ts: np.ndarray, values: np.ndarray
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
            return f"no reading since {_iso(int(pts_ts[i]) - nd.limit_ns)}"
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
    )


def _overdue(station: str, parameter: str, nd: _NoData, last: int, value: float) -> SeriesCheck:
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
        detail=lambda i: f"no reading since {_iso(last)}",
    )
