"""Threshold files: water-quality standards (GB 3838-2002 and others) and station tables, in TOML.

`check` validates files and reports every problem as `path:line: message`, so that
`riverwatch thresholds check` can point a user at the exact line; `load` returns the ready-to-use
`ThresholdSet` or raises `ThresholdError` with the same problems. Limits are converted to each parameter's
standard unit (monitor.params) on load, so they compare directly with readings.

File layout (all tables optional, but a file with `[items.*]` needs `[standard]`)::

    [standard]  id, name, classes = ["I", ...]
    [items.<parameter id>]  kind = max | min | range | change, unit, limits / limit / lake_limits, low / high, source
    [stations.<station id>]  name, name_zh, river, river_km, class, intake, water_body

When several files are loaded, earlier standards take precedence for a parameter they cover.
"""

from __future__ import annotations

import ast
import bisect
import contextlib
import difflib
import importlib.resources
import math
import re
import site
import sys
import sysconfig
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from monitor.params import PARAMETERS, resolve, unit_factor

__all__ = [
    "Item",
    "Limit",
    "Problem",
    "Standard",
    "Station",
    "ThresholdError",
    "ThresholdSet",
    "check",
    "load",
    "shipped_path",
]

KINDS = ("max", "min", "range", "change")
DEFAULT_CLASSES = ("I", "II", "III", "IV", "V")  # for station-only files: the classes of GB 3838-2002
WATER_BODIES = ("river", "lake")

_TOP_KEYS = ("standard", "items", "stations")
_STANDARD_KEYS = ("id", "name", "name_zh", "classes", "source", "note")
_ITEM_COMMON_KEYS = ("kind", "unit", "source", "scope", "note")
_ITEM_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "max": ("limit", "limits", "lake_limit", "lake_limits"),
    "min": ("limit", "limits", "lake_limit", "lake_limits"),
    "range": ("low", "high"),
    "change": ("max_rise", "max_drop"),
}
_STATION_KEYS = ("name", "name_zh", "river", "river_km", "class", "intake", "water_body", "note")
_WATER_BODY_ALIASES = {"river": "river", "lake": "lake", "reservoir": "lake"}  # GB 3838 groups 湖、库 together


def _fmt(value: float) -> str:
    """A limit as people write it: 0.00005, not 5e-05; 6, not 6.0."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


# --------------------------------------------------------------------------- the data


@dataclass(frozen=True, slots=True)
class Limit:
    """One evaluable limit for a (station, parameter): what the alert engine compares readings with."""

    parameter: str  # catalogue id
    kind: str  # "max" | "min" | "range"
    value: float  # the limit (for range: the upper bound), in the parameter's standard unit
    low: float | None  # range lower bound, else None
    unit: str
    standard: str  # e.g. "GB 3838-2002"
    klass: str  # e.g. "III"
    source: str

    def describe(self) -> str:
        """Human text for notifications: "0.005 mg/L (GB 3838-2002 Class III)", "6–9 (...)", "≥ 5 mg/L (...)"."""
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "range":
            amount = f"{_fmt(self.low if self.low is not None else -math.inf)}–{_fmt(self.value)}{unit}"
        elif self.kind == "min":
            amount = f"≥ {_fmt(self.value)}{unit}"
        else:
            amount = f"{_fmt(self.value)}{unit}"
        return f"{amount} ({self.standard} Class {self.klass})"

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


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a standard, limits already in the parameter's standard unit."""

    parameter: str
    kind: str  # max | min | range | change
    unit: str
    limits: Mapping[str, float]  # per class; for range the upper bound; empty when only lakes have a limit
    lows: Mapping[str, float]  # range: the lower bound per class
    lake_limits: Mapping[str, float]  # lakes and reservoirs, where they differ from rivers
    source: str
    scope: str = ""


@dataclass(frozen=True, slots=True)
class Standard:
    """A standard as loaded from one file."""

    id: str
    name: str
    classes: tuple[str, ...]
    items: Mapping[str, Item]
    path: str


@dataclass
class ThresholdSet:
    """Everything loaded: the standards in precedence order and the stations by id."""

    standards: list[Standard] = field(default_factory=list)
    stations: dict[str, Station] = field(default_factory=dict)
    _cache: dict[tuple[str, str, str], Limit | None] = field(default_factory=dict, init=False, repr=False,
                                                             compare=False)

    def limit(self, station: str, parameter: str, default_class: str) -> Limit | None:
        """The limit a reading at `station` is held to; None when no standard has an evaluable one.

        Cached: it is called for every reading. Do not mutate `standards`/`stations` after the first call.
        """
        key = (station, parameter, default_class)
        try:
            return self._cache[key]
        except KeyError:
            pass
        found = self._find(station, parameter, default_class)
        self._cache[key] = found
        return found

    def _find(self, station: str, parameter: str, default_class: str) -> Limit | None:
        pid = resolve(parameter) or parameter
        st = self.stations.get(station)
        klass = st.klass if st is not None and st.klass else default_class
        lake = st is not None and st.water_body == "lake"
        for std in self.standards:
            item = std.items.get(pid)
            if item is None or item.kind not in ("max", "min", "range") or klass not in std.classes:
                continue
            table = item.lake_limits if lake and item.lake_limits else item.limits
            if klass not in table:
                continue  # e.g. total nitrogen at a river station: the standard sets it for lakes only
            low = item.lows.get(klass) if item.kind == "range" else None
            return Limit(pid, item.kind, table[klass], low, item.unit, std.id, klass, item.source)
        return None

    def limits_array(self, stations: Sequence[str], parameter: str,
                     default_class: str) -> tuple[np.ndarray, np.ndarray]:
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


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class _File:
    """One parsed file while checking: its data, line locator and what was built from it."""

    path: str
    data: dict[str, Any]
    loc: _Locator
    classes: tuple[str, ...] = ()
    standard: Standard | None = None
    stations: dict[str, Station] = field(default_factory=dict)


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

    def _unknown_keys(self, table: Mapping[str, Any], allowed: Sequence[str], path: tuple[str, ...],
                      what: str = "") -> None:
        for key in table:
            if key not in allowed:
                where = ".".join((*path, key))
                self._add(self._at(*path, key), f"{where}: unknown key '{key}'{what}{_suggest(key, allowed)}")

    # ---- file level

    def check_file(self, f: _File) -> None:
        self._f = f
        data = f.data
        self._unknown_keys(data, _TOP_KEYS, (), " (expected standard, items or stations)")
        if not any(k in data for k in _TOP_KEYS):
            self._add(1, "nothing to load: no [standard], [items.*] or [stations.*] tables")
        items = data.get("items")
        std = data.get("standard")
        if std is None:
            if items is not None:
                self._add(self._at("items"), "items without a [standard] table (it needs id and classes)")
        elif not isinstance(std, dict):
            self._add(self._at("standard"), "'standard' must be a table")
        else:
            self._standard_table(f, std)
        if items is not None:
            if not isinstance(items, dict):
                self._add(self._at("items"), "'items' must be a table of [items.<parameter id>] tables")
            else:
                built = {pid: it for pid, raw in items.items() if (it := self._item(f, pid, raw)) is not None}
                if isinstance(std, dict) and isinstance(std.get("id"), str) and f.classes:
                    f.standard = Standard(std["id"], str(std.get("name", std["id"])), f.classes, built, f.path)

    def _standard_table(self, f: _File, std: dict[str, Any]) -> None:
        self._unknown_keys(std, _STANDARD_KEYS, ("standard",))
        sid = std.get("id")
        if sid is None:
            self._add(self._at("standard"), "[standard] has no 'id'")
        elif not isinstance(sid, str) or not sid.strip():
            self._add(self._at("standard", "id"), "standard.id must be a non-empty string")
        for key in ("name", "name_zh", "source", "note"):
            if key in std and not isinstance(std[key], str):
                self._add(self._at("standard", key), f"standard.{key} must be a string")
        classes = std.get("classes")
        if classes is None:
            self._add(self._at("standard"), "[standard] has no 'classes' (e.g. classes = [\"I\", \"II\", \"III\"])")
            return
        if not isinstance(classes, list) or not classes:
            self._add(self._at("standard", "classes"), "standard.classes must be a non-empty list of class names")
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
            if key in raw and not isinstance(raw[key], str):
                self._add(self._at(*here, key), f"{name}.{key} must be a string")
        factor = self._unit(pid, raw, here)
        negative_ok = pid == "temp"  # a temperature can be below zero; concentrations, pH, counts cannot
        limits: dict[str, float] = {}
        lows: dict[str, float] = {}
        lake: dict[str, float] = {}
        if kind in ("max", "min"):
            if not any(k in raw for k in _ITEM_KIND_KEYS[kind]):
                self._add(self._at(*here), f"{name}: missing 'limits' (or 'limit', 'lake_limits')")
            for single, table, target in (("limit", "limits", limits), ("lake_limit", "lake_limits", lake)):
                if single in raw and table in raw:
                    self._add(self._at(*here, single), f"{name}: give either '{single}' or '{table}', not both")
                    continue
                if table in raw:
                    vals = self._per_class(f, here, table, raw[table], negative_ok)
                    self._ordering(f, here, table, vals, kind)
                elif single in raw:
                    vals = self._single(f, here, single, raw[single], negative_ok)
                else:
                    continue
                target.update({c: v * factor for c, v in vals.items()})
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
            for c in f.classes:
                if c in lo and c in hi and not lo[c] < hi[c]:
                    self._add(self._at(*here, "low", c),
                              f"{name}: class {c}: low {_fmt(lo[c])} is not below high {_fmt(hi[c])}")
            limits = {c: v * factor for c, v in hi.items()}
            lows = {c: v * factor for c, v in lo.items()}
        elif kind == "change":  # documented, not evaluated reading by reading
            for key in ("max_rise", "max_drop"):
                if key in raw:
                    self._number(raw[key], (*here, key), f"{name}.{key}", False)
        if len(self.problems) != before or not f.classes or not isinstance(kind, str):
            return None
        return Item(pid, kind, PARAMETERS[pid].unit, limits, lows, lake, str(raw.get("source", "")),
                    str(raw.get("scope", "")))

    def _unit(self, pid: str, raw: Mapping[str, Any], here: tuple[str, ...]) -> float:
        """Factor from the file's unit to the parameter's standard unit; absent means the standard unit."""
        unit = raw.get("unit")
        name = ".".join((*here, "unit"))
        if unit is not None and not isinstance(unit, str):
            self._add(self._at(*here, "unit"), f"{name} must be a string")
            return 1.0
        if pid not in PARAMETERS:
            return 1.0
        factor = unit_factor(pid, unit)
        if factor is None:
            std_unit = f"'{PARAMETERS[pid].unit}'" if PARAMETERS[pid].unit else "no unit ('')"
            self._add(self._at(*here, "unit"),
                      f"{name}: unknown unit '{unit}' for {pid} (use {std_unit} or a unit convertible to it)")
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

    def _single(self, f: _File, here: tuple[str, ...], key: str, value: object,
                negative_ok: bool) -> dict[str, float]:
        """One number for every class (Tables 2 and 3 have no classes)."""
        if isinstance(value, dict) and key in ("limit", "lake_limit"):
            self._add(self._at(*here, key), f"{'.'.join((*here, key))} must be a number "
                                            f"(use '{key}s' for a table of class = limit)")
            return {}
        num = self._number(value, (*here, key), ".".join((*here, key)), negative_ok)
        return {} if num is None else dict.fromkeys(f.classes, num)

    def _per_class(self, f: _File, here: tuple[str, ...], key: str, value: object,
                   negative_ok: bool) -> dict[str, float]:
        """The valid values of a `class = number` table; every bad or missing class is a problem."""
        name = ".".join((*here, key))
        if not isinstance(value, dict):
            single = key[:-1] if key.endswith("limits") else key
            self._add(self._at(*here, key),
                      f"{name} must be a table of class = limit (use '{single}' for one value for every class)")
            return {}
        out: dict[str, float] = {}
        for c, v in value.items():
            if f.classes and c not in f.classes:
                self._add(self._at(*here, key, c),
                          f"{name}: class '{c}' is not in standard.classes ({', '.join(f.classes)})")
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
                self._add(self._at(*here, key, c),
                          f"{'.'.join((*here, key))}.{c} = {_fmt(v)} is stricter than class {prev[0]} "
                          f"({_fmt(prev[1])}): {kind} limits must not {trend} from class {f.classes[0]} "
                          f"to {f.classes[-1]}")
            prev = (c, v)

    # ---- stations

    def check_stations(self, f: _File, known_classes: Sequence[str], seen: dict[str, str]) -> None:
        self._f = f
        stations = f.data.get("stations")
        if stations is None:
            return
        if not isinstance(stations, dict):
            self._add(self._at("stations"), "'stations' must be a table of [stations.<id>] tables")
            return
        for sid, raw in stations.items():
            here = ("stations", sid)
            name = f"stations.{sid}"
            line = self._at(*here)
            if not isinstance(raw, dict):
                self._add(line, f"{name} must be a table")
                continue
            ok = True
            if not sid.strip() or any(ch in sid for ch in "/+#"):
                ok = False
                self._add(line, f"{name}: a station id must be non-empty and contain no '/', '+' or '#' "
                                "(it is an MQTT topic level)")
            if sid in seen:
                ok = False
                self._add(line, f"{name}: station '{sid}' is already defined at {seen[sid]}")
            else:
                seen[sid] = f"{f.path}:{line}"
            self._unknown_keys(raw, _STATION_KEYS, here)
            for key in ("name", "name_zh", "river", "note"):
                if key in raw and not isinstance(raw[key], str):
                    ok = False
                    self._add(self._at(*here, key), f"{name}.{key} must be a string")
            km = raw.get("river_km")
            if km is not None and (not _is_number(km) or not math.isfinite(km)):
                ok = False
                self._add(self._at(*here, "river_km"), f"{name}.river_km must be a finite number")
            klass = raw.get("class")
            if klass is not None and (not isinstance(klass, str) or klass not in known_classes):
                ok = False
                shown = klass if isinstance(klass, str) else repr(klass)
                self._add(self._at(*here, "class"),
                          f"{name}.class: unknown class '{shown}' (one of {', '.join(known_classes)})")
            intake = raw.get("intake", False)
            if not isinstance(intake, bool):
                ok = False
                self._add(self._at(*here, "intake"), f"{name}.intake must be true or false")
            body = raw.get("water_body", "river")
            if body not in _WATER_BODY_ALIASES:
                ok = False
                self._add(self._at(*here, "water_body"),
                          f"{name}.water_body: unknown water body {body!r} (river, lake or reservoir)")
            if ok:
                f.stations[sid] = Station(sid, raw.get("name", sid), raw.get("name_zh", ""), raw.get("river", ""),
                                          float(km) if km is not None else None, klass, intake,
                                          _WATER_BODY_ALIASES[body])


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
    """Check and build in one pass; the set is only meaningful when there are no problems."""
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
    seen_stations: dict[str, str] = {}
    seen_standards: dict[str, str] = {}
    result = ThresholdSet()
    for f in files:
        checker.check_stations(f, known_classes, seen_stations)
        result.stations.update(f.stations)
        if f.standard is not None:
            line = f.loc.line("standard", "id")
            if f.standard.id in seen_standards:
                checker.problems.append(Problem(f.path, line, f"standard '{f.standard.id}' is already loaded "
                                                               f"from {seen_standards[f.standard.id]}"))
            else:
                seen_standards[f.standard.id] = f"{f.path}:{line}"
                result.standards.append(f.standard)
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
    repo = Path(__file__).resolve().parent.parent / "thresholds" / name
    candidates.append(repo)
    data = Path("share") / "riverwatch" / "thresholds" / name
    prefixes = [sys.prefix, sysconfig.get_path("data"), site.USER_BASE]
    candidates += [Path(prefix) / data for prefix in dict.fromkeys(p for p in prefixes if p)]
    for c in candidates:
        if c.is_file():
            return c
    return repo
