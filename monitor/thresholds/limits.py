"""The limits one series can be held to, and how one is picked per reading (dated step, dependency band)."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.domain.params import PARAMETERS
from monitor.thresholds.model import Item, Limit, Override, Standard, Station
from monitor.thresholds.notation import fmt_number


@dataclass(eq=False)
class LimitSpec:
    """Every limit a series can be held to, and how one is picked per reading (date step, dependency band).

    Vectorised: `index(ts, dep)` gives the limit index per reading, `lows`/`highs` the bounds per index.
    """

    parameter: str
    kind: str  # max | min | range
    limits: tuple[Limit, ...]
    step_ns: np.ndarray  # int64; limit i applies before step_ns[i] (dated steps), else empty
    depends_on: str = ""
    bounds: np.ndarray = field(default_factory=lambda: np.empty(0))
    default: int = 0
    assumed: float | None = None  # the station's assumed dependency value
    origin: str = ""
    mean: LimitSpec | None = None  # the limit on the rolling mean (AA-EQS), when the item has one
    mean_window_ns: int = 0

    def __post_init__(self) -> None:
        lo, hi = [], []
        for lim in self.limits:
            if self.kind == "max":
                lo.append(-math.inf)
                hi.append(lim.value)
            elif self.kind == "min":
                lo.append(lim.value)
                hi.append(math.inf)
            else:
                lo.append(lim.low if lim.low is not None else -math.inf)
                hi.append(lim.value)
        self.lows = np.array(lo, dtype=np.float64)
        self.highs = np.array(hi, dtype=np.float64)

    def index(self, ts_ns: np.ndarray, dep: np.ndarray | None = None) -> np.ndarray:
        """The limit index per reading: by date for dated steps, by band of the dependency's value."""
        if self.step_ns.size:
            return np.searchsorted(self.step_ns, ts_ns, side="right")
        if self.depends_on:
            if dep is None:
                dep = np.full(len(ts_ns), np.nan if self.assumed is None else self.assumed)
            idx = np.searchsorted(self.bounds, dep, side="right")
            return np.where(np.isnan(dep), self.default, idx)
        return np.zeros(len(ts_ns), dtype=np.int64)

    def at(self, ts_ns: int | None = None, dep: float | None = None) -> Limit:
        """The one limit in force at `ts_ns` (now when None) for a dependency value (the default when None)."""
        when = time.time_ns() if ts_ns is None else ts_ns
        dep_arr = None if dep is None else np.array([dep], dtype=np.float64)
        return self.limits[int(self.index(np.array([when], dtype=np.int64), dep_arr)[0])]


def item_spec(item: Item, std: Standard, klass: str, lake: bool, st: Station | None) -> LimitSpec:
    """The LimitSpec of one standard item for one class and water body."""
    key = klass if std.classes else ""
    shown_class = klass if std.classes else ""
    table = item.lake_limits if lake and item.lake_limits else item.limits

    def make(value: float, low: float | None, note: str) -> Limit:
        return Limit(
            item.parameter,
            item.kind,
            value,
            low,
            item.unit,
            std.id,
            shown_class,
            item.source,
            note=note,
            origin=item.origin,
        )

    low = item.lows.get(key) if item.kind == "range" else None
    if item.band_limits:
        dep_unit = PARAMETERS[item.depends_on].unit if item.depends_on in PARAMETERS else ""
        limits = tuple(make(v, None, _band_note(item, i, dep_unit)) for i, v in enumerate(item.band_limits))
        default = item.default_band if item.default_band >= 0 else _most_protective(item.kind, item.band_limits)
        assumed = st.assume.get(item.depends_on) if st is not None else None
        mean = None
        if item.mean_band_limits:
            mean_limits = tuple(
                make(v, None, _band_note(item, i, dep_unit) + ", annual average")
                for i, v in enumerate(item.mean_band_limits)
            )
            mean = LimitSpec(
                item.parameter,
                item.kind,
                mean_limits,
                np.empty(0, dtype=np.int64),
                item.depends_on,
                np.array(item.bounds),
                default,
                assumed,
                item.origin,
            )
        return LimitSpec(
            item.parameter,
            item.kind,
            limits,
            np.empty(0, dtype=np.int64),
            item.depends_on,
            np.array(item.bounds),
            default,
            assumed,
            item.origin,
            mean,
            item.mean_window_ns,
        )
    if item.steps:
        limits = tuple(make(v, low, f"until {day}") for _, day, v in item.steps)
        last_day = item.steps[-1][1]
        limits += (make(table[key], low, f"from {last_day}"),)
        step_ns = np.array([ns for ns, _, _ in item.steps], dtype=np.int64)
        return LimitSpec(item.parameter, item.kind, limits, step_ns, origin=item.origin)
    mean = None
    if key in item.mean_limits:
        mean = LimitSpec(
            item.parameter,
            item.kind,
            (make(item.mean_limits[key], low, "mean"),),
            np.empty(0, dtype=np.int64),
            origin=item.origin,
        )
    return LimitSpec(
        item.parameter,
        item.kind,
        (make(table[key], low, ""),),
        np.empty(0, dtype=np.int64),
        origin=item.origin,
        mean=mean,
        mean_window_ns=item.mean_window_ns,
    )


def _band_note(item: Item, i: int, unit: str) -> str:
    name = PARAMETERS[item.depends_on].name if item.depends_on in PARAMETERS else item.depends_on
    u = f" {unit}" if unit else ""
    if i == 0:
        rng = f"< {fmt_number(item.bounds[0])}{u}"
    elif i == len(item.bounds):
        rng = f"≥ {fmt_number(item.bounds[-1])}{u}"
    else:
        rng = f"{fmt_number(item.bounds[i - 1])}–<{fmt_number(item.bounds[i])}{u}"
    return f"{name} class {i + 1} ({rng})"


def _most_protective(kind: str, values: Sequence[float]) -> int:
    """While the dependency is unmeasured, hold the series to the strictest band's limit."""
    pick = min if kind == "max" else max
    return values.index(pick(values))


def override_spec(pid: str, o: Override, item: Item | None, klass: str) -> LimitSpec:
    """A station's own limit; a range keeps the standard item's low bound when the override gives none."""
    kind = o.kind or (item.kind if item is not None else "max")
    low = o.low
    if kind == "range" and low is None and item is not None:
        low = item.lows.get(klass, next(iter(item.lows.values()), None))
    unit = PARAMETERS[pid].unit if pid in PARAMETERS else ""
    lim = Limit(
        pid,
        kind,
        o.value,
        low if kind == "range" else None,
        unit,
        "local limit",
        "",
        o.source,
        note=o.source,
        origin=o.origin,
    )
    return LimitSpec(pid, kind, (lim,), np.empty(0, dtype=np.int64), origin=o.origin)
