"""Checking the policy tables, each defined once across all files: `[classes]`, `[alerts]`, `[screen]` and
`[instruments.<parameter>]`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from monitor.thresholds.check_screens import ScreenChecker
from monitor.thresholds.checking import SourceFile, is_number, suggest
from monitor.thresholds.model import (
    CLEAR_HOLD_CYCLE,
    DEFAULT_TIERS,
    AlertPolicy,
    ClassPolicy,
    InstrumentSettings,
    ScreenSpec,
)
from monitor.thresholds.notation import fmt_number

_SINGLE_TABLES = ("classes", "screen", "alerts")  # at most one of each across all files
_CLASS_KEYS = ("intake", "default", "note")
_ALERT_KEYS = (
    "severity",
    "severity_by",
    "clear_ratio",
    "clear_hold",
    "clear_readings",
    "confirm",
    "near_band",
    "near_rise",
    "trend_readings",
    "clear_band",
    "sudden_band",
    "note",
)
_BANDS = {"near_band": 3.0, "near_rise": 2.0, "clear_band": 2.0, "sudden_band": 0.0}  # noise sigmas; 0 = off


@dataclass
class FilePolicies:
    """The policy tables of one file that checked clean (None: absent or with problems)."""

    classes: ClassPolicy | None = None
    screen: ScreenSpec | None = None
    alerts: AlertPolicy | None = None
    instruments: dict[str, InstrumentSettings] = field(default_factory=dict)


class PolicyChecker(ScreenChecker):
    """Checks a file's policy tables; `owners` (table -> path:line) carries across files to refuse a second.
    `station_ids` and `standard_ids`: what the files declare, for `[alerts.severity_by]`."""

    station_ids: Sequence[str] = ()
    standard_ids: Sequence[str] = ()

    def check(self, f: SourceFile, known_classes: Sequence[str], owners: dict[str, str]) -> FilePolicies:
        """[classes], [screen], [instruments.*], [alerts]: each defined once across all files."""
        self._f = f
        built = FilePolicies()
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
                built.classes = self._classes(f, raw, known_classes)
            elif key == "screen":
                built.screen = self._screen(f, raw)
            elif key == "alerts":
                built.alerts = self._alerts(f, raw)
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
                built.instruments = tables
        return built

    def _classes(self, f: SourceFile, raw: Mapping[str, Any], known_classes: Sequence[str]) -> ClassPolicy | None:
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

    def _severity_by(
        self, raw: object, tiers: tuple[tuple[float, str], ...]
    ) -> dict[tuple[str, str], tuple[float, ...]]:
        """`[alerts.severity_by.<scope>.<id>]` tables of tier name = ratio, checked against the tiers and the
        stations, parameters and standards the files declare; each filled in from `severity` and increasing."""
        out: dict[tuple[str, str], tuple[float, ...]] = {}
        if raw is None:
            return out
        here: tuple[str, ...] = ("alerts", "severity_by")
        if not isinstance(raw, dict):
            self._add(
                self._at(*here), "alerts.severity_by must hold tables: station.<id>, parameter.<id>, standard.<id>"
            )
            return out
        names = [n for _, n in tiers]
        known = {"station": self.station_ids, "parameter": None, "standard": self.standard_ids}
        for scope, table in raw.items():
            if scope not in known or not isinstance(table, dict):
                self._add(
                    self._at(*here, scope),
                    f"alerts.severity_by.{scope}: expected [alerts.severity_by.station.<id>], .parameter.<id> "
                    "or .standard.<id>",
                )
                continue
            for sid, ratios in table.items():
                at = (*here, scope, sid)
                dot = f"alerts.severity_by.{scope}.{sid}"
                if scope == "parameter" and not self._parameter_key(sid, at):
                    continue
                ids = known[scope]
                if ids is not None and sid not in ids:
                    self._add(self._at(*at), f"{dot}: no {scope} '{sid}' in the threshold files{suggest(sid, ids)}")
                    continue
                if not isinstance(ratios, dict) or not ratios:
                    self._add(self._at(*at), f"{dot} must be a table of tier = ratio, e.g. {{ {names[-1]} = 4 }}")
                    continue
                given: dict[str, float] = {}
                for name, v in ratios.items():
                    if name not in names:
                        self._add(self._at(*at, name), f"{dot}.{name}: not a severity tier (one of {', '.join(names)})")
                    elif not is_number(v) or not math.isfinite(v) or v <= 0:
                        self._add(self._at(*at, name), f"{dot}.{name}: the ratio must be a positive number, not {v!r}")
                    else:
                        given[name] = float(v)
                bounds = tuple(given.get(n, t) for t, n in tiers)
                if any(b >= c for b, c in pairwise(bounds)):
                    shown = ", ".join(f"{n} {fmt_number(b)}" for b, n in zip(bounds, names, strict=True))
                    self._add(
                        self._at(*at),
                        f"{dot}: the tiers must rise from the mildest to the worst ({shown}, with the ones left out "
                        "taken from [alerts] severity)",
                    )
                    continue
                if len(given) == len(ratios):
                    out[(scope, sid)] = bounds
        return out

    def _alerts(self, f: SourceFile, raw: Mapping[str, Any]) -> AlertPolicy | None:
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
                    if not is_number(v) or not math.isfinite(v) or v <= 0:
                        self._add(
                            self._at("alerts", "severity", name),
                            f"alerts.severity.{name}: the ratio must be a positive number, not {v!r}",
                        )
                    elif built and v <= built[-1][0]:
                        self._add(
                            self._at("alerts", "severity", name),
                            f"alerts.severity.{name} = {fmt_number(v)} must be above {built[-1][1]} "
                            f"({fmt_number(built[-1][0])}): tiers go from the mildest to the worst",
                        )
                    else:
                        built.append((float(v), name))
                if built:
                    tiers = tuple(built)
        tiers_by = self._severity_by(raw.get("severity_by"), tiers)
        ratio = self._fraction(raw, "clear_ratio", ("alerts",), 0.0, 1.0, "must be above 0 and at most 1")
        hold: int | None = CLEAR_HOLD_CYCLE  # "cycle" (the default): one analyser cycle of the series
        if raw.get("clear_hold") != "cycle":
            hold = self._duration(raw, "clear_hold", ("alerts",), zero_ok=True)
        confirm = self._positive_int(raw, "confirm", ("alerts",))
        clear_readings = self._positive_int(raw, "clear_readings", ("alerts",))
        bands = dict(_BANDS)
        for key in _BANDS:
            v = raw.get(key)
            if v is None:
                continue
            if not is_number(v) or not math.isfinite(v) or v < 0:
                self._add(self._at("alerts", key), f"alerts.{key} must be a number of noise sigmas >= 0, not {v!r}")
            else:
                bands[key] = float(v)
        trend_readings = self._positive_int(raw, "trend_readings", ("alerts",))
        if trend_readings is not None and trend_readings < 3:
            self._add(self._at("alerts", "trend_readings"), "alerts.trend_readings must be at least 3")
        if len(self.problems) != before:
            return None
        return AlertPolicy(
            tiers,
            ratio if ratio is not None else 1.0,
            hold if hold is not None else CLEAR_HOLD_CYCLE,
            {k: f.where("alerts", k) for k in raw},
            confirm=confirm or 2,
            clear_readings=clear_readings or 2,
            near_band=bands["near_band"],
            near_rise=bands["near_rise"],
            trend_readings=trend_readings or 6,
            clear_band=bands["clear_band"],
            sudden_band=bands["sudden_band"],
            tiers_by=tiers_by,
        )
