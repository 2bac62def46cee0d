"""Checking the screens: `[screen]` (flags and the statistical screens of every series) and the
`[instruments.<parameter>]` tables, at the top level or in a station."""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from typing import Any

from monitor.thresholds.checking import Checker, SourceFile, dotted, is_number, scaled
from monitor.thresholds.model import (
    CHECK_WINDOW_NS,
    DEFAULT_DL_FLAGS,
    DEFAULT_IGNORE_FLAGS,
    DEFAULT_SUSPECT_FLAGS,
    DRIFT_LEARN_NS,
    DRIFT_WINDOW_NS,
    CheckStandard,
    DriftSpec,
    InstrumentSettings,
    ScreenSettings,
    ScreenSpec,
)

_SCREEN_ONLY_KEYS = ("ignore_flags", "suspect_flags", "below_dl_flags", "instrument_defaults", "note")
_INSTRUMENT_SHARED_KEYS = (
    "flatline",
    "spike_window",
    "spike_mads",
    "spike_floor",
    "gap_factor",
    "below_dl_run",
    "maintenance_max",
    "run_probability",
)
_INSTRUMENT_KEYS = ("range", "detection_limit", "check", "drift", "unit", *_INSTRUMENT_SHARED_KEYS, "note")
_CHECK_KEYS = ("value", "at", "tolerance", "window")
_DRIFT_KEYS = ("against", "tolerance", "window", "learn")
_CLOCK = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


class ScreenChecker(Checker):
    """Checks [screen] and instrument tables, building a `ScreenSpec` and `InstrumentSettings` per parameter."""

    def _instrument_tables(self, table: object, here: tuple[str, ...]) -> dict[str, InstrumentSettings]:
        """[instruments.<p>] (top level or per station): instrument range, detection limit, screens."""
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here), f"{dotted(here)} must be a table of [..instruments.<parameter id>] tables")
            return {}
        out: dict[str, InstrumentSettings] = {}
        for pid, raw in table.items():
            at = (*here, pid)
            if not self._parameter_key(pid, at):
                continue
            if not isinstance(raw, dict):
                self._add(self._at(*at), f"{dotted(at)} must be a table")
                continue
            before = len(self.problems)
            self._unknown_keys(raw, _INSTRUMENT_KEYS, at)
            screens = self._screen_settings(raw, at)
            factor = self._unit(pid, raw, at)
            rng = raw.get("range")
            bounds: tuple[float, float] | None = None
            if rng is not None:
                if (
                    not isinstance(rng, list)
                    or len(rng) != 2
                    or not all(is_number(x) and math.isfinite(x) for x in rng)
                    or not rng[0] < rng[1]
                ):
                    self._add(self._at(*at, "range"), f"{dotted(at)}.range must be [low, high] with low < high")
                else:
                    bounds = (scaled(rng[0], factor), scaled(rng[1], factor))
            detection: float | None = None
            if "detection_limit" in raw:
                num = self._number(
                    raw["detection_limit"], (*at, "detection_limit"), f"{dotted(at)}.detection_limit", False
                )
                if num is not None:
                    detection = scaled(num, factor)
            check = self._check_standard(raw.get("check"), (*at, "check"), factor)
            drift = self._drift(raw.get("drift"), (*at, "drift"), pid, here[0] == "stations")
            if len(self.problems) == before:
                floor = screens.spike_floor
                out[pid] = InstrumentSettings(
                    **{f.name: getattr(screens, f.name) for f in dataclasses.fields(screens)},
                    range=bounds,
                    detection_limit=detection,
                    check=check,
                    drift=drift,
                )
                if floor is not None:
                    out[pid] = dataclasses.replace(out[pid], spike_floor=scaled(floor, factor))
        return out

    def _check_standard(self, raw: object, at: tuple[str, ...], factor: float) -> CheckStandard | None:
        """`check = { value = 0.01, at = ["06:00"], tolerance = 0.1, window = "30min" }`."""
        if raw is None:
            return None
        name = dotted(at)
        if not isinstance(raw, dict):
            self._add(self._at(*at), f'{name} must be a table {{ value = ..., at = ["06:00"], tolerance = 0.1 }}')
            return None
        before = len(self.problems)
        self._unknown_keys(raw, _CHECK_KEYS, at)
        if "value" not in raw:
            self._add(self._at(*at), f"{name}: missing 'value' (the check standard's concentration)")
            return None
        value = self._number(raw["value"], (*at, "value"), f"{name}.value", False)
        times: list[int] = []
        when = raw.get("at", [])
        if not isinstance(when, list) or not all(isinstance(x, str) for x in when):
            self._add(self._at(*at, "at"), f'{name}.at must be a list of local times such as ["06:00", "18:00"]')
        else:
            for i, x in enumerate(when):
                m = _CLOCK.fullmatch(x.strip())
                if m is None:
                    self._add(self._at(*at, "at", str(i)), f"{name}.at: bad time {x!r} (use HH:MM, e.g. '06:00')")
                else:
                    times.append(int(m.group(1)) * 60 + int(m.group(2)))
        tol = self._fraction(raw, "tolerance", at, 0.0, 1.0, "must be a share of the value above 0 and at most 1")
        window = self._duration(raw, "window", at)
        if len(self.problems) != before or value is None:
            return None
        return CheckStandard(
            scaled(value, factor),
            tuple(times),
            tol if tol is not None else 0.1,
            window if window is not None else CHECK_WINDOW_NS,
        )

    def _drift(self, raw: object, at: tuple[str, ...], pid: str, in_station: bool) -> DriftSpec | None:
        """`drift = { against = ["nuomitan", "temp"], tolerance = 0.15, window = "24h", learn = "7d" }`. A
        reference that is not a parameter id must be a station (checked with the stations, see
        StationChecker); outside a station only co-located parameters can be named."""
        if raw is None:
            return None
        name = dotted(at)
        if not isinstance(raw, dict):
            self._add(self._at(*at), f'{name} must be a table {{ against = "station-or-parameter", tolerance = 0.15 }}')
            return None
        before = len(self.problems)
        self._unknown_keys(raw, _DRIFT_KEYS, at)
        against = raw.get("against")
        names = [against] if isinstance(against, str) else against
        if not isinstance(names, list) or not names or not all(isinstance(x, str) and x for x in names):
            self._add(
                self._at(*at, "against") if "against" in raw else self._at(*at),
                f"{name}.against must be a station id (a neighbour) or a parameter id (co-located), or a list of them",
            )
            return None
        for i, ref in enumerate(names):
            where = self._at(*at, "against", str(i)) if isinstance(against, list) else self._at(*at, "against")
            if ref == pid:
                self._add(where, f"{name}.against: '{ref}' is the parameter itself (name a neighbour station)")
            elif ref not in self.catalogue and not in_station:
                self._add(
                    where,
                    f"{name}.against: unknown parameter id '{ref}' (a neighbour station can only be named in "
                    "[stations.<id>.instruments.<parameter>])",
                )
        tol = self._fraction(raw, "tolerance", at, 0.0, 1.0, "must be a share above 0 and at most 1")
        window = self._duration(raw, "window", at)
        learn = self._duration(raw, "learn", at)
        if len(self.problems) != before:
            return None
        return DriftSpec(
            tuple(dict.fromkeys(names)),
            tol if tol is not None else 0.15,
            window if window is not None else DRIFT_WINDOW_NS,
            learn if learn is not None else DRIFT_LEARN_NS,
        )

    def _screen_settings(self, raw: Mapping[str, Any], here: tuple[str, ...]) -> ScreenSettings:
        """The statistical screens shared by [screen] and [instruments.<p>]."""
        flat = self._positive_int(raw, "flatline", here, least=2)
        window = self._positive_int(raw, "spike_window", here, least=3)
        mads = self._fraction(raw, "spike_mads", here, 0.0, math.inf, "must be a positive number of MADs")
        floor: float | None = None
        if "spike_floor" in raw:
            floor = self._number(raw["spike_floor"], (*here, "spike_floor"), f"{dotted(here)}.spike_floor", False)
        gap: float | None = None
        if "gap_factor" in raw:
            gap = self._number(raw["gap_factor"], (*here, "gap_factor"), f"{dotted(here)}.gap_factor", False)
            if gap is not None and 0 < gap <= 1:
                self._add(
                    self._at(*here, "gap_factor"),
                    f"{dotted(here)}.gap_factor: must be above 1 (intervals of silence), or 0 to switch it off",
                )
                gap = None
        run = self._positive_int(raw, "below_dl_run", here, least=0)
        maint = self._duration(raw, "maintenance_max", here, zero_ok=True)
        prob: float | None = None
        if "run_probability" in raw:
            value = raw["run_probability"]
            if not is_number(value) or not math.isfinite(value) or not 0 <= value < 0.5:
                self._add(
                    self._at(*here, "run_probability"),
                    f"{dotted((*here, 'run_probability'))}: must be a probability from 0 (off) to below 0.5, "
                    f"e.g. 1e-5, not {value!r}",
                )
            else:
                prob = float(value)
        return ScreenSettings(flat, window, mads, floor, gap, run, maint, prob)

    def _screen(self, f: SourceFile, raw: Mapping[str, Any]) -> ScreenSpec | None:
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
        shipped = raw.get("instrument_defaults", True)
        if not isinstance(shipped, bool):
            self._add(self._at("screen", "instrument_defaults"), "screen.instrument_defaults must be true or false")
        if len(self.problems) != before:
            return None
        return ScreenSpec(
            flags.get("ignore_flags", DEFAULT_IGNORE_FLAGS),
            flags.get("suspect_flags", DEFAULT_SUSPECT_FLAGS),
            flags.get("below_dl_flags", DEFAULT_DL_FLAGS),
            settings,
            {k: f.where("screen", k) for k in raw},
            bool(shipped),
        )
