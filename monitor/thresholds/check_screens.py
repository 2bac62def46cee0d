"""Checking the screens: `[screen]` (flags and the statistical screens of every series) and the
`[instruments.<parameter>]` tables, at the top level or in a station."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from monitor.thresholds.checking import Checker, SourceFile, dotted, is_number, scaled
from monitor.thresholds.model import (
    DEFAULT_DL_FLAGS,
    DEFAULT_IGNORE_FLAGS,
    DEFAULT_SUSPECT_FLAGS,
    InstrumentSettings,
    ScreenSettings,
    ScreenSpec,
)

_SCREEN_ONLY_KEYS = ("ignore_flags", "suspect_flags", "below_dl_flags", "note")
_INSTRUMENT_SHARED_KEYS = ("flatline", "spike_window", "spike_mads", "spike_floor")
_INSTRUMENT_KEYS = ("range", "detection_limit", "unit", *_INSTRUMENT_SHARED_KEYS, "note")


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
            if len(self.problems) == before:
                floor = screens.spike_floor
                out[pid] = InstrumentSettings(
                    screens.flatline,
                    screens.spike_window,
                    screens.spike_mads,
                    None if floor is None else scaled(floor, factor),
                    bounds,
                    detection,
                )
        return out

    def _screen_settings(self, raw: Mapping[str, Any], here: tuple[str, ...]) -> ScreenSettings:
        """The statistical screens shared by [screen] and [instruments.<p>]."""
        flat = self._positive_int(raw, "flatline", here, least=2)
        window = self._positive_int(raw, "spike_window", here, least=3)
        mads = self._fraction(raw, "spike_mads", here, 0.0, math.inf, "must be a positive number of MADs")
        floor: float | None = None
        if "spike_floor" in raw:
            floor = self._number(raw["spike_floor"], (*here, "spike_floor"), f"{dotted(here)}.spike_floor", False)
        return ScreenSettings(flat, window, mads, floor)

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
        if len(self.problems) != before:
            return None
        return ScreenSpec(
            flags.get("ignore_flags", DEFAULT_IGNORE_FLAGS),
            flags.get("suspect_flags", DEFAULT_SUSPECT_FLAGS),
            flags.get("below_dl_flags", DEFAULT_DL_FLAGS),
            settings,
            {k: f.where("screen", k) for k in raw},
        )
