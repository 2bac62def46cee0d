"""Threshold files: standards, stations, rules, screening and alert policy, in TOML.

`check` validates files and reports every problem as `path:line: message`, so that
`riverwatch thresholds check` can point a user at the exact line; `load` returns the ready-to-use
`ThresholdSet` or raises `ThresholdError` with the same problems; `show` prints what applies at one station
and where each piece comes from. Limits are converted to each parameter's standard unit (monitor.domain.params) on
load, so they compare directly with readings.

Every table is optional and may sit in any file; a file with `[items.*]` needs `[standard]`::

    [standard]            id, name, classes = ["I", ...] (absent: one limit for every station, e.g. WHO)
    [items.<parameter>]   kind = max | min | range | change, unit, source, scope
                          limits = {I = ..} or limit = ..; lake_limits; low / high (range)
                          steps = [{until = 2036-01-12, limit = ..}]   dated values, before `limit`
                          depends_on = "hardness", bounds = [40, 50, ..], limit = [one per band]
                          mean_limit(s), mean_window = "365d"          a limit on the rolling mean
    [stations.<id>]       name, name_zh, river, river_km, class, intake, water_body, timezone,
                          coordinates = [lat, lon], standard = "id" | [ids], expect = {cd = "2h"},
                          assume = {hardness = 120}, limits = {cd = 0.003}, instruments.<parameter>
    [classes]             intake = "II", default = "III"      the class policy (wins over station files)
    [[rules]]             kind = instantaneous | persistence | mean | rate | no_data, filters, settings
    [screen]              ignore_flags, suspect_flags, below_dl_flags, flatline, spike_*  (every series)
    [instruments.<p>]     range, detection_limit, unit, flatline, spike_window, spike_mads, spike_floor
    [alerts]              severity = {warning = 1, ...}, clear_ratio, clear_hold

When several files are loaded, earlier standards take precedence for a parameter they cover, unless a
station names its standards.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import datetime as dt
import difflib
import importlib.resources
import itertools
import math
import re
import site
import sys
import sysconfig
import time
import tomllib
import zoneinfo
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from monitor.domain.params import PARAMETERS, resolve, unit_factor

__all__ = [
    "AlertPolicy",
    "ClassPolicy",
    "Item",
    "Limit",
    "LimitSpec",
    "Override",
    "Problem",
    "RuleSpec",
    "ScreenSpec",
    "Standard",
    "Station",
    "ThresholdError",
    "ThresholdSet",
    "check",
    "format_duration",
    "load",
    "parse_duration",
    "shipped_path",
    "show",
]

KINDS = ("max", "min", "range", "change")
RULE_KINDS = ("instantaneous", "persistence", "mean", "rate", "no_data")
LIMIT_RULES = ("instantaneous", "persistence")  # these decide the alert on the limit itself
DEFAULT_CLASSES = ("I", "II", "III", "IV", "V")  # for station-only files: the classes of GB 3838-2002
WATER_BODIES = ("river", "lake")
DEFAULT_TIERS: tuple[tuple[float, str], ...] = ((1.0, "warning"), (5.0, "serious"), (20.0, "critical"))
DEFAULT_IGNORE_FLAGS = frozenset({"maintenance", "calibration"})
DEFAULT_SUSPECT_FLAGS = frozenset({"suspect", "fault", "invalid"})
# "0.00005L" in Chinese monitoring reports means "below the detection limit 0.00005"; decoders pass it on as
# the value 0.00005 with one of these flags.
DEFAULT_DL_FLAGS = frozenset({"<dl", "l", "<lod", "nd", "below_dl"})
NS_PER_HOUR = 3_600_000_000_000

_TOP_KEYS = ("standard", "items", "stations", "classes", "rules", "screen", "instruments", "alerts")
_SINGLE_TABLES = ("classes", "screen", "alerts")  # at most one of each across all files
_STANDARD_KEYS = ("id", "name", "name_zh", "classes", "source", "note")
_ITEM_COMMON_KEYS = ("kind", "unit", "source", "scope", "note")
_ITEM_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "max": (
        "limit",
        "limits",
        "lake_limit",
        "lake_limits",
        "steps",
        "depends_on",
        "bounds",
        "default_band",
        "mean_limit",
        "mean_limits",
        "mean_window",
    ),
    "min": (
        "limit",
        "limits",
        "lake_limit",
        "lake_limits",
        "steps",
        "depends_on",
        "bounds",
        "default_band",
        "mean_limit",
        "mean_limits",
        "mean_window",
    ),
    "range": ("low", "high"),
    "change": ("max_rise", "max_drop"),
}
_STATION_KEYS = (
    "name",
    "name_zh",
    "river",
    "river_km",
    "class",
    "intake",
    "water_body",
    "note",
    "timezone",
    "coordinates",
    "standard",
    "limits",
    "expect",
    "assume",
    "instruments",
)
_WATER_BODY_ALIASES = {"river": "river", "lake": "lake", "reservoir": "lake"}  # GB 3838 groups 湖、库 together
_CLASS_KEYS = ("intake", "default", "note")
_ALERT_KEYS = ("severity", "clear_ratio", "clear_hold", "note")
_SCREEN_ONLY_KEYS = ("ignore_flags", "suspect_flags", "below_dl_flags", "note")
_INSTRUMENT_SHARED_KEYS = ("flatline", "spike_window", "spike_mads", "spike_floor")
_INSTRUMENT_KEYS = ("range", "detection_limit", "unit", *_INSTRUMENT_SHARED_KEYS, "note")
_RULE_COMMON_KEYS = (
    "kind",
    "name",
    "parameter",
    "parameters",
    "station",
    "stations",
    "intake",
    "severity",
    "clear_ratio",
    "clear_hold",
    "note",
)
_RULE_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "instantaneous": (),
    "persistence": ("readings", "duration"),
    "mean": ("window", "min_readings"),
    "rate": ("window", "rise_per_hour", "unit", "above", "min_readings"),
    "no_data": ("interval", "factor", "scope"),
}
_OVERRIDE_KEYS = ("limit", "kind", "low", "high", "unit", "source")


def _fmt(value: float) -> str:
    """A limit as people write it: 0.00005, not 5e-05; 6, not 6.0."""
    if not math.isfinite(value):
        return str(value)
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --------------------------------------------------------------------------- durations

_DURATION_UNITS = {
    "ms": 1_000_000,
    "s": 10**9,
    "m": 60 * 10**9,
    "min": 60 * 10**9,
    "h": NS_PER_HOUR,
    "d": 24 * NS_PER_HOUR,
    "w": 7 * 24 * NS_PER_HOUR,
}
_DURATION_PART = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|min|s|m|h|d|w)")


def parse_duration(text: object) -> int | None:
    """ "90s", "15min", "2h", "1h30m", "7d", "1w" in nanoseconds; None when it is not such a duration.

    A bare number is refused on purpose: "24" could be hours or readings, and a threshold file must not guess.
    """
    if not isinstance(text, str) or not text.strip():
        return None
    pos, total = 0, 0.0
    while pos < len(text):
        m = _DURATION_PART.match(text, pos)
        if m is None:
            if text[pos:].strip():
                return None
            break
        total += float(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    return round(total)


def format_duration(ns: int) -> str:
    """The short human form used in messages: "24 h", "7 d", "90 s", "1 h 30 min"."""
    if ns <= 0:
        return "0 s"
    parts: list[str] = []
    rest = ns
    for unit, size in (("d", 24 * NS_PER_HOUR), ("h", NS_PER_HOUR), ("min", 60 * 10**9), ("s", 10**9)):
        if rest >= size:
            n, rest = divmod(rest, size)
            parts.append(f"{n} {unit}")
    if rest and not parts:
        parts.append(f"{rest / 10**6:g} ms")
    return " ".join(parts)


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Limit:
    """One evaluable limit for a (station, parameter): what the alert engine compares readings with."""

    parameter: str  # catalogue id
    kind: str  # "max" | "min" | "range" (rules may add their own kinds, with `text`)
    value: float  # the limit (for range: the upper bound), in the parameter's standard unit
    low: float | None  # range lower bound, else None
    unit: str
    standard: str  # e.g. "GB 3838-2002"
    klass: str  # e.g. "III"; "" for a standard without classes
    source: str
    note: str = field(default="", compare=False)  # e.g. "hardness class 3", "until 2036-01-12"
    origin: str = field(default="", compare=False)  # path:line it was read from
    text: str = field(default="", compare=False)  # replaces describe() for rule-made limits (no data, trend)

    def describe(self) -> str:
        """Human text for notifications: "0.005 mg/L (GB 3838-2002 Class III)", "6–9 (...)", "≥ 5 mg/L (...)"."""
        if self.text:
            return self.text
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "range":
            amount = f"{_fmt(self.low if self.low is not None else -math.inf)}–{_fmt(self.value)}{unit}"
        elif self.kind == "min":
            amount = f"≥ {_fmt(self.value)}{unit}"
        else:
            amount = f"{_fmt(self.value)}{unit}"
        where = self.standard + (f" Class {self.klass}" if self.klass else "") + (f", {self.note}" if self.note else "")
        return f"{amount} ({where})"

    def ratio(self, value: float) -> float:
        """How far `value` is from the limit, > 1 when violated; the "times the limit" of notifications."""
        if self.kind == "min":
            if self.value <= 0:
                return 0.0
            return math.inf if value <= 0 else self.value / value
        high = _over(value, self.value)
        if self.kind != "range" or self.low is None or value > self.value:
            return high
        if value < self.low:
            return self.low / value if value > 0 else math.inf
        return max(high, self.low / value if value > 0 else 0.0)

    def violated(self, value: float) -> bool:
        """The standard's own rule (max: value <= limit, ...); authoritative where ratio rounds to 1."""
        if self.kind == "min":
            return value < self.value
        if self.kind == "range" and self.low is not None and value < self.low:
            return True
        return value > self.value


def _over(value: float, limit: float) -> float:
    """value/limit, defined for a zero limit ("not detectable") as well."""
    if limit > 0:
        return value / limit
    return math.inf if value > limit else 0.0


@dataclass(frozen=True, slots=True)
class Override:
    """A station's own limit for one parameter (an emergency order, a permit), replacing the standard's."""

    parameter: str
    kind: str  # max | min | range | "" (the standard item's kind, max when there is none)
    value: float  # max/min limit, or a range's high
    low: float | None
    source: str
    origin: str


@dataclass(frozen=True, slots=True)
class Station:
    """A monitoring station; its class selects the limits, water_body selects lake or river limits."""

    id: str
    name: str
    name_zh: str
    river: str
    river_km: float | None
    klass: str | None
    intake: bool
    water_body: str = "river"  # "river" or "lake" (lakes and reservoirs)
    timezone: str = ""  # IANA name or "+08:00"; "" = the service's
    coordinates: tuple[float, float] | None = None  # (latitude, longitude), WGS 84 degrees
    standards: tuple[str, ...] = ()  # ids of the standards that apply here, in precedence order; () = all
    overrides: Mapping[str, Override] = field(default_factory=dict)
    expect: Mapping[str, int] = field(default_factory=dict)  # parameter -> expected reporting interval, ns
    assume: Mapping[str, float] = field(default_factory=dict)  # parameter -> value used while unmeasured
    instruments: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    origin: str = ""  # path:line of [stations.<id>]
    lines: Mapping[str, str] = field(default_factory=dict)  # key -> path:line, for `show`


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a standard, limits already in the parameter's standard unit."""

    parameter: str
    kind: str  # max | min | range | change
    unit: str
    limits: Mapping[str, float]  # per class ("" for a standard without classes); for range the upper bound
    lows: Mapping[str, float]  # range: the lower bound per class
    lake_limits: Mapping[str, float]  # lakes and reservoirs, where they differ from rivers
    source: str
    scope: str = ""
    origin: str = ""  # path:line of [items.<id>]
    steps: tuple[tuple[int, str, float], ...] = ()  # (until_ns, "YYYY-MM-DD", value) in force before that date
    depends_on: str = ""  # a parameter whose measured value selects the band (e.g. hardness)
    bounds: tuple[float, ...] = ()  # band edges, in the dependency's unit: band i is [bounds[i-1], bounds[i])
    band_limits: tuple[float, ...] = ()  # one limit per band
    default_band: int = -1  # band used while the dependency is unknown; -1 = the most protective
    mean_limits: Mapping[str, float] = field(default_factory=dict)  # limit on the rolling mean, per class
    mean_band_limits: tuple[float, ...] = ()
    mean_window_ns: int = 0


@dataclass(frozen=True, slots=True)
class Standard:
    """A standard as loaded from one file; `classes` is empty for one that has a single limit per item."""

    id: str
    name: str
    classes: tuple[str, ...]
    items: Mapping[str, Item]
    path: str
    origin: str = ""


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


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One `[[rules]]` entry as loaded; monitor.rules turns it into numpy work per series."""

    kind: str  # instantaneous | persistence | mean | rate | no_data
    name: str  # unique among the rules of a series; alert ids use it
    parameters: tuple[str, ...] = ()  # () = every parameter
    stations: tuple[str, ...] = ()  # () = every station
    intake: bool | None = None  # True: intake stations only; False: all others; None: any
    origin: str = ""  # path:line
    severity: str = ""  # a fixed severity; "" = tiers by ratio (rate and no_data default to the lowest tier)
    clear_ratio: float | None = None  # None = [alerts].clear_ratio
    clear_hold_ns: int | None = None
    readings: int = 0  # persistence: this many readings in a row above the limit ...
    duration_ns: int = 0  # ... and/or for this long
    window_ns: int = 0  # mean, rate
    min_readings: int = 0  # mean (default 1), rate (default 3)
    rise_per_hour: float = 0.0  # rate, in `unit` per hour
    unit: str | None = None  # the unit rise_per_hour is written in; None = the parameter's own
    above: float = 0.0  # rate: only once the reading is at least this fraction of the limit
    interval_ns: int = 0  # no_data: expected interval; 0 = the station's `expect`
    factor: float = 3.0  # no_data: silent for factor × interval
    scope: str = "series"  # no_data: "series" or "station"
    note: str = ""

    def matches(self, station_id: str, station: Station | None, parameter: str) -> bool:
        """Whether this rule applies to the series (station_id, parameter)."""
        if self.parameters and parameter not in self.parameters:
            return False
        if self.stations and station_id not in self.stations:
            return False
        return self.intake is None or (station is not None and station.intake) == self.intake


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    """`[classes]`: the class of intake stations and of all others, overriding the station files' classes."""

    intake: str | None = None
    default: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScreenSpec:
    """`[screen]`: which instrument flags are ignored, suspect or below the detection limit, and the
    statistical screens applied to every series (overridden per parameter by `[instruments.<p>]`)."""

    ignore_flags: frozenset[str] = DEFAULT_IGNORE_FLAGS
    suspect_flags: frozenset[str] = DEFAULT_SUSPECT_FLAGS
    dl_flags: frozenset[str] = DEFAULT_DL_FLAGS
    defaults: Mapping[str, Any] = field(default_factory=dict)  # flatline, spike_window, spike_mads, spike_floor
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """`[alerts]`: severity tiers by ratio, and hysteresis (clear only below limit × clear_ratio for a hold)."""

    tiers: tuple[tuple[float, str], ...] = DEFAULT_TIERS
    clear_ratio: float = 1.0
    clear_hold_ns: int = 0
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass
class ThresholdSet:
    """Everything loaded: the standards in precedence order, the stations by id, the rules and policies."""

    standards: list[Standard] = field(default_factory=list)
    stations: dict[str, Station] = field(default_factory=dict)
    rules: list[RuleSpec] = field(default_factory=list)
    classes: ClassPolicy = field(default_factory=ClassPolicy)
    screen: ScreenSpec = field(default_factory=ScreenSpec)
    instruments: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    paths: list[str] = field(default_factory=list)
    _cache: dict[tuple[str, str, str], LimitSpec | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    # ---- classes and limits

    def class_of(self, station: str, default_class: str) -> tuple[str, str]:
        """The class a station is held to and where that comes from: [classes] policy, station file, default."""
        st = self.stations.get(station)
        pol = self.classes
        if st is not None and st.intake and pol.intake:
            return pol.intake, f"{pol.origins.get('intake', '')} ([classes].intake)"
        if pol.default:
            return pol.default, f"{pol.origins.get('default', '')} ([classes].default)"
        if st is not None and st.klass:
            return st.klass, f"{st.lines.get('class', st.origin)} (stations.{station}.class)"
        return default_class, "the configured default_class"

    def standards_for(self, station: str) -> list[Standard]:
        """The standards that apply at a station, in precedence order."""
        st = self.stations.get(station)
        if st is None or not st.standards:
            return list(self.standards)
        by_id = {s.id: s for s in self.standards}
        return [by_id[i] for i in st.standards if i in by_id]

    def spec(self, station: str, parameter: str, default_class: str) -> LimitSpec | None:
        """Every limit a series can be held to (None when no standard or override has an evaluable one).

        Cached: it is called once per series. Do not mutate the set after the first call.
        """
        key = (station, parameter, default_class)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._find(station, parameter, default_class)
        self._cache[key] = found
        return found

    def limit(self, station: str, parameter: str, default_class: str, ts_ns: int | None = None) -> Limit | None:
        """The limit a reading at `station` is held to at `ts_ns` (now when None), for the default band."""
        spec = self.spec(station, parameter, default_class)
        return None if spec is None else spec.at(ts_ns)

    def _find(self, station: str, parameter: str, default_class: str) -> LimitSpec | None:
        pid = resolve(parameter) or parameter
        st = self.stations.get(station)
        klass, _ = self.class_of(station, default_class)
        lake = st is not None and st.water_body == "lake"
        item: Item | None = None
        std: Standard | None = None
        for candidate in self.standards_for(station):
            it = candidate.items.get(pid)
            if it is None or it.kind not in ("max", "min", "range"):
                continue
            if candidate.classes and klass not in candidate.classes:
                continue
            key = klass if candidate.classes else ""
            table = it.lake_limits if lake and it.lake_limits else it.limits
            if key not in table and not it.band_limits:
                continue  # e.g. total nitrogen at a river station: the standard sets it for lakes only
            item, std = it, candidate
            break
        override = st.overrides.get(pid) if st is not None else None
        if override is not None:
            return self._override_spec(pid, override, item, klass)
        if item is None or std is None:
            return None
        return _item_spec(item, std, klass, lake, st)

    @staticmethod
    def _override_spec(pid: str, o: Override, item: Item | None, klass: str) -> LimitSpec:
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

    # ---- vectorised look-up, kept for callers that check many stations at once

    def limits_array(
        self, stations: Sequence[str], parameter: str, default_class: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """(low, high) bounds per station for vectorised checks: violated = (v < low) | (v > high).

        max gives (-inf, limit), min (limit, inf), range (low, high); NaN where there is no limit, so that
        every comparison is False.
        """
        low = np.full(len(stations), np.nan)
        high = np.full(len(stations), np.nan)
        for i, st in enumerate(stations):
            lim = self.limit(st, parameter, default_class)
            if lim is None:
                continue
            if lim.kind == "max":
                low[i], high[i] = -np.inf, lim.value
            elif lim.kind == "min":
                low[i], high[i] = lim.value, np.inf
            else:
                low[i], high[i] = (lim.low if lim.low is not None else -np.inf), lim.value
        return low, high

    # ---- rules, screening, expected series

    def rules_for(self, station: str, parameter: str) -> list[RuleSpec]:
        """The `[[rules]]` that apply to a series, in file order."""
        st = self.stations.get(station)
        return [r for r in self.rules if r.matches(station, st, parameter)]

    def instrument(self, station: str, parameter: str) -> dict[str, Any]:
        """Screening settings of a series: [screen] defaults, then [instruments.<p>], then the station's own."""
        merged: dict[str, Any] = dict(self.screen.defaults)
        merged.update(self.instruments.get(parameter, {}))
        st = self.stations.get(station)
        if st is not None:
            merged.update(st.instruments.get(parameter, {}))
        return merged

    def dependencies(self) -> set[str]:
        """Parameters that other parameters' limits depend on (e.g. hardness for the EU cadmium EQS)."""
        return {it.depends_on for s in self.standards for it in s.items.values() if it.depends_on}

    def explain(self, station: str, default_class: str = "III") -> str:
        """The text of `riverwatch thresholds show --station ID`: what applies there and where it comes from."""
        return _explain(self, station, default_class)


def _item_spec(item: Item, std: Standard, klass: str, lake: bool, st: Station | None) -> LimitSpec:
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
        rng = f"< {_fmt(item.bounds[0])}{u}"
    elif i == len(item.bounds):
        rng = f"≥ {_fmt(item.bounds[-1])}{u}"
    else:
        rng = f"{_fmt(item.bounds[i - 1])}–<{_fmt(item.bounds[i])}{u}"
    return f"{name} class {i + 1} ({rng})"


def _most_protective(kind: str, values: Sequence[float]) -> int:
    """While the dependency is unmeasured, hold the series to the strictest band's limit."""
    pick = min if kind == "max" else max
    return values.index(pick(values))


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a threshold file, printed the way compilers do so editors can jump to it."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ThresholdError(Exception):
    """Raised by `load` when the files have problems; str() lists them one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


# --------------------------------------------------------------------------- line locator

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


class _Locator:
    """Maps key paths such as ("items", "cd", "limits", "III") to 1-based lines.

    tomllib keeps no positions, so this re-scans the (already valid) TOML text for table headers and keys,
    including inline-table keys. Best effort: whatever it could not locate falls back to its parent's line.
    """

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        self._s = text
        self._i = 0
        self._starts = [0] + [m.end() for m in re.finditer("\n", text)]
        with contextlib.suppress(IndexError, ValueError, tomllib.TOMLDecodeError):
            self._document()

    def line(self, *path: str) -> int:
        """The line of `path`, or of its nearest located ancestor, or 1."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return 1

    def _mark(self, path: tuple[str, ...], offset: int) -> None:
        line = bisect.bisect_right(self._starts, offset)
        for k in range(1, len(path) + 1):
            self.lines.setdefault(path[:k], line)

    def _skip(self, newlines: bool) -> None:
        s = self._s
        while self._i < len(s):
            c = s[self._i]
            if c in " \t" or (newlines and c in "\r\n"):
                self._i += 1
            elif newlines and c == "#":
                end = s.find("\n", self._i)
                self._i = len(s) if end < 0 else end
            else:
                return

    def _document(self) -> None:
        table: tuple[str, ...] = ()
        arrays: dict[tuple[str, ...], int] = {}
        while True:
            self._skip(newlines=True)
            if self._i >= len(self._s):
                return
            if self._s[self._i] == "[":
                start = self._i
                double = self._s.startswith("[[", self._i)
                self._i += 2 if double else 1
                key = self._key()
                self._skip(newlines=False)
                self._i += 2 if double else 1
                if double:
                    arrays[key] = arrays.get(key, -1) + 1
                    key = (*key, str(arrays[key]))
                self._mark(key, start)
                table = key
            else:
                self._keyval(table)

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip(newlines=False)
            if self._s[self._i] in "\"'":
                parts.append(self._string())
            else:
                m = _BARE_KEY.match(self._s, self._i)
                if m is None:
                    raise ValueError(self._i)
                parts.append(m.group())
                self._i = m.end()
            self._skip(newlines=False)
            if self._s[self._i] != ".":
                return tuple(parts)
            self._i += 1

    def _keyval(self, prefix: tuple[str, ...]) -> None:
        start = self._i
        path = (*prefix, *self._key())
        self._mark(path, start)
        self._skip(newlines=False)
        if self._s[self._i] != "=":
            raise ValueError(self._i)
        self._i += 1
        self._skip(newlines=False)
        self._value(path)

    def _value(self, path: tuple[str, ...]) -> None:
        s = self._s
        c = s[self._i]
        if c == "{":
            self._i += 1
            while True:
                self._skip(newlines=True)
                if s[self._i] == "}":
                    self._i += 1
                    return
                if s[self._i] == ",":
                    self._i += 1
                    continue
                self._keyval(path)
        elif c == "[":
            self._i += 1
            n = 0
            while True:
                self._skip(newlines=True)
                if s[self._i] == "]":
                    self._i += 1
                    return
                if s[self._i] == ",":
                    self._i += 1
                    continue
                self._mark((*path, str(n)), self._i)
                self._value((*path, str(n)))
                n += 1
        elif c in "\"'":
            self._string()
        else:  # number, bool, date-time (which may contain a space): up to a delimiter
            while self._i < len(s) and s[self._i] not in ",]}#\r\n":
                self._i += 1

    def _string(self) -> str:
        s = self._s
        q = s[self._i]
        if s.startswith(q * 3, self._i):
            end = s.find(q * 3, self._i + 3)
            if end < 0:
                raise ValueError(self._i)
            end += 3
            while end < len(s) and s[end] == q and end - self._i < 8:  # up to two quotes inside the closer
                end += 1
            self._i = end
            return ""
        j = self._i + 1
        while s[j] != q:
            if s[j] in "\r\n":
                raise ValueError(j)
            j += 2 if q == '"' and s[j] == "\\" else 1
        raw = s[self._i : j + 1]
        self._i = j + 1
        return str(tomllib.loads(f"k = {raw}")["k"])


# --------------------------------------------------------------------------- checking

_POSITION = re.compile(r"\s*\((?:at line (\d+), column (\d+)|at end of document)\)\s*$")


def _syntax_problem(path: str, text: str, exc: tomllib.TOMLDecodeError) -> Problem:
    """tomllib's message with its position turned into our line (it reports duplicates this way too)."""
    msg = str(exc)
    m = _POSITION.search(msg)
    if m is None:
        return Problem(path, 1, f"invalid TOML: {msg}")
    base = msg[: m.start()]
    if m.group(1):
        line, column = int(m.group(1)), int(m.group(2))
        where = f" (column {column})"
    else:  # the last line that has content
        line = max(1, len(text.rstrip().splitlines()))
        where = " (at end of file)"
    if base == "Cannot overwrite a value":
        lines = text.splitlines()
        key = re.match(r"\s*([A-Za-z0-9_.\"' -]+?)\s*=", lines[line - 1] if 0 < line <= len(lines) else "")
        name = f" '{key.group(1)}'" if key else ""
        return Problem(path, line, f"invalid TOML: duplicate key{name} (cannot overwrite a value){where}")
    dup = re.fullmatch(r"Cannot declare (\(.*\)) twice", base)
    if dup:
        try:
            table = ".".join(ast.literal_eval(dup.group(1)))
        except (ValueError, SyntaxError, TypeError):
            table = dup.group(1)
        return Problem(path, line, f"invalid TOML: duplicate table [{table}] (declared twice){where}")
    return Problem(path, line, f"invalid TOML: {base}{where}")


def _suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _dotted(path: Sequence[str]) -> str:
    """A key path as users read it: rules[0].window, items.pb.steps[1].until."""
    out = ""
    prev = ""
    for part in path:
        out += f"[{part}]" if part.isdigit() and prev in ("rules", "steps") else (f".{part}" if out else part)
        prev = part
    return out


def _scaled(value: float, factor: float) -> float:
    """A value converted to the standard unit without binary noise: 0.45 µg/L is 0.00045 mg/L, not
    0.00045000000000000004 (12 significant digits are far beyond any standard's precision)."""
    return float(f"{float(value) * factor:.12g}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _date_ns(day: dt.date) -> int:
    """Midnight UTC of a date: dated steps change at the start of the day (UTC, documented)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


@dataclass
class _File:
    """One parsed file while checking: its data, line locator and what was built from it."""

    path: str
    data: dict[str, Any]
    loc: _Locator
    classes: tuple[str, ...] = ()
    std_ok: bool = False  # a usable [standard] table (id, and classes when it has them)
    classless: bool = False  # [standard] without classes: one limit per item
    standard: Standard | None = None
    stations: dict[str, Station] = field(default_factory=dict)

    def where(self, *path: str) -> str:
        return f"{self.path}:{self.loc.line(*path)}"


class _Checker:
    """Validates parsed files, collecting problems and building the objects for the valid parts."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._f: _File | None = None

    def _add(self, line: int, message: str) -> None:
        assert self._f is not None
        self.problems.append(Problem(self._f.path, line, message))

    def _at(self, *path: str) -> int:
        assert self._f is not None
        return self._f.loc.line(*path)

    def _unknown_keys(
        self, table: Mapping[str, Any], allowed: Sequence[str], path: tuple[str, ...], what: str = ""
    ) -> None:
        for key in table:
            if key not in allowed:
                where = _dotted((*path, key))
                self._add(self._at(*path, key), f"{where}: unknown key '{key}'{what}{_suggest(key, allowed)}")

    def _string(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> bool:
        if key in raw and not isinstance(raw[key], str):
            self._add(self._at(*here, key), f"{_dotted((*here, key))} must be a string")
            return False
        return True

    def _duration(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...], zero_ok: bool = False) -> int | None:
        """A duration value; a problem (and None) when it is not one, or not positive."""
        if key not in raw:
            return None
        name = _dotted((*here, key))
        value = raw[key]
        ns = parse_duration(value)
        if ns is None:
            shown = f"'{value}'" if isinstance(value, str) else repr(value)
            bare = _is_number(value) or (isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value))
            hint = " (a number needs a unit)" if bare else ""
            self._add(self._at(*here, key), f"{name}: bad duration {shown}{hint} (use e.g. 90s, 15min, 2h, 7d, 1w)")
            return None
        if ns <= 0 and not (zero_ok and ns == 0):
            self._add(
                self._at(*here, key),
                f"{name}: the duration must be {'' if zero_ok else 'more than '}{'at least ' if zero_ok else ''}zero",
            )
            return None
        return ns

    def _positive_int(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...], least: int = 1) -> int | None:
        if key not in raw:
            return None
        value = raw[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            self._add(self._at(*here, key), f"{_dotted((*here, key))}: must be a whole number ≥ {least}, not {value!r}")
            return None
        return value

    def _fraction(
        self, raw: Mapping[str, Any], key: str, here: tuple[str, ...], low_open: float, high: float, what: str
    ) -> float | None:
        """A number in (low_open, high]."""
        if key not in raw:
            return None
        value = raw[key]
        if not _is_number(value) or not math.isfinite(value) or not low_open < value <= high:
            self._add(self._at(*here, key), f"{_dotted((*here, key))}: {what}, not {value!r}")
            return None
        return float(value)

    # ---- file level

    def check_file(self, f: _File) -> None:
        self._f = f
        data = f.data
        self._unknown_keys(data, _TOP_KEYS, (), f" (expected {', '.join(_TOP_KEYS[:-1])} or {_TOP_KEYS[-1]})")
        if not any(k in data for k in _TOP_KEYS):
            self._add(
                1,
                "nothing to load: no [standard], [items.*], [stations.*], [classes], [[rules]], [screen], "
                "[instruments.*] or [alerts] tables",
            )
        items = data.get("items")
        std = data.get("standard")
        if std is None:
            if items is not None:
                self._add(self._at("items"), "items without a [standard] table (it needs an id)")
        elif not isinstance(std, dict):
            self._add(self._at("standard"), "'standard' must be a table")
        else:
            self._standard_table(f, std)
        if items is not None:
            if not isinstance(items, dict):
                self._add(self._at("items"), "'items' must be a table of [items.<parameter id>] tables")
            else:
                built = {pid: it for pid, raw in items.items() if (it := self._item(f, pid, raw)) is not None}
                if isinstance(std, dict) and f.std_ok:
                    f.standard = Standard(
                        std["id"], str(std.get("name", std["id"])), f.classes, built, f.path, f.where("standard")
                    )

    def _standard_table(self, f: _File, std: dict[str, Any]) -> None:
        self._unknown_keys(std, _STANDARD_KEYS, ("standard",))
        sid = std.get("id")
        ok = True
        if sid is None:
            ok = False
            self._add(self._at("standard"), "[standard] has no 'id'")
        elif not isinstance(sid, str) or not sid.strip():
            ok = False
            self._add(self._at("standard", "id"), "standard.id must be a non-empty string")
        for key in ("name", "name_zh", "source", "note"):
            self._string(std, key, ("standard",))
        classes = std.get("classes")
        if classes is None:
            f.std_ok = ok  # a standard without classes: one limit per item, for every station
            f.classless = True
            return
        if not isinstance(classes, list) or not classes:
            self._add(
                self._at("standard", "classes"),
                "standard.classes must be a non-empty list of class names "
                "(leave it out for a standard without classes)",
            )
            return
        good: list[str] = []
        for i, c in enumerate(classes):
            if not isinstance(c, str) or not c.strip():
                self._add(self._at("standard", "classes", str(i)), f"standard.classes: {c!r} is not a class name")
            elif c in good:
                self._add(self._at("standard", "classes", str(i)), f"standard.classes: class {c} is listed twice")
            else:
                good.append(c)
        f.classes = tuple(good)
        f.std_ok = ok and bool(good)

    # ---- items

    def _item(self, f: _File, pid: str, raw: object) -> Item | None:
        """Check one [items.<id>] table; the Item is built only when it added no problem."""
        before = len(self.problems)
        here = ("items", pid)
        name = f"items.{pid}"
        if pid not in PARAMETERS:
            alias = resolve(pid)
            hint = f" ('{pid}' is an alias: use the id '{alias}')" if alias else _suggest(pid, PARAMETERS)
            self._add(self._at(*here), f"{name}: unknown parameter id '{pid}'{hint}")
        if not isinstance(raw, dict):
            self._add(self._at(*here), f"{name} must be a table")
            return None
        kind = raw.get("kind")
        if kind in KINDS:
            self._unknown_keys(raw, _ITEM_COMMON_KEYS + _ITEM_KIND_KEYS[kind], here, f" for kind '{kind}'")
        else:
            if kind is None:
                self._add(self._at(*here), f"{name}: missing 'kind' (one of {', '.join(KINDS)})")
            else:
                shown = kind if isinstance(kind, str) else repr(kind)
                self._add(self._at(*here, "kind"), f"{name}.kind: unknown kind '{shown}' (one of {', '.join(KINDS)})")
            self._unknown_keys(raw, _ITEM_COMMON_KEYS + tuple(k for v in _ITEM_KIND_KEYS.values() for k in v), here)
        for key in ("source", "scope", "note"):
            self._string(raw, key, here)
        factor = self._unit(pid, raw, here)
        negative_ok = pid == "temp"  # a temperature can be below zero; concentrations, pH, counts cannot
        limits: dict[str, float] = {}
        lows: dict[str, float] = {}
        lake: dict[str, float] = {}
        extra: dict[str, Any] = {}
        if kind in ("max", "min"):
            if "depends_on" in raw:
                extra = self._banded(f, pid, raw, here, kind, factor)
            else:
                for bad in ("bounds", "default_band"):
                    if bad in raw:
                        self._add(self._at(*here, bad), f"{name}.{bad} needs 'depends_on'")
                if not any(k in raw for k in ("limit", "limits", "lake_limit", "lake_limits")):
                    self._add(self._at(*here), f"{name}: missing 'limits' (or 'limit', 'lake_limits')")
                for single, table, target in (("limit", "limits", limits), ("lake_limit", "lake_limits", lake)):
                    vals = self._limit_values(f, here, single, table, raw, negative_ok, kind)
                    target.update({c: _scaled(v, factor) for c, v in vals.items()})
                mean = self._limit_values(f, here, "mean_limit", "mean_limits", raw, negative_ok, kind)
                if mean:
                    extra["mean_limits"] = {c: _scaled(v, factor) for c, v in mean.items()}
                self._mean_window(raw, here, bool(mean), extra)
                if "steps" in raw:
                    extra["steps"] = self._steps(f, raw, here, factor, negative_ok)
        elif kind == "range":
            bounds: dict[str, dict[str, float]] = {}
            for key in ("low", "high"):
                if key not in raw:
                    self._add(self._at(*here), f"{name}: missing '{key}' (kind 'range' needs low and high)")
                elif isinstance(raw[key], dict):
                    bounds[key] = self._per_class(f, here, key, raw[key], negative_ok)
                else:
                    bounds[key] = self._single(f, here, key, raw[key], negative_ok)
            lo, hi = bounds.get("low", {}), bounds.get("high", {})
            for c in f.classes or ("",):
                if c in lo and c in hi and not lo[c] < hi[c]:
                    where = f"class {c}: " if c else ""
                    self._add(
                        self._at(*here, "low", c), f"{name}: {where}low {_fmt(lo[c])} is not below high {_fmt(hi[c])}"
                    )
            limits = {c: _scaled(v, factor) for c, v in hi.items()}
            lows = {c: _scaled(v, factor) for c, v in lo.items()}
        elif kind == "change":  # documented, not evaluated reading by reading
            for key in ("max_rise", "max_drop"):
                if key in raw:
                    self._number(raw[key], (*here, key), f"{name}.{key}", False)
        if len(self.problems) != before or not f.std_ok or not isinstance(kind, str):
            return None
        return Item(
            pid,
            kind,
            PARAMETERS[pid].unit,
            limits,
            lows,
            lake,
            str(raw.get("source", "")),
            str(raw.get("scope", "")),
            f.where(*here),
            **extra,
        )

    def _limit_values(
        self,
        f: _File,
        here: tuple[str, ...],
        single: str,
        table: str,
        raw: Mapping[str, Any],
        negative_ok: bool,
        kind: str,
    ) -> dict[str, float]:
        name = _dotted(here)
        if single in raw and table in raw:
            self._add(self._at(*here, single), f"{name}: give either '{single}' or '{table}', not both")
            return {}
        if table in raw:
            if f.classless:
                self._add(
                    self._at(*here, table),
                    f"{name}.{table}: the standard has no classes (use '{single}' for its one value)",
                )
                return {}
            vals = self._per_class(f, here, table, raw[table], negative_ok)
            self._ordering(f, here, table, vals, kind)
            return vals
        if single in raw:
            return self._single(f, here, single, raw[single], negative_ok)
        return {}

    def _mean_window(
        self, raw: Mapping[str, Any], here: tuple[str, ...], has_mean: bool, extra: dict[str, Any]
    ) -> None:
        window = self._duration(raw, "mean_window", here)
        if has_mean and "mean_window" not in raw:
            self._add(self._at(*here), f"{_dotted(here)}: a mean limit needs 'mean_window' (e.g. \"365d\")")
        elif "mean_window" in raw and not has_mean:
            self._add(self._at(*here, "mean_window"), f"{_dotted(here)}.mean_window without 'mean_limit'")
        if window:
            extra["mean_window_ns"] = window

    def _steps(
        self, f: _File, raw: Mapping[str, Any], here: tuple[str, ...], factor: float, negative_ok: bool
    ) -> tuple[tuple[int, str, float], ...]:
        """Dated values in force before a date, e.g. the EU lead value of 10 µg/L until 2036-01-12."""
        name = _dotted((*here, "steps"))
        steps = raw["steps"]
        if not isinstance(raw.get("limit"), (int, float)) or isinstance(raw.get("limit"), bool):
            self._add(self._at(*here, "steps"), f"{name} needs a single 'limit' (the value after the last step)")
        if not isinstance(steps, list) or not steps:
            self._add(self._at(*here, "steps"), f"{name} must be a list of {{ until = YYYY-MM-DD, limit = ... }}")
            return ()
        out: list[tuple[int, str, float]] = []
        for i, step in enumerate(steps):
            at = (*here, "steps", str(i))
            if not isinstance(step, dict):
                self._add(self._at(*at), f"{name}[{i}] must be a table {{ until = YYYY-MM-DD, limit = ... }}")
                continue
            self._unknown_keys(step, ("until", "limit", "note"), at)
            until = step.get("until")
            if not isinstance(until, dt.date) or isinstance(until, dt.datetime):
                self._add(
                    self._at(*at, "until") if "until" in step else self._at(*at),
                    f"{name}[{i}].until must be a date (YYYY-MM-DD, unquoted)",
                )
                continue
            if "limit" not in step:
                self._add(self._at(*at), f"{name}[{i}]: missing 'limit'")
                continue
            num = self._number(step["limit"], (*at, "limit"), f"{name}[{i}].limit", negative_ok)
            if num is None:
                continue
            ns = _date_ns(until)
            if out and ns <= out[-1][0]:
                self._add(self._at(*at, "until"), f"{name}[{i}].until {until} is not after the step before it")
                continue
            out.append((ns, until.isoformat(), _scaled(num, factor)))
        return tuple(out)

    def _banded(
        self, f: _File, pid: str, raw: Mapping[str, Any], here: tuple[str, ...], kind: str, factor: float
    ) -> dict[str, Any]:
        """A limit that depends on another measured parameter: one value per band of that parameter."""
        name = _dotted(here)
        dep = raw["depends_on"]
        out: dict[str, Any] = {}
        if not isinstance(dep, str) or dep not in PARAMETERS:
            shown = dep if isinstance(dep, str) else repr(dep)
            self._add(
                self._at(*here, "depends_on"),
                f"{name}.depends_on: unknown parameter id '{shown}'{_suggest(str(dep), PARAMETERS)}",
            )
            return out
        if dep == pid:
            self._add(self._at(*here, "depends_on"), f"{name}.depends_on: a limit cannot depend on itself")
            return out
        if f.classes:
            self._add(self._at(*here, "depends_on"), f"{name}.depends_on: only for a standard without classes")
            return out
        for bad in ("limits", "lake_limit", "lake_limits", "steps", "mean_limits"):
            if bad in raw:
                self._add(
                    self._at(*here, bad),
                    f"{name}.{bad}: not with 'depends_on' (give 'limit' as a list, one value per band)",
                )
        bounds = raw.get("bounds")
        if not isinstance(bounds, list) or not bounds or not all(_is_number(b) and math.isfinite(b) for b in bounds):
            self._add(
                self._at(*here, "bounds") if "bounds" in raw else self._at(*here),
                f"{name}.bounds must be a list of numbers: the band edges of {dep}",
            )
            return out
        if any(b2 <= b1 for b1, b2 in itertools.pairwise(bounds)):
            self._add(self._at(*here, "bounds"), f"{name}.bounds must increase")
            return out
        n = len(bounds) + 1
        out["depends_on"] = dep
        out["bounds"] = tuple(float(b) for b in bounds)
        for key, target in (("limit", "band_limits"), ("mean_limit", "mean_band_limits")):
            if key not in raw:
                if key == "limit":
                    self._add(self._at(*here), f"{name}: missing 'limit' (a list of {n} values, one per band)")
                continue
            vals = raw[key]
            if not isinstance(vals, list) or len(vals) != n:
                self._add(
                    self._at(*here, key),
                    f"{name}.{key} must be a list of {n} values, one per band ({len(bounds)} bounds make {n} bands)",
                )
                continue
            nums = [self._number(v, (*here, key, str(i)), f"{name}.{key}[{i}]", False) for i, v in enumerate(vals)]
            if all(x is not None for x in nums):
                out[target] = tuple(_scaled(x, factor) for x in nums if x is not None)
        self._mean_window(raw, here, "mean_limit" in raw, out)
        band = self._positive_int(raw, "default_band", here, least=1)
        if band is not None:
            if band > n:
                self._add(self._at(*here, "default_band"), f"{name}.default_band: there are only {n} bands")
            else:
                out["default_band"] = band - 1
        return out

    def _unit(self, pid: str, raw: Mapping[str, Any], here: tuple[str, ...]) -> float:
        """Factor from the file's unit to the parameter's standard unit; absent means the standard unit."""
        unit = raw.get("unit")
        name = _dotted((*here, "unit"))
        if unit is not None and not isinstance(unit, str):
            self._add(self._at(*here, "unit"), f"{name} must be a string")
            return 1.0
        if pid not in PARAMETERS:
            return 1.0
        factor = unit_factor(pid, unit)
        if factor is None:
            std_unit = f"'{PARAMETERS[pid].unit}'" if PARAMETERS[pid].unit else "no unit ('')"
            self._add(
                self._at(*here, "unit"),
                f"{name}: unknown unit '{unit}' for {pid} (use {std_unit} or a unit convertible to it)",
            )
            return 1.0
        return factor

    def _number(self, value: object, path: tuple[str, ...], where: str, negative_ok: bool) -> float | None:
        line = self._at(*path)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            shown = f"'{value}'" if isinstance(value, str) else type(value).__name__
            self._add(line, f"{where}: not a number: {shown}")
            return None
        num = float(value)
        if not math.isfinite(num):
            self._add(line, f"{where}: not a finite number: {num}")
            return None
        if num < 0 and not negative_ok:
            self._add(line, f"{where}: negative limit {_fmt(num)}")
            return None
        return num

    def _single(self, f: _File, here: tuple[str, ...], key: str, value: object, negative_ok: bool) -> dict[str, float]:
        """One number for every class (Tables 2 and 3 have no classes)."""
        if isinstance(value, dict) and key in ("limit", "lake_limit", "mean_limit"):
            self._add(
                self._at(*here, key),
                f"{_dotted((*here, key))} must be a number (use '{key}s' for a table of class = limit)",
            )
            return {}
        num = self._number(value, (*here, key), _dotted((*here, key)), negative_ok)
        return {} if num is None else dict.fromkeys(f.classes or ("",), num)

    def _per_class(
        self, f: _File, here: tuple[str, ...], key: str, value: object, negative_ok: bool
    ) -> dict[str, float]:
        """The valid values of a `class = number` table; every bad or missing class is a problem."""
        name = _dotted((*here, key))
        if not isinstance(value, dict):
            single = key[:-1] if key.endswith("limits") else key
            self._add(
                self._at(*here, key),
                f"{name} must be a table of class = limit (use '{single}' for one value for every class)",
            )
            return {}
        out: dict[str, float] = {}
        for c, v in value.items():
            if f.classes and c not in f.classes:
                self._add(
                    self._at(*here, key, c), f"{name}: class '{c}' is not in standard.classes ({', '.join(f.classes)})"
                )
                continue
            num = self._number(v, (*here, key, c), f"{name}.{c}", negative_ok)
            if num is not None:
                out[c] = num
        missing = [c for c in f.classes if c not in value]
        if missing:
            self._add(self._at(*here, key), f"{name}: no value for class {', '.join(missing)}")
        return out

    def _ordering(self, f: _File, here: tuple[str, ...], key: str, vals: Mapping[str, float], kind: str) -> None:
        """Class I is the strictest: max limits never decrease from I to V, min limits never increase."""
        prev: tuple[str, float] | None = None
        for c in f.classes:
            if c not in vals:
                continue
            v = vals[c]
            if prev is not None and (v < prev[1] if kind == "max" else v > prev[1]):
                trend = "decrease" if kind == "max" else "increase"
                self._add(
                    self._at(*here, key, c),
                    f"{_dotted((*here, key))}.{c} = {_fmt(v)} is stricter than class {prev[0]} "
                    f"({_fmt(prev[1])}): {kind} limits must not {trend} from class {f.classes[0]} "
                    f"to {f.classes[-1]}",
                )
            prev = (c, v)

    # ---- stations

    def check_stations(
        self, f: _File, known_classes: Sequence[str], seen: dict[str, str], standard_ids: Sequence[str]
    ) -> None:
        self._f = f
        stations = f.data.get("stations")
        if stations is None:
            return
        if not isinstance(stations, dict):
            self._add(self._at("stations"), "'stations' must be a table of [stations.<id>] tables")
            return
        for sid, raw in stations.items():
            self._station(f, sid, raw, known_classes, seen, standard_ids)

    def _station(
        self,
        f: _File,
        sid: str,
        raw: object,
        known_classes: Sequence[str],
        seen: dict[str, str],
        standard_ids: Sequence[str],
    ) -> None:
        here = ("stations", sid)
        name = f"stations.{sid}"
        line = self._at(*here)
        if not isinstance(raw, dict):
            self._add(line, f"{name} must be a table")
            return
        before = len(self.problems)
        if not sid.strip() or any(ch in sid for ch in "/+#"):
            self._add(
                line,
                f"{name}: a station id must be non-empty and contain no '/', '+' or '#' (it is an MQTT topic level)",
            )
        duplicate = sid in seen
        if duplicate:
            self._add(line, f"{name}: station '{sid}' is already defined at {seen[sid]}")
        else:
            seen[sid] = f"{f.path}:{line}"
        self._unknown_keys(raw, _STATION_KEYS, here)
        for key in ("name", "name_zh", "river", "note"):
            self._string(raw, key, here)
        km = raw.get("river_km")
        if km is not None and (not _is_number(km) or not math.isfinite(km)):
            self._add(self._at(*here, "river_km"), f"{name}.river_km must be a finite number")
        klass = raw.get("class")
        if klass is not None and (not isinstance(klass, str) or klass not in known_classes):
            shown = klass if isinstance(klass, str) else repr(klass)
            self._add(
                self._at(*here, "class"), f"{name}.class: unknown class '{shown}' (one of {', '.join(known_classes)})"
            )
        intake = raw.get("intake", False)
        if not isinstance(intake, bool):
            self._add(self._at(*here, "intake"), f"{name}.intake must be true or false")
        body = raw.get("water_body", "river")
        if body not in _WATER_BODY_ALIASES:
            self._add(
                self._at(*here, "water_body"),
                f"{name}.water_body: unknown water body {body!r} (river, lake or reservoir)",
            )
        tz = raw.get("timezone", "")
        if tz and not _valid_timezone(tz):
            self._add(
                self._at(*here, "timezone"),
                f"{name}.timezone: unknown time zone {tz!r} (an IANA name such as 'Asia/Shanghai', or '+08:00')",
            )
        coords = self._coordinates(raw, here)
        standards = self._station_standards(raw, here, standard_ids)
        overrides = self._overrides(f, raw, here)
        expect = self._per_parameter_durations(raw, "expect", here)
        assume = self._assume(raw, here)
        instruments = self._instrument_tables(raw.get("instruments"), (*here, "instruments"))
        if len(self.problems) != before or duplicate:
            return
        lines = {key: f.where(*here, key) for key in raw}
        for table in ("limits", "expect", "assume", "instruments"):
            if isinstance(raw.get(table), dict):
                lines.update({f"{table}.{k}": f.where(*here, table, k) for k in raw[table]})
        f.stations[sid] = Station(
            sid,
            raw.get("name", sid),
            raw.get("name_zh", ""),
            raw.get("river", ""),
            float(km) if km is not None else None,
            klass,
            intake,
            _WATER_BODY_ALIASES[body],
            tz,
            coords,
            standards,
            overrides,
            expect,
            assume,
            instruments,
            f.where(*here),
            lines,
        )

    def _coordinates(self, raw: Mapping[str, Any], here: tuple[str, ...]) -> tuple[float, float] | None:
        if "coordinates" not in raw:
            return None
        c = raw["coordinates"]
        if (
            not isinstance(c, list)
            or len(c) != 2
            or not all(_is_number(x) and math.isfinite(x) for x in c)
            or not -90 <= c[0] <= 90
            or not -180 <= c[1] <= 180
        ):
            self._add(
                self._at(*here, "coordinates"),
                f"{_dotted(here)}.coordinates must be [latitude, longitude] in degrees (-90..90, -180..180)",
            )
            return None
        return float(c[0]), float(c[1])

    def _station_standards(
        self, raw: Mapping[str, Any], here: tuple[str, ...], standard_ids: Sequence[str]
    ) -> tuple[str, ...]:
        if "standard" not in raw:
            return ()
        value = raw["standard"]
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            self._add(self._at(*here, "standard"), f"{_dotted(here)}.standard must be a standard id or a list of them")
            return ()
        if standard_ids:  # a station file checked on its own cannot know the standards
            for n in names:
                if n not in standard_ids:
                    self._add(
                        self._at(*here, "standard"),
                        f"{_dotted(here)}.standard: no standard '{n}' is loaded "
                        f"(loaded: {', '.join(standard_ids)}){_suggest(n, standard_ids)}",
                    )
        return tuple(names)

    def _parameter_key(self, pid: str, path: tuple[str, ...]) -> bool:
        if pid in PARAMETERS:
            return True
        alias = resolve(pid)
        hint = f" ('{pid}' is an alias: use the id '{alias}')" if alias else _suggest(pid, PARAMETERS)
        self._add(self._at(*path), f"{_dotted(path)}: unknown parameter id '{pid}'{hint}")
        return False

    def _overrides(self, f: _File, raw: Mapping[str, Any], here: tuple[str, ...]) -> dict[str, Override]:
        table = raw.get("limits")
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here, "limits"), f"{_dotted(here)}.limits must be a table of parameter = limit")
            return {}
        out: dict[str, Override] = {}
        for pid, spec in table.items():
            at = (*here, "limits", pid)
            if not self._parameter_key(pid, at):
                continue
            name = _dotted(at)
            if _is_number(spec):
                spec = {"limit": spec}
            if not isinstance(spec, dict):
                self._add(self._at(*at), f"{name} must be a number or a table {{ limit = ..., source = ... }}")
                continue
            before = len(self.problems)
            self._unknown_keys(spec, _OVERRIDE_KEYS, at)
            self._string(spec, "source", at)
            factor = self._unit(pid, spec, at)
            kind = spec.get("kind", "")
            if kind not in ("", "max", "min"):
                self._add(self._at(*at, "kind"), f"{name}.kind: must be max or min (a range has low and high)")
            neg = pid == "temp"
            if "low" in spec or "high" in spec:
                lo = self._number(spec.get("low"), (*at, "low"), f"{name}.low", neg) if "low" in spec else None
                hi = self._number(spec.get("high"), (*at, "high"), f"{name}.high", neg) if "high" in spec else None
                if lo is None or hi is None:
                    if "low" not in spec or "high" not in spec:
                        self._add(self._at(*at), f"{name}: a range needs both low and high")
                elif not lo < hi:
                    self._add(self._at(*at, "low"), f"{name}: low {_fmt(lo)} is not below high {_fmt(hi)}")
                if len(self.problems) == before and lo is not None and hi is not None:
                    out[pid] = Override(
                        pid,
                        "range",
                        _scaled(hi, factor),
                        _scaled(lo, factor),
                        str(spec.get("source", "")),
                        f.where(*at),
                    )
                continue
            if "limit" not in spec:
                self._add(self._at(*at), f"{name}: missing 'limit'")
                continue
            num = self._number(spec["limit"], (*at, "limit") if "limit" in spec else at, f"{name}", neg)
            if num is not None and len(self.problems) == before:
                out[pid] = Override(
                    pid, str(kind), _scaled(num, factor), None, str(spec.get("source", "")), f.where(*at)
                )
        return out

    def _per_parameter_durations(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> dict[str, int]:
        table = raw.get(key)
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here, key), f'{_dotted((*here, key))} must be a table of parameter = "interval"')
            return {}
        out: dict[str, int] = {}
        for pid in table:
            if self._parameter_key(pid, (*here, key, pid)):
                ns = self._duration(table, pid, (*here, key))
                if ns:
                    out[pid] = ns
        return out

    def _assume(self, raw: Mapping[str, Any], here: tuple[str, ...]) -> dict[str, float]:
        table = raw.get("assume")
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here, "assume"), f"{_dotted(here)}.assume must be a table of parameter = value")
            return {}
        out: dict[str, float] = {}
        for pid, v in table.items():
            at = (*here, "assume", pid)
            if self._parameter_key(pid, at):
                num = self._number(v, at, _dotted(at), pid == "temp")
                if num is not None:
                    out[pid] = num
        return out

    # ---- screening and instruments

    def _instrument_tables(self, table: object, here: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        """[instruments.<p>] (top level or per station): instrument range, detection limit, screens."""
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here), f"{_dotted(here)} must be a table of [..instruments.<parameter id>] tables")
            return {}
        out: dict[str, dict[str, Any]] = {}
        for pid, raw in table.items():
            at = (*here, pid)
            if not self._parameter_key(pid, at):
                continue
            if not isinstance(raw, dict):
                self._add(self._at(*at), f"{_dotted(at)} must be a table")
                continue
            before = len(self.problems)
            self._unknown_keys(raw, _INSTRUMENT_KEYS, at)
            settings = self._screen_settings(raw, at)
            factor = self._unit(pid, raw, at)
            rng = raw.get("range")
            if rng is not None:
                if (
                    not isinstance(rng, list)
                    or len(rng) != 2
                    or not all(_is_number(x) and math.isfinite(x) for x in rng)
                    or not rng[0] < rng[1]
                ):
                    self._add(self._at(*at, "range"), f"{_dotted(at)}.range must be [low, high] with low < high")
                else:
                    settings["range"] = (_scaled(rng[0], factor), _scaled(rng[1], factor))
            if "detection_limit" in raw:
                num = self._number(
                    raw["detection_limit"], (*at, "detection_limit"), f"{_dotted(at)}.detection_limit", False
                )
                if num is not None:
                    settings["detection_limit"] = _scaled(num, factor)
            if "spike_floor" in settings:
                settings["spike_floor"] = _scaled(settings["spike_floor"], factor)
            if len(self.problems) == before:
                out[pid] = settings
        return out

    def _screen_settings(self, raw: Mapping[str, Any], here: tuple[str, ...]) -> dict[str, Any]:
        """The statistical screens shared by [screen] and [instruments.<p>]."""
        out: dict[str, Any] = {}
        flat = self._positive_int(raw, "flatline", here, least=2)
        if flat is not None:
            out["flatline"] = flat
        window = self._positive_int(raw, "spike_window", here, least=3)
        if window is not None:
            out["spike_window"] = window
        mads = self._fraction(raw, "spike_mads", here, 0.0, math.inf, "must be a positive number of MADs")
        if mads is not None:
            out["spike_mads"] = mads
        if "spike_floor" in raw:
            num = self._number(raw["spike_floor"], (*here, "spike_floor"), f"{_dotted(here)}.spike_floor", False)
            if num is not None:
                out["spike_floor"] = num
        return out

    def check_policies(self, f: _File, known_classes: Sequence[str], owners: dict[str, str]) -> dict[str, Any]:
        """[classes], [screen], [instruments.*], [alerts]: each defined once across all files."""
        self._f = f
        built: dict[str, Any] = {}
        for key in (*_SINGLE_TABLES, "instruments"):
            if key not in f.data:
                continue
            raw = f.data[key]
            if not isinstance(raw, dict):
                self._add(self._at(key), f"'{key}' must be a table")
                continue
            if key in _SINGLE_TABLES:
                if key in owners:
                    self._add(self._at(key), f"[{key}] is already defined at {owners[key]}")
                    continue
                owners[key] = f.where(key)
            if key == "classes":
                built[key] = self._classes(f, raw, known_classes)
            elif key == "screen":
                built[key] = self._screen(f, raw)
            elif key == "alerts":
                built[key] = self._alerts(f, raw)
            else:
                tables = self._instrument_tables(raw, ("instruments",))
                for pid in list(tables):
                    if f"instruments.{pid}" in owners:
                        self._add(
                            self._at("instruments", pid),
                            f"[instruments.{pid}] is already defined at {owners[f'instruments.{pid}']}",
                        )
                        del tables[pid]
                    else:
                        owners[f"instruments.{pid}"] = f.where("instruments", pid)
                built[key] = tables
        return built

    def _classes(self, f: _File, raw: Mapping[str, Any], known_classes: Sequence[str]) -> ClassPolicy | None:
        before = len(self.problems)
        self._unknown_keys(raw, _CLASS_KEYS, ("classes",))
        for key in ("intake", "default"):
            v = raw.get(key)
            if v is not None and (not isinstance(v, str) or v not in known_classes):
                self._add(
                    self._at("classes", key), f"classes.{key}: unknown class {v!r} (one of {', '.join(known_classes)})"
                )
        if len(self.problems) != before:
            return None
        return ClassPolicy(
            raw.get("intake"), raw.get("default"), {k: f.where("classes", k) for k in ("intake", "default") if k in raw}
        )

    def _screen(self, f: _File, raw: Mapping[str, Any]) -> ScreenSpec | None:
        before = len(self.problems)
        self._unknown_keys(
            raw,
            _SCREEN_ONLY_KEYS + _INSTRUMENT_SHARED_KEYS,
            ("screen",),
            " (instrument range and detection limit go in [instruments.<parameter>])",
        )
        flags: dict[str, frozenset[str]] = {}
        for key in ("ignore_flags", "suspect_flags", "below_dl_flags"):
            if key not in raw:
                continue
            v = raw[key]
            if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
                self._add(self._at("screen", key), f"screen.{key} must be a list of flag strings")
            else:
                flags[key] = frozenset(x.lower() for x in v)
        both = flags.get("ignore_flags", frozenset()) & flags.get("suspect_flags", frozenset())
        if both:
            self._add(
                self._at("screen", "suspect_flags"), f"screen: flag {sorted(both)[0]!r} is both ignored and suspect"
            )
        settings = self._screen_settings(raw, ("screen",))
        if len(self.problems) != before:
            return None
        return ScreenSpec(
            flags.get("ignore_flags", DEFAULT_IGNORE_FLAGS),
            flags.get("suspect_flags", DEFAULT_SUSPECT_FLAGS),
            flags.get("below_dl_flags", DEFAULT_DL_FLAGS),
            settings,
            {k: f.where("screen", k) for k in raw},
        )

    def _alerts(self, f: _File, raw: Mapping[str, Any]) -> AlertPolicy | None:
        before = len(self.problems)
        self._unknown_keys(raw, _ALERT_KEYS, ("alerts",))
        tiers = DEFAULT_TIERS
        sev = raw.get("severity")
        if sev is not None:
            if not isinstance(sev, dict) or not sev:
                self._add(
                    self._at("alerts", "severity"),
                    "alerts.severity must be a table of name = ratio, e.g. { warning = 1, serious = 5 }",
                )
            else:
                built: list[tuple[float, str]] = []
                for name, v in sev.items():
                    if not _is_number(v) or not math.isfinite(v) or v <= 0:
                        self._add(
                            self._at("alerts", "severity", name),
                            f"alerts.severity.{name}: the ratio must be a positive number, not {v!r}",
                        )
                    elif built and v <= built[-1][0]:
                        self._add(
                            self._at("alerts", "severity", name),
                            f"alerts.severity.{name} = {_fmt(v)} must be above {built[-1][1]} "
                            f"({_fmt(built[-1][0])}): tiers go from the mildest to the worst",
                        )
                    else:
                        built.append((float(v), name))
                if built:
                    tiers = tuple(built)
        ratio = self._fraction(raw, "clear_ratio", ("alerts",), 0.0, 1.0, "must be above 0 and at most 1")
        hold = self._duration(raw, "clear_hold", ("alerts",), zero_ok=True)
        if len(self.problems) != before:
            return None
        return AlertPolicy(
            tiers, ratio if ratio is not None else 1.0, hold or 0, {k: f.where("alerts", k) for k in raw}
        )

    # ---- rules

    def check_rules(self, f: _File, station_ids: Sequence[str], tier_names: Sequence[str]) -> list[RuleSpec]:
        self._f = f
        rules = f.data.get("rules")
        if rules is None:
            return []
        if not isinstance(rules, list) or not all(isinstance(r, dict) for r in rules):
            self._add(self._at("rules"), "'rules' must be a list of [[rules]] tables")
            return []
        out: list[RuleSpec] = []
        for i, raw in enumerate(rules):
            rule = self._rule(f, i, raw, station_ids, tier_names)
            if rule is not None:
                out.append(rule)
        return out

    def _rule(
        self, f: _File, i: int, raw: dict[str, Any], station_ids: Sequence[str], tier_names: Sequence[str]
    ) -> RuleSpec | None:
        here = ("rules", str(i))
        name = f"rules[{i}]"
        before = len(self.problems)
        kind = raw.get("kind")
        if kind not in RULE_KINDS:
            if kind is None:
                self._add(self._at(*here), f"{name}: missing 'kind' (one of {', '.join(RULE_KINDS)})")
            else:
                shown = kind if isinstance(kind, str) else repr(kind)
                self._add(
                    self._at(*here, "kind"),
                    f"{name}.kind: unknown rule kind '{shown}' (one of {', '.join(RULE_KINDS)})"
                    f"{_suggest(str(kind), RULE_KINDS)}",
                )
            return None
        self._unknown_keys(raw, _RULE_COMMON_KEYS + _RULE_KIND_KEYS[kind], here, f" for rule kind '{kind}'")
        for key in ("name", "note"):
            self._string(raw, key, here)
        params = self._names(raw, "parameter", "parameters", here)
        for j, p in enumerate(params):
            at = (*here, "parameters", str(j)) if "parameters" in raw else (*here, "parameter")
            if p not in PARAMETERS:
                alias = resolve(p)
                hint = f" ('{p}' is an alias: use the id '{alias}')" if alias else _suggest(p, PARAMETERS)
                self._add(self._at(*at), f"{name}: unknown parameter id '{p}'{hint}")
        stations = self._names(raw, "station", "stations", here)
        if station_ids:
            for j, s in enumerate(stations):
                if s not in station_ids:
                    at = (*here, "stations", str(j)) if "stations" in raw else (*here, "station")
                    self._add(self._at(*at), f"{name}: unknown station '{s}'{_suggest(s, station_ids)}")
        intake = raw.get("intake")
        if intake is not None and not isinstance(intake, bool):
            self._add(self._at(*here, "intake"), f"{name}.intake must be true or false")
        severity = raw.get("severity", "")
        if severity and (not isinstance(severity, str) or severity not in tier_names):
            self._add(
                self._at(*here, "severity"),
                f"{name}.severity: unknown severity {severity!r} (one of {', '.join(tier_names)})",
            )
        clear = self._fraction(raw, "clear_ratio", here, 0.0, 1.0, "must be above 0 and at most 1")
        hold = self._duration(raw, "clear_hold", here, zero_ok=True)
        kw: dict[str, Any] = {}
        if kind == "persistence":
            n = self._positive_int(raw, "readings", here)
            d = self._duration(raw, "duration", here)
            if "readings" not in raw and "duration" not in raw:
                self._add(
                    self._at(*here),
                    f"{name}: a persistence rule needs 'readings' (N in a row) and/or 'duration' (e.g. \"2h\")",
                )
            kw.update(readings=n or 0, duration_ns=d or 0)
        elif kind in ("mean", "rate"):
            w = self._duration(raw, "window", here)
            if "window" not in raw:
                self._add(self._at(*here), f"{name}: a {kind} rule needs 'window' (e.g. \"24h\")")
            m = self._positive_int(raw, "min_readings", here, least=2 if kind == "rate" else 1)
            kw.update(window_ns=w or 0, min_readings=m or (3 if kind == "rate" else 1))
        if kind == "rate":
            rise = raw.get("rise_per_hour")
            if rise is None:
                self._add(self._at(*here), f"{name}: a rate rule needs 'rise_per_hour' (in the parameter's unit)")
            elif not _is_number(rise) or not math.isfinite(rise) or rise <= 0:
                self._add(self._at(*here, "rise_per_hour"), f"{name}.rise_per_hour must be a positive number")
            else:
                kw["rise_per_hour"] = float(rise)
            unit = raw.get("unit")
            if unit is not None:
                if not isinstance(unit, str):
                    self._add(self._at(*here, "unit"), f"{name}.unit must be a string")
                elif not params:
                    self._add(self._at(*here, "unit"), f"{name}.unit needs 'parameters' (a unit belongs to them)")
                else:
                    for p in params:
                        if p in PARAMETERS and unit_factor(p, unit) is None:
                            self._add(self._at(*here, "unit"), f"{name}.unit: unknown unit '{unit}' for {p}")
                    kw["unit"] = unit
            above = raw.get("above")
            if above is not None:
                if not _is_number(above) or not math.isfinite(above) or above < 0:
                    self._add(
                        self._at(*here, "above"), f"{name}.above must be a fraction of the limit ≥ 0, not {above!r}"
                    )
                else:
                    kw["above"] = float(above)
        if kind == "no_data":
            interval = self._duration(raw, "interval", here)
            factor = raw.get("factor", 3.0)
            if not _is_number(factor) or not math.isfinite(factor) or factor < 1:
                self._add(self._at(*here, "factor"), f"{name}.factor must be a number ≥ 1, not {factor!r}")
            scope = raw.get("scope", "series")
            if scope not in ("series", "station"):
                self._add(self._at(*here, "scope"), f"{name}.scope must be 'series' or 'station', not {scope!r}")
            if scope == "station" and "interval" not in raw:
                self._add(self._at(*here), f"{name}: a station-wide no_data rule needs 'interval'")
            kw.update(interval_ns=interval or 0, factor=float(factor) if _is_number(factor) else 3.0, scope=scope)
        if len(self.problems) != before:
            return None
        return RuleSpec(
            kind,
            str(raw.get("name") or kind),
            tuple(params),
            tuple(stations),
            intake,
            f.where(*here),
            str(severity),
            clear,
            hold,
            note=str(raw.get("note", "")),
            **kw,
        )

    def _names(self, raw: Mapping[str, Any], single: str, plural: str, here: tuple[str, ...]) -> list[str]:
        if single in raw and plural in raw:
            self._add(self._at(*here, single), f"{_dotted(here)}: give either '{single}' or '{plural}', not both")
            return []
        if single in raw:
            v = raw[single]
            if not isinstance(v, str) or not v:
                self._add(self._at(*here, single), f"{_dotted(here)}.{single} must be a string")
                return []
            return [v]
        if plural in raw:
            v = raw[plural]
            if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
                self._add(self._at(*here, plural), f"{_dotted(here)}.{plural} must be a non-empty list of strings")
                return []
            return list(v)
        return []

    def check_rule_names(self, rules: Sequence[RuleSpec]) -> None:
        """Two rules that meet on a series must not share an alert: names must differ, and of the limit rules
        (instantaneous, persistence) the most specific one decides, so two equally specific ones conflict."""
        for i, a in enumerate(rules):
            for b in rules[i + 1 :]:
                if not _overlap(a, b):
                    continue
                path, _, line = b.origin.rpartition(":")
                if a.kind in LIMIT_RULES and b.kind in LIMIT_RULES:
                    if specificity(a) == specificity(b):
                        self.problems.append(
                            Problem(
                                path,
                                int(line),
                                (
                                    f"this {b.kind} rule and the {a.kind} rule at {a.origin} both decide the limit "
                                    "alert of the same series: narrow one with 'parameters', 'stations' or 'intake'"
                                ),
                            )
                        )
                elif a.name == b.name:
                    self.problems.append(
                        Problem(
                            path,
                            int(line),
                            (
                                f"rule '{b.name}' also applies to series that the rule at {a.origin} covers: "
                                "give one of them another 'name'"
                            ),
                        )
                    )


def specificity(rule: RuleSpec) -> int:
    """Of the limit rules matching a series, the highest wins: a station filter beats a parameter filter."""
    return 2 * bool(rule.stations or rule.intake is not None) + bool(rule.parameters)


def _overlap(a: RuleSpec, b: RuleSpec) -> bool:
    if a.parameters and b.parameters and not set(a.parameters) & set(b.parameters):
        return False
    if a.stations and b.stations and not set(a.stations) & set(b.stations):
        return False
    return a.intake is None or b.intake is None or a.intake == b.intake


def _valid_timezone(tz: object) -> bool:
    if not isinstance(tz, str):
        return False
    if re.fullmatch(r"[+-](?:[01]\d|2[0-3]):[0-5]\d", tz):
        return True
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _parse(path: str | Path) -> tuple[_File | None, list[Problem]]:
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        return None, [Problem(name, 1, f"cannot read: {exc.strerror or exc}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        return None, [Problem(name, line, "not UTF-8 text (TOML files must be UTF-8)")]
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        return None, [_syntax_problem(name, text, exc)]
    return _File(name, data, _Locator(text)), []


def _run(paths: Sequence[str | Path]) -> tuple[list[Problem], ThresholdSet]:
    """Check and build in one pass; the set is only meaningful when there are no problems.

    Order matters: standards first (their classes and ids are what stations refer to), then stations,
    then the policies, then the rules (which refer to stations and severity names).
    """
    checker = _Checker()
    files: list[_File] = []
    for p in paths:
        f, problems = _parse(p)
        checker.problems.extend(problems)
        if f is not None:
            files.append(f)
            checker.check_file(f)
    known = [c for f in files for c in f.classes]
    known_classes = list(dict.fromkeys(known)) or list(DEFAULT_CLASSES)
    result = ThresholdSet(paths=[str(p) for p in paths])
    seen_standards: dict[str, str] = {}
    for f in files:
        if f.standard is not None:
            line = f.loc.line("standard", "id")
            if f.standard.id in seen_standards:
                checker.problems.append(
                    Problem(
                        f.path,
                        line,
                        f"standard '{f.standard.id}' is already loaded from {seen_standards[f.standard.id]}",
                    )
                )
            else:
                seen_standards[f.standard.id] = f"{f.path}:{line}"
                result.standards.append(f.standard)
    standard_ids = list(seen_standards)
    seen_stations: dict[str, str] = {}
    for f in files:
        checker.check_stations(f, known_classes, seen_stations, standard_ids)
        result.stations.update(f.stations)
    owners: dict[str, str] = {}
    for f in files:
        built = checker.check_policies(f, known_classes, owners)
        if built.get("classes") is not None:
            result.classes = built["classes"]
        if built.get("screen") is not None:
            result.screen = built["screen"]
        if built.get("alerts") is not None:
            result.alerts = built["alerts"]
        result.instruments.update(built.get("instruments", {}))
    tier_names = [n for _, n in result.alerts.tiers]
    for f in files:
        result.rules.extend(checker.check_rules(f, list(seen_stations), tier_names))
    checker.check_rule_names(result.rules)
    order = {str(p): i for i, p in reversed(list(enumerate(paths)))}
    checker.problems.sort(key=lambda p: (order.get(p.path, len(order)), p.line))
    return checker.problems, result


def check(paths: Sequence[str | Path]) -> list[Problem]:
    """Every problem in every file, in file then line order; never raises for bad content."""
    return _run(paths)[0]


def load(paths: Sequence[str | Path]) -> ThresholdSet:
    """The thresholds of `paths` (earlier standards take precedence); ThresholdError when check finds problems."""
    problems, result = _run(paths)
    if problems:
        raise ThresholdError(problems)
    return result


def show(paths: Sequence[str | Path], station: str, default_class: str = "III") -> str:
    """`riverwatch thresholds show --station ID`: the effective limits and rules at a station, with origins.

    Raises ThresholdError when the files do not check clean (the same problems `check` prints).
    """
    return load(paths).explain(station, default_class)


def shipped_path(name: str = "gb3838-2002.toml") -> Path:
    """A shipped threshold file, wherever this install keeps the thresholds folder.

    Looked for as package data (monitor/_thresholds), next to the package (a checkout), then where pip puts
    the wheel's data-files (share/riverwatch/thresholds under sys.prefix, the install scheme's data path, or
    the user base for --user installs). When none has it, the checkout location is returned so that the
    "cannot read" problem names a sensible path.
    """
    candidates: list[Path] = []
    with contextlib.suppress(ModuleNotFoundError, TypeError):
        packaged = importlib.resources.files("monitor") / "_thresholds" / name
        if isinstance(packaged, Path):
            candidates.append(packaged)
    repo = Path(__file__).resolve().parents[2] / "thresholds" / name  # monitor/thresholds/ -> the checkout
    candidates.append(repo)
    data = Path("share") / "riverwatch" / "thresholds" / name
    prefixes = [sys.prefix, sysconfig.get_path("data"), site.USER_BASE]
    candidates += [Path(prefix) / data for prefix in dict.fromkeys(p for p in prefixes if p)]
    for c in candidates:
        if c.is_file():
            return c
    return repo


def load_or_shipped(configured: Sequence[Path]) -> tuple[list[Path], ThresholdSet]:
    """The configured files, loaded; plus the shipped GB 3838-2002 when none is given or they hold no standard.

    The paths come back too: a reload reads the same files again.
    """
    files = list(configured)
    loaded = load(files) if files else None
    if loaded is None or not loaded.standards:
        files.append(shipped_path())
        loaded = load(files)
    return files, loaded


# --------------------------------------------------------------------------- show


def describe_rule(rule: RuleSpec) -> str:
    """One line per rule for `show` and logs: what it watches and with which settings."""
    what = ", ".join(rule.parameters) if rule.parameters else "every parameter"
    where = []
    if rule.stations:
        where.append("stations " + ", ".join(rule.stations))
    if rule.intake is not None:
        where.append("intake stations" if rule.intake else "non-intake stations")
    parts: list[str] = []
    if rule.kind == "persistence":
        if rule.readings:
            parts.append(f"{rule.readings} readings in a row")
        if rule.duration_ns:
            parts.append(f"for {format_duration(rule.duration_ns)}")
        parts = ["above the limit " + " and ".join(parts)]
    elif rule.kind == "mean":
        parts.append(
            f"rolling {format_duration(rule.window_ns)} mean against the limit (the mean limit where "
            "the standard has one)"
        )
        if rule.min_readings > 1:
            parts.append(f"at least {rule.min_readings} readings")
    elif rule.kind == "rate":
        units = {PARAMETERS[p].unit for p in rule.parameters if p in PARAMETERS}
        unit = f" {rule.unit}" if rule.unit else (f" {units.pop()}" if len(units) == 1 else " (parameter unit)")
        parts.append(f"rising ≥ {_fmt(rule.rise_per_hour)}{unit} per hour over {format_duration(rule.window_ns)}")
        if rule.above:
            parts.append(f"from {_fmt(rule.above)} × the limit")
        parts.append(f"at least {rule.min_readings} readings")
    elif rule.kind == "no_data":
        every = format_duration(rule.interval_ns) if rule.interval_ns else "the station's expect interval"
        parts.append(f"silent {_fmt(rule.factor)} × {every}" + (" (whole station)" if rule.scope == "station" else ""))
    if rule.severity:
        parts.append(f"severity {rule.severity}")
    if rule.clear_ratio is not None or rule.clear_hold_ns is not None:
        parts.append(
            f"clears below {_fmt(rule.clear_ratio if rule.clear_ratio is not None else 1.0)} × limit"
            + (f" for {format_duration(rule.clear_hold_ns)}" if rule.clear_hold_ns else "")
        )
    label = rule.kind if rule.name == rule.kind else f"{rule.kind} '{rule.name}'"
    scope = f" at {'; '.join(where)}" if where else ""
    return f"{label}: {what}{scope}: {', '.join(parts) if parts else 'each reading against the limit'}"


def _explain(ts: ThresholdSet, station: str, default_class: str) -> str:
    st = ts.stations.get(station)
    out: list[str] = []
    if st is None:
        out.append(f"station {station}: not in any station file; the defaults below apply")
    else:
        names = " / ".join(x for x in (st.name, st.name_zh) if x)
        place = f", {st.river} km {_fmt(st.river_km)}" if st.river and st.river_km is not None else ""
        out.append(f"station {station}: {names}{place}    ({st.origin})")
        facts = [f"water body {st.water_body}"]
        if st.intake:
            facts.append("drinking-water intake")
        if st.timezone:
            facts.append(f"time zone {st.timezone}")
        if st.coordinates:
            facts.append(f"at {st.coordinates[0]:.5f}, {st.coordinates[1]:.5f}")
        out.append("  " + ", ".join(facts))
    klass, where = ts.class_of(station, default_class)
    out.append(f"  class {klass}    from {where}")
    stds = ts.standards_for(station)
    if st is not None and st.standards:
        out.append(f"  standards {', '.join(s.id for s in stds)}    from {st.lines.get('standard', st.origin)}")
    else:
        out.append(
            f"  standards {', '.join(s.id for s in stds) or '(none loaded)'}    (all loaded, earlier files first)"
        )
    out.append("")
    out.append("limits (in each parameter's standard unit)")
    params = list(dict.fromkeys([p for s in stds for p in s.items] + (list(st.overrides) if st else [])))
    limited: list[str] = []
    for pid in params:
        spec = ts.spec(station, pid, default_class)
        if spec is None:
            continue
        limited.append(pid)
        for lim in spec.limits:
            out.append(f"  {pid:<8} {lim.describe():<58} {lim.origin}")
        if spec.depends_on:
            assumed = (
                f"; assumed {_fmt(spec.assumed)} until measured"
                if spec.assumed is not None
                else f"; band {spec.default + 1} until {spec.depends_on} is measured"
            )
            out.append(f"  {'':<8} (band chosen by the latest {spec.depends_on} reading at the station{assumed})")
        if spec.mean is not None:
            for lim in spec.mean.limits:
                out.append(
                    f"  {pid:<8} rolling {format_duration(spec.mean_window_ns)} mean ≤ {lim.describe():<40} "
                    f"{lim.origin}"
                )
    if not limited:
        out.append("  (no evaluable limit)")
    out.append("")
    out.append("rules")
    limit_rules = [r for r in ts.rules if r.kind in LIMIT_RULES and _rule_at(r, station, st)]
    others = [r for r in ts.rules if r.kind not in LIMIT_RULES and _rule_at(r, station, st)]
    if not any(not r.parameters for r in limit_rules):
        covered = {p for r in limit_rules for p in r.parameters}
        rest = [p for p in limited if p not in covered]
        if rest and not covered:
            out.append("  instantaneous: every parameter with a limit: each reading against the limit    (built in)")
        elif rest:
            out.append(f"  instantaneous: {', '.join(rest)}: each reading against the limit    (built in)")
    for r in [*limit_rules, *others]:
        out.append(f"  {describe_rule(r)}    {r.origin}")
    for pid in limited:
        spec = ts.spec(station, pid, default_class)
        if spec is not None and spec.mean is not None:
            out.append(
                f"  mean (from the standard): {pid}: rolling {format_duration(spec.mean_window_ns)} mean "
                f"against its mean limit    {spec.origin}"
            )
    if st is not None and st.expect:
        for pid, every in st.expect.items():
            out.append(
                f"  no_data (expected): {pid} every {format_duration(every)}    "
                f"{st.lines.get(f'expect.{pid}', st.origin)}"
            )
    out.append("")
    out.append("screening")
    sc = ts.screen
    out.append(
        f"  ignored flags: {', '.join(sorted(sc.ignore_flags))}    {sc.origins.get('ignore_flags', '(built in)')}"
    )
    out.append(
        f"  suspect flags: {', '.join(sorted(sc.suspect_flags))}    {sc.origins.get('suspect_flags', '(built in)')}"
    )
    out.append(
        f"  below detection limit flags: {', '.join(sorted(sc.dl_flags))}    "
        f"{sc.origins.get('below_dl_flags', '(built in)')}"
    )
    for pid in dict.fromkeys([*limited, *ts.instruments, *(st.instruments if st else {})]):
        settings = ts.instrument(station, pid)
        if settings:
            shown = ", ".join(f"{k} {v if not isinstance(v, float) else _fmt(v)}" for k, v in settings.items())
            origin = (st.lines.get(f"instruments.{pid}") if st else None) or (
                "[instruments] " if pid in ts.instruments else "[screen]"
            )
            out.append(f"  {pid}: {shown}    {origin}")
    out.append("")
    out.append("alerts")
    al = ts.alerts
    out.append(
        "  severity by ratio: "
        + ", ".join(f"{n} ≥ {_fmt(t)}" for t, n in al.tiers)
        + f"    {al.origins.get('severity', '(built in)')}"
    )
    out.append(
        f"  clears below {_fmt(al.clear_ratio)} × limit"
        + (f" held for {format_duration(al.clear_hold_ns)}" if al.clear_hold_ns else " at the first reading")
        + f"    {al.origins.get('clear_ratio', al.origins.get('clear_hold', '(built in)'))}"
    )
    return "\n".join(out) + "\n"


def _rule_at(rule: RuleSpec, station: str, st: Station | None) -> bool:
    if rule.stations and station not in rule.stations:
        return False
    return rule.intake is None or (st is not None and st.intake) == rule.intake
