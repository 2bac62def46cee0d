"""What every table's checks share: the file being checked, the problem list, and the checks of single values.

Each table's checker (check_standards, check_stations, check_policy, check_rules) is a `Checker` over one
shared problem list, so problems keep the order in which the tables are checked.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.domain.params import SHIPPED, Catalogue
from monitor.thresholds.model import Problem, Standard, Station
from monitor.thresholds.notation import fmt_number, parse_duration
from monitor.thresholds.positions import Locator

TOP_KEYS = (
    "standard",
    "items",
    "stations",
    "classes",
    "rules",
    "screen",
    "instruments",
    "alerts",
    "parameters",
    "rivers",
)
_INDEXED = ("rules", "steps", "reaches", "dams", "tributaries", "treatments")  # arrays of tables: shown as rules[0]


def suggest(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def dotted(path: Sequence[str]) -> str:
    """A key path as users read it: rules[0].window, items.pb.steps[1].until, rivers.Longjiang.reaches[2]."""
    out = ""
    prev = ""
    for part in path:
        out += f"[{part}]" if part.isdigit() and prev in _INDEXED else (f".{part}" if out else part)
        prev = part
    return out


def scaled(value: float, factor: float) -> float:
    """A value converted to the standard unit without binary noise: 0.45 µg/L is 0.00045 mg/L, not
    0.00045000000000000004 (12 significant digits are far beyond any standard's precision)."""
    return float(f"{float(value) * factor:.12g}")


def is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class SourceFile:
    """One parsed file while checking: its data, line locator and what was built from it."""

    path: str
    data: dict[str, Any]
    loc: Locator
    classes: tuple[str, ...] = ()
    std_ok: bool = False  # a usable [standard] table (id, and classes when it has them)
    classless: bool = False  # [standard] without classes: one limit per item
    standard: Standard | None = None
    stations: dict[str, Station] = field(default_factory=dict)

    def where(self, *path: str) -> str:
        return f"{self.path}:{self.loc.line(*path)}"


class Checker:
    """Collects problems for the file being checked; the table checkers build on its value checks.

    `catalogue` is the parameters the files may name: the shipped ones plus every `[parameters.<id>]` of the
    files loaded together (load sets it once the parameter tables are checked)."""

    def __init__(self, problems: list[Problem], catalogue: Catalogue = SHIPPED) -> None:
        self.problems = problems
        self.catalogue = catalogue
        self._f: SourceFile | None = None

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
                where = dotted((*path, key))
                self._add(self._at(*path, key), f"{where}: unknown key '{key}'{what}{suggest(key, allowed)}")

    def _string(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> bool:
        if key in raw and not isinstance(raw[key], str):
            self._add(self._at(*here, key), f"{dotted((*here, key))} must be a string")
            return False
        return True

    def _duration(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...], zero_ok: bool = False) -> int | None:
        """A duration value; a problem (and None) when it is not one, or not positive."""
        if key not in raw:
            return None
        name = dotted((*here, key))
        value = raw[key]
        ns = parse_duration(value)
        if ns is None:
            shown = f"'{value}'" if isinstance(value, str) else repr(value)
            bare = is_number(value) or (isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*", value))
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
            self._add(self._at(*here, key), f"{dotted((*here, key))}: must be a whole number ≥ {least}, not {value!r}")
            return None
        return value

    def _fraction(
        self, raw: Mapping[str, Any], key: str, here: tuple[str, ...], low_open: float, high: float, what: str
    ) -> float | None:
        """A number in (low_open, high]."""
        if key not in raw:
            return None
        value = raw[key]
        if not is_number(value) or not math.isfinite(value) or not low_open < value <= high:
            self._add(self._at(*here, key), f"{dotted((*here, key))}: {what}, not {value!r}")
            return None
        return float(value)

    def _unit(self, pid: str, raw: Mapping[str, Any], here: tuple[str, ...]) -> float:
        """Factor from the file's unit to the parameter's standard unit; absent means the standard unit."""
        unit = raw.get("unit")
        name = dotted((*here, "unit"))
        if unit is not None and not isinstance(unit, str):
            self._add(self._at(*here, "unit"), f"{name} must be a string")
            return 1.0
        known = self.catalogue.get(pid)
        if known is None:
            return 1.0
        factor = self.catalogue.unit_factor(pid, unit)
        if factor is None:
            std_unit = f"'{known.unit}'" if known.unit else "no unit ('')"
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
            self._add(line, f"{where}: negative limit {fmt_number(num)}")
            return None
        return num

    def _parameter_key(self, pid: str, path: tuple[str, ...]) -> bool:
        if pid in self.catalogue:
            return True
        alias = self.catalogue.resolve(pid)
        hint = f" ('{pid}' is an alias: use the id '{alias}')" if alias else suggest(pid, self.catalogue)
        self._add(self._at(*path), f"{dotted(path)}: unknown parameter id '{pid}'{hint}")
        return False

    def check_top_level(self, f: SourceFile) -> None:
        """Keys outside the known tables, and a file that holds none of them."""
        self._f = f
        data = f.data
        self._unknown_keys(data, TOP_KEYS, (), f" (expected {', '.join(TOP_KEYS[:-1])} or {TOP_KEYS[-1]})")
        if not any(k in data for k in TOP_KEYS):
            self._add(
                1,
                "nothing to load: no [standard], [items.*], [stations.*], [classes], [[rules]], [screen], "
                "[instruments.*], [alerts], [parameters.*] or [rivers.*] tables",
            )
