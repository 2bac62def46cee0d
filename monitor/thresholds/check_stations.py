"""Checking `[stations.<id>]`: a station's facts, its standards, local limits, expected intervals, assumed
values and its own instrument tables."""

from __future__ import annotations

import math
import re
import zoneinfo
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from monitor.domain.params import SHIPPED, Catalogue
from monitor.thresholds.check_screens import ScreenChecker
from monitor.thresholds.checking import Problem, SourceFile, dotted, is_number, scaled, suggest
from monitor.thresholds.model import Override, Station
from monitor.thresholds.notation import fmt_number

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
    "mn",
    "pw_env",
    "pw_file",
    "pw",
)
_WATER_BODY_ALIASES = {"river": "river", "lake": "lake", "reservoir": "lake"}  # GB 3838 groups 湖、库 together
_MN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_OVERRIDE_KEYS = ("limit", "kind", "low", "high", "unit", "source")


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


class StationChecker(ScreenChecker):
    """Checks a file's stations (ids unique across files) and builds a `Station` for each valid one."""

    def __init__(self, problems: list[Problem], catalogue: Catalogue = SHIPPED) -> None:
        super().__init__(problems, catalogue)
        self._mns: dict[str, str] = {}  # HJ 212 MN -> path:line of its station, across the files loaded together

    def check(
        self, f: SourceFile, known_classes: Sequence[str], seen: dict[str, str], standard_ids: Sequence[str]
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
        self._drift_references(f, seen)

    def _drift_references(self, f: SourceFile, seen: Mapping[str, str]) -> None:
        """A drift reference that is not a parameter names a station: one of this file or an earlier one."""
        for sid, st in f.stations.items():
            for pid, inst in st.instruments.items():
                if inst.drift is None:
                    continue
                for i, ref in enumerate(inst.drift.against):
                    at = ("stations", sid, "instruments", pid, "drift", "against")
                    listed = isinstance(f.data["stations"][sid]["instruments"][pid]["drift"]["against"], list)
                    line = self._at(*at, str(i)) if listed else self._at(*at)
                    if ref == sid:
                        self._add(line, f"{dotted(at)}: '{ref}' is this station (name a neighbour)")
                    elif ref not in self.catalogue and ref not in seen:
                        self._add(
                            line,
                            f"{dotted(at)}: unknown station or parameter '{ref}'"
                            f"{suggest(ref, [*seen, *self.catalogue])}",
                        )

    def _station(
        self,
        f: SourceFile,
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
        if km is not None and (not is_number(km) or not math.isfinite(km)):
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
        mn, pw_env, pw_file = self._hj212_logger(f, raw, here)
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
            mn,
            pw_env,
            pw_file,
        )

    def _hj212_logger(self, f: SourceFile, raw: Mapping[str, Any], here: tuple[str, ...]) -> tuple[str, str, str]:
        """The station's HJ 212 data logger: its MN, unique across stations (the MN is how a packet names its
        station), and its password's source, which must be given (the PW is all that authenticates a logger)
        and must not be inline (station files are shared and committed)."""
        name = dotted(here)
        if "pw" in raw:
            self._add(
                self._at(*here, "pw"),
                f"{name}.pw: a password is not written in a station file; use pw_env (an environment variable) "
                "or pw_file (a file holding it)",
            )
        mn, pw_env, pw_file = raw.get("mn"), raw.get("pw_env"), raw.get("pw_file")
        if mn is None:
            for key in ("pw_env", "pw_file"):
                if key in raw:
                    self._add(self._at(*here, key), f"{name}.{key} is for an HJ 212 logger: set mn too")
            return "", "", ""
        if not isinstance(mn, str) or not _MN.fullmatch(mn):
            self._add(
                self._at(*here, "mn"),
                f"{name}.mn must be the data logger's MN: 1-64 letters, digits, '-', '_' or '.'",
            )
            return "", "", ""
        where = f.where(*here, "mn")
        if mn in self._mns:
            self._add(self._at(*here, "mn"), f"{name}.mn: MN {mn!r} is already the logger of {self._mns[mn]}")
        else:
            self._mns[mn] = where
        if (pw_env is None) == (pw_file is None):
            self._add(
                self._at(*here, "mn"),
                f"{name}: set exactly one of pw_env and pw_file for the password of the logger {mn!r}",
            )
            return mn, "", ""
        if pw_env is not None:
            if not isinstance(pw_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", pw_env):
                self._add(self._at(*here, "pw_env"), f"{name}.pw_env must name an environment variable")
                return mn, "", ""
            return mn, pw_env, ""
        if not isinstance(pw_file, str) or not pw_file:
            self._add(self._at(*here, "pw_file"), f"{name}.pw_file must be a path")
            return mn, "", ""
        path = Path(pw_file).expanduser()
        return mn, "", str(path if path.is_absolute() else Path(f.path).resolve().parent / path)

    def _coordinates(self, raw: Mapping[str, Any], here: tuple[str, ...]) -> tuple[float, float] | None:
        if "coordinates" not in raw:
            return None
        c = raw["coordinates"]
        if (
            not isinstance(c, list)
            or len(c) != 2
            or not all(is_number(x) and math.isfinite(x) for x in c)
            or not -90 <= c[0] <= 90
            or not -180 <= c[1] <= 180
        ):
            self._add(
                self._at(*here, "coordinates"),
                f"{dotted(here)}.coordinates must be [latitude, longitude] in degrees (-90..90, -180..180)",
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
            self._add(self._at(*here, "standard"), f"{dotted(here)}.standard must be a standard id or a list of them")
            return ()
        if standard_ids:  # a station file checked on its own cannot know the standards
            for n in names:
                if n not in standard_ids:
                    self._add(
                        self._at(*here, "standard"),
                        f"{dotted(here)}.standard: no standard '{n}' is loaded "
                        f"(loaded: {', '.join(standard_ids)}){suggest(n, standard_ids)}",
                    )
        return tuple(names)

    def _overrides(self, f: SourceFile, raw: Mapping[str, Any], here: tuple[str, ...]) -> dict[str, Override]:
        table = raw.get("limits")
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here, "limits"), f"{dotted(here)}.limits must be a table of parameter = limit")
            return {}
        out: dict[str, Override] = {}
        for pid, spec in table.items():
            at = (*here, "limits", pid)
            if not self._parameter_key(pid, at):
                continue
            name = dotted(at)
            if is_number(spec):
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
                    self._add(self._at(*at, "low"), f"{name}: low {fmt_number(lo)} is not below high {fmt_number(hi)}")
                if len(self.problems) == before and lo is not None and hi is not None:
                    out[pid] = Override(
                        pid,
                        "range",
                        scaled(hi, factor),
                        scaled(lo, factor),
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
                    pid, str(kind), scaled(num, factor), None, str(spec.get("source", "")), f.where(*at)
                )
        return out

    def _per_parameter_durations(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> dict[str, int]:
        table = raw.get(key)
        if table is None:
            return {}
        if not isinstance(table, dict):
            self._add(self._at(*here, key), f'{dotted((*here, key))} must be a table of parameter = "interval"')
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
            self._add(self._at(*here, "assume"), f"{dotted(here)}.assume must be a table of parameter = value")
            return {}
        out: dict[str, float] = {}
        for pid, v in table.items():
            at = (*here, "assume", pid)
            if self._parameter_key(pid, at):
                num = self._number(v, at, dotted(at), pid == "temp")
                if num is not None:
                    out[pid] = num
        return out
