"""Checking `[[rules]]`: each rule's kind and settings, and rules that would share one alert of a series."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from monitor.thresholds.checking import Checker, SourceFile, dotted, is_number, suggest
from monitor.thresholds.model import EVENT_DEFAULTS, LIMIT_RULES, RULE_KINDS, Problem, RuleSpec

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
    "event": tuple(EVENT_DEFAULTS),
}


def specificity(rule: RuleSpec) -> int:
    """Of the limit rules matching a series, the highest wins: a station filter beats a parameter filter."""
    return 2 * bool(rule.stations or rule.intake is not None) + bool(rule.parameters)


def _overlap(a: RuleSpec, b: RuleSpec) -> bool:
    if a.parameters and b.parameters and not set(a.parameters) & set(b.parameters):
        return False
    if a.stations and b.stations and not set(a.stations) & set(b.stations):
        return False
    return a.intake is None or b.intake is None or a.intake == b.intake


class RuleChecker(Checker):
    """Checks a file's [[rules]] against the loaded stations and severity names; builds a `RuleSpec` each."""

    def check(self, f: SourceFile, station_ids: Sequence[str], tier_names: Sequence[str]) -> list[RuleSpec]:
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
        self, f: SourceFile, i: int, raw: dict[str, Any], station_ids: Sequence[str], tier_names: Sequence[str]
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
                    f"{suggest(str(kind), RULE_KINDS)}",
                )
            return None
        self._unknown_keys(raw, _RULE_COMMON_KEYS + _RULE_KIND_KEYS[kind], here, f" for rule kind '{kind}'")
        for key in ("name", "note"):
            self._string(raw, key, here)
        params = self._names(raw, "parameter", "parameters", here)
        for j, p in enumerate(params):
            at = (*here, "parameters", str(j)) if "parameters" in raw else (*here, "parameter")
            if p not in self.catalogue:
                alias = self.catalogue.resolve(p)
                hint = f" ('{p}' is an alias: use the id '{alias}')" if alias else suggest(p, self.catalogue)
                self._add(self._at(*at), f"{name}: unknown parameter id '{p}'{hint}")
        stations = self._names(raw, "station", "stations", here)
        if station_ids:
            for j, s in enumerate(stations):
                if s not in station_ids:
                    at = (*here, "stations", str(j)) if "stations" in raw else (*here, "station")
                    self._add(self._at(*at), f"{name}: unknown station '{s}'{suggest(s, station_ids)}")
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
            elif not is_number(rise) or not math.isfinite(rise) or rise <= 0:
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
                        if p in self.catalogue and self.catalogue.unit_factor(p, unit) is None:
                            self._add(self._at(*here, "unit"), f"{name}.unit: unknown unit '{unit}' for {p}")
                    kw["unit"] = unit
            above = raw.get("above")
            if above is not None:
                if not is_number(above) or not math.isfinite(above) or above < 0:
                    self._add(
                        self._at(*here, "above"), f"{name}.above must be a fraction of the limit ≥ 0, not {above!r}"
                    )
                else:
                    kw["above"] = float(above)
        if kind == "no_data":
            interval = self._duration(raw, "interval", here)
            factor = raw.get("factor", 3.0)
            if not is_number(factor) or not math.isfinite(factor) or factor < 1:
                self._add(self._at(*here, "factor"), f"{name}.factor must be a number ≥ 1, not {factor!r}")
            scope = raw.get("scope", "series")
            if scope not in ("series", "station"):
                self._add(self._at(*here, "scope"), f"{name}.scope must be 'series' or 'station', not {scope!r}")
            if scope == "station" and "interval" not in raw:
                self._add(self._at(*here), f"{name}: a station-wide no_data rule needs 'interval'")
            kw.update(interval_ns=interval or 0, factor=float(factor) if is_number(factor) else 3.0, scope=scope)
        if kind == "event":
            kw.update(self._event(raw, here, params))
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

    def _event(self, raw: Mapping[str, Any], here: tuple[str, ...], params: Sequence[str]) -> dict[str, Any]:
        """The event rule's settings (EVENT_DEFAULTS where the file says nothing), checked one by one and then
        together: a rule that could never fire, or that fires on one signal while it names many, is a problem."""
        name = dotted(here)
        d = EVENT_DEFAULTS
        if len(params) < 2:
            self._add(
                self._at(*here),
                f'{name}: an event rule needs \'parameters\' with at least two signals (e.g. ["cond", "turb", '
                '"ph"]): it fires when several leave their normal behaviour together',
            )
        window = raw.get("window", d["window"])
        if isinstance(window, str):
            self._add(
                self._at(*here, "window"),
                f"{name}.window: for an event rule, the number of steps of normal behaviour learnt (e.g. 72), "
                f"not {window!r}",
            )
            window = None
        else:
            window = self._positive_int(raw, "window", here, least=12) if "window" in raw else int(d["window"])
        steps = self._positive_int(raw, "steps", here, least=2) if "steps" in raw else int(d["steps"])
        least = self._positive_int(raw, "min_signals", here) if "min_signals" in raw else int(d["min_signals"])
        timeout = self._positive_int(raw, "timeout", here, least=0) if "timeout" in raw else int(d["timeout"])
        probability = "must be a probability above 0 and below 1"
        sigma = self._fraction(raw, "threshold", here, 0.0, 100.0, "must be a number of standard deviations above 0")
        p_out = self._fraction(raw, "outlier_probability", here, 0.0, 0.999, probability)
        conf = self._fraction(raw, "confidence", here, 0.0, 0.999999, probability)
        sigma = sigma if "threshold" in raw else d["threshold"]
        p_out = p_out if "outlier_probability" in raw else d["outlier_probability"]
        conf = conf if "confidence" in raw else d["confidence"]
        if window is not None and steps is not None and steps > window:
            self._add(self._at(*here, "steps"), f"{name}.steps ({steps}) must not be more than window ({window})")
        if least is not None and len(params) >= 2 and least > len(params):
            self._add(
                self._at(*here, "min_signals"),
                f"{name}.min_signals ({least}) is more than the {len(params)} signals in 'parameters'",
            )
        if steps is not None and p_out is not None and conf is not None and p_out**steps >= 1.0 - conf:
            self._add(
                self._at(*here),
                f"{name}: this event rule can never fire: even {steps} outliers in {steps} steps are that likely "
                f"(probability {p_out**steps:.3g}) when outlier_probability is {p_out:g}; lower outlier_probability "
                "or confidence, or raise steps",
            )
        if None in (window, steps, least, timeout, sigma, p_out, conf):
            return {}
        return {
            "history": window,
            "steps": steps,
            "min_signals": least,
            "timeout": timeout,
            "sigma": float(sigma or 0.0),
            "outlier_probability": float(p_out or 0.0),
            "confidence": float(conf or 0.0),
        }

    def _names(self, raw: Mapping[str, Any], single: str, plural: str, here: tuple[str, ...]) -> list[str]:
        if single in raw and plural in raw:
            self._add(self._at(*here, single), f"{dotted(here)}: give either '{single}' or '{plural}', not both")
            return []
        if single in raw:
            v = raw[single]
            if not isinstance(v, str) or not v:
                self._add(self._at(*here, single), f"{dotted(here)}.{single} must be a string")
                return []
            return [v]
        if plural in raw:
            v = raw[plural]
            if not isinstance(v, list) or not v or not all(isinstance(x, str) and x for x in v):
                self._add(self._at(*here, plural), f"{dotted(here)}.{plural} must be a non-empty list of strings")
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
