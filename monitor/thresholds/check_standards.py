"""Checking `[standard]` and its `[items.<parameter>]`: classes, limits per class, dated steps, bands."""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping
from typing import Any

from monitor.thresholds.checking import Checker, SourceFile, dotted, is_number, scaled, suggest
from monitor.thresholds.model import KINDS, Item, Standard
from monitor.thresholds.notation import fmt_number

_STANDARD_KEYS = ("id", "name", "name_zh", "classes", "source", "note")
_ITEM_COMMON_KEYS = ("kind", "unit", "source", "scope", "note")
# the keys of an item with one bound (an upper or a lower limit)
_BOUND_KEYS = (
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
)
_ITEM_KIND_KEYS: dict[str, tuple[str, ...]] = {
    "max": _BOUND_KEYS,
    "min": _BOUND_KEYS,
    "range": ("low", "high"),
    "change": ("max_rise", "max_drop"),
}


def _date_ns(day: dt.date) -> int:
    """Midnight UTC of a date: dated steps change at the start of the day (UTC, documented)."""
    return int(dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()) * 10**9


class StandardChecker(Checker):
    """Checks a file's [standard] and [items.*], and builds its `Standard` when they are valid."""

    def check(self, f: SourceFile) -> None:
        self._f = f
        data = f.data
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

    def _standard_table(self, f: SourceFile, std: dict[str, Any]) -> None:
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

    def _item(self, f: SourceFile, pid: str, raw: object) -> Item | None:
        """Check one [items.<id>] table; the Item is built only when it added no problem."""
        before = len(self.problems)
        here = ("items", pid)
        name = f"items.{pid}"
        if pid not in self.catalogue:
            alias = self.catalogue.resolve(pid)
            hint = f" ('{pid}' is an alias: use the id '{alias}')" if alias else suggest(pid, self.catalogue)
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
                    target.update({c: scaled(v, factor) for c, v in vals.items()})
                mean = self._limit_values(f, here, "mean_limit", "mean_limits", raw, negative_ok, kind)
                if mean:
                    extra["mean_limits"] = {c: scaled(v, factor) for c, v in mean.items()}
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
                        self._at(*here, "low", c),
                        f"{name}: {where}low {fmt_number(lo[c])} is not below high {fmt_number(hi[c])}",
                    )
            limits = {c: scaled(v, factor) for c, v in hi.items()}
            lows = {c: scaled(v, factor) for c, v in lo.items()}
        elif kind == "change":  # documented, not evaluated reading by reading
            for key in ("max_rise", "max_drop"):
                if key in raw:
                    self._number(raw[key], (*here, key), f"{name}.{key}", False)
        if len(self.problems) != before or not f.std_ok or not isinstance(kind, str):
            return None
        return Item(
            pid,
            kind,
            self.catalogue[pid].unit,
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
        f: SourceFile,
        here: tuple[str, ...],
        single: str,
        table: str,
        raw: Mapping[str, Any],
        negative_ok: bool,
        kind: str,
    ) -> dict[str, float]:
        name = dotted(here)
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
            self._add(self._at(*here), f"{dotted(here)}: a mean limit needs 'mean_window' (e.g. \"365d\")")
        elif "mean_window" in raw and not has_mean:
            self._add(self._at(*here, "mean_window"), f"{dotted(here)}.mean_window without 'mean_limit'")
        if window:
            extra["mean_window_ns"] = window

    def _steps(
        self, f: SourceFile, raw: Mapping[str, Any], here: tuple[str, ...], factor: float, negative_ok: bool
    ) -> tuple[tuple[int, str, float], ...]:
        """Dated values in force before a date, e.g. the EU lead value of 10 µg/L until 2036-01-12."""
        name = dotted((*here, "steps"))
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
            out.append((ns, until.isoformat(), scaled(num, factor)))
        return tuple(out)

    def _banded(
        self, f: SourceFile, pid: str, raw: Mapping[str, Any], here: tuple[str, ...], kind: str, factor: float
    ) -> dict[str, Any]:
        """A limit that depends on another measured parameter: one value per band of that parameter."""
        name = dotted(here)
        dep = raw["depends_on"]
        out: dict[str, Any] = {}
        if not isinstance(dep, str) or dep not in self.catalogue:
            shown = dep if isinstance(dep, str) else repr(dep)
            self._add(
                self._at(*here, "depends_on"),
                f"{name}.depends_on: unknown parameter id '{shown}'{suggest(str(dep), self.catalogue)}",
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
        if not isinstance(bounds, list) or not bounds or not all(is_number(b) and math.isfinite(b) for b in bounds):
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
                out[target] = tuple(scaled(x, factor) for x in nums if x is not None)
        self._mean_window(raw, here, "mean_limit" in raw, out)
        band = self._positive_int(raw, "default_band", here, least=1)
        if band is not None:
            if band > n:
                self._add(self._at(*here, "default_band"), f"{name}.default_band: there are only {n} bands")
            else:
                out["default_band"] = band - 1
        return out

    def _single(
        self, f: SourceFile, here: tuple[str, ...], key: str, value: object, negative_ok: bool
    ) -> dict[str, float]:
        """One number for every class (Tables 2 and 3 have no classes)."""
        if isinstance(value, dict) and key in ("limit", "lake_limit", "mean_limit"):
            self._add(
                self._at(*here, key),
                f"{dotted((*here, key))} must be a number (use '{key}s' for a table of class = limit)",
            )
            return {}
        num = self._number(value, (*here, key), dotted((*here, key)), negative_ok)
        return {} if num is None else dict.fromkeys(f.classes or ("",), num)

    def _per_class(
        self, f: SourceFile, here: tuple[str, ...], key: str, value: object, negative_ok: bool
    ) -> dict[str, float]:
        """The valid values of a `class = number` table; every bad or missing class is a problem."""
        name = dotted((*here, key))
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

    def _ordering(self, f: SourceFile, here: tuple[str, ...], key: str, vals: Mapping[str, float], kind: str) -> None:
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
                    f"{dotted((*here, key))}.{c} = {fmt_number(v)} is stricter than class {prev[0]} "
                    f"({fmt_number(prev[1])}): {kind} limits must not {trend} from class {f.classes[0]} "
                    f"to {f.classes[-1]}",
                )
            prev = (c, v)
