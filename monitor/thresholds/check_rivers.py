"""Checking `[rivers.<name>]`: the reaches (contiguous, in river order, a positive speed each), dams and
tributaries of a river, and that every station on that river lies inside its reaches.

Why strict: a forecast turns these figures into arrival times an intake acts on; a gap between reaches or a
station outside them would silently fall back to a guessed speed.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Mapping
from typing import Any

from monitor.thresholds.checking import Checker, SourceFile, dotted, is_number, suggest
from monitor.thresholds.model import Problem, Station
from monitor.thresholds.notation import fmt_number
from monitor.thresholds.rivers import REACH_KINDS, Dam, Reach, RiverDescription, Treatment, Tributary

_RIVER_KEYS = ("name_zh", "flow_m3s", "source", "note", "reaches", "dams", "tributaries", "treatments")
_REACH_KEYS = (
    "name",
    "from_km",
    "to_km",
    "velocity_km_per_day",
    "travel_time",
    "kind",
    "dispersion_km2_per_day",
    "decay_per_day",
    "velocity_by_flow",
    "name_zh",
    "note",
)
_DAM_KEYS = ("km", "name", "note")
_TRIBUTARY_KEYS = ("km", "name", "name_zh", "flow_m3s", "note")
_TREATMENT_KEYS = ("km", "name", "removal", "from", "until", "planned", "note")
_NS_PER_DAY = 86_400 * 1_000_000_000
_DEFAULT_DISPERSION = 16.0


class RiverChecker(Checker):
    """Checks a file's rivers (names unique across files) and builds a `RiverDescription` for each valid one."""

    def check(self, f: SourceFile, seen: dict[str, str]) -> dict[str, RiverDescription]:
        self._f = f
        rivers = f.data.get("rivers")
        if rivers is None:
            return {}
        if not isinstance(rivers, dict):
            self._add(self._at("rivers"), "'rivers' must be a table of [rivers.<name>] tables")
            return {}
        out: dict[str, RiverDescription] = {}
        for name, raw in rivers.items():
            built = self._river(f, name, raw, seen)
            if built is not None:
                out[name] = built
        return out

    def check_stations(self, rivers: Mapping[str, RiverDescription], stations: Mapping[str, Station]) -> None:
        """Every station of a described river has a river_km inside its reaches (else no travel time)."""
        for sid, st in stations.items():
            river = rivers.get(st.river)
            if river is None:
                continue
            path, line = _split(st.lines.get("river_km") or st.lines.get("river") or st.origin)
            if st.river_km is None:
                self.problems.append(
                    Problem(path, line, f"stations.{sid}: no river_km, but [rivers.{st.river}] describes its river")
                )
            elif not river.from_km <= st.river_km <= river.to_km:
                self.problems.append(
                    Problem(
                        path,
                        line,
                        f"stations.{sid}.river_km {fmt_number(st.river_km)} is outside the reaches of "
                        f"[rivers.{st.river}] ({fmt_number(river.from_km)} to {fmt_number(river.to_km)} km, "
                        f"{river.origin})",
                    )
                )

    # ---- one river

    def _river(self, f: SourceFile, name: str, raw: object, seen: dict[str, str]) -> RiverDescription | None:
        here = ("rivers", name)
        line = self._at(*here)
        if not isinstance(raw, dict):
            self._add(line, f"rivers.{name} must be a table")
            return None
        before = len(self.problems)
        if name in seen:
            self._add(line, f"rivers.{name}: river '{name}' is already described at {seen[name]}")
        else:
            seen[name] = f"{f.path}:{line}"
        self._unknown_keys(raw, _RIVER_KEYS, here)
        for key in ("name_zh", "source", "note"):
            self._string(raw, key, here)
        flow = self._positive(raw, "flow_m3s", here)
        reaches = self._reaches(raw, here, flow)
        span = (reaches[0].from_km, reaches[-1].to_km) if reaches else None
        dams = tuple(Dam(km, nm) for km, nm, _, _ in self._points(raw, "dams", _DAM_KEYS, here, span, with_flow=False))
        tributaries = tuple(
            Tributary(km, nm, q, zh)
            for km, nm, q, zh in self._points(raw, "tributaries", _TRIBUTARY_KEYS, here, span, with_zh=True)
        )
        treatments = self._treatments(raw, here, span)
        if tributaries and flow is None and "flow_m3s" not in raw:
            self._add(line, f"rivers.{name}: flow_m3s is needed to dilute by the tributaries' flows")
        if len(self.problems) != before or not reaches:
            return None
        return RiverDescription(
            name,
            flow or 0.0,
            reaches,
            tuple(sorted(dams, key=lambda d: d.km)),
            tuple(sorted(tributaries, key=lambda t: t.km)),
            str(raw.get("source", "")),
            f.where(*here),
            str(raw.get("name_zh", "")),
            tuple(sorted(treatments, key=lambda t: (t.km, t.from_ns))),
        )

    def _treatments(
        self, raw: Mapping[str, Any], here: tuple[str, ...], span: tuple[float, float] | None
    ) -> list[Treatment]:
        """`[[rivers.<name>.treatments]]`: dosing points, each at a km inside the reaches, with a removal in
        [0, 1) and a running time (`from` and `until`: TOML date-times with their offset); `planned`, when
        the bureau knew it was coming (at or before `from`; absent: known once it runs)."""
        table = raw.get("treatments")
        if table is None:
            return []
        if not isinstance(table, list) or not all(isinstance(p, dict) for p in table):
            self._add(
                self._at(*here, "treatments"), f"{dotted((*here, 'treatments'))} must be [[...treatments]] tables"
            )
            return []
        out: list[Treatment] = []
        for i, p in enumerate(table):
            at = (*here, "treatments", str(i))
            before = len(self.problems)
            self._unknown_keys(p, _TREATMENT_KEYS, at)
            self._string(p, "note", at)
            km = self._km(p, "km", at, required=True)
            nm = p.get("name")
            if not isinstance(nm, str) or not nm.strip():
                self._add(self._at(*at, "name") if "name" in p else self._at(*at), f"{dotted(at)}: needs a name")
            removal = p.get("removal")
            if not is_number(removal) or not 0.0 <= float(removal) < 1.0:
                self._add(
                    self._at(*at, "removal") if "removal" in p else self._at(*at),
                    f"{dotted(at)}.removal: the share of the load removed, at least 0 and under 1, not {removal!r}",
                )
            start, end = self._moment(p, "from", at), self._moment(p, "until", at)
            if start is not None and end is not None and not start < end:
                self._add(self._at(*at, "until"), f"{dotted(at)}: until is not after from")
            if km is not None and span is not None and not span[0] <= km <= span[1]:
                self._add(
                    self._at(*at, "km"),
                    f"{dotted(at)}.km {fmt_number(km)} is outside the reaches "
                    f"({fmt_number(span[0])} to {fmt_number(span[1])} km)",
                )
            planned = self._moment(p, "planned", at) if "planned" in p else None
            if planned is not None and start is not None and planned > start:
                self._add(
                    self._at(*at, "planned"),
                    f"{dotted(at)}.planned: when the dosing was known to be coming, at or before from",
                )
            if len(self.problems) == before and km is not None and start is not None and end is not None:
                out.append(Treatment(km, str(nm), float(removal), start, end, planned))
        return out

    def _moment(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> int | None:
        """A TOML offset date-time (2005-12-22T00:00:00+08:00) as epoch ns; a problem when missing or local."""
        value = raw.get(key)
        if not isinstance(value, dt.datetime) or value.tzinfo is None:
            self._add(
                self._at(*here, key) if key in raw else self._at(*here),
                f"{dotted((*here, key))}: needs a date-time with its offset (2005-12-22T00:00:00+08:00), not {value!r}",
            )
            return None
        return int(value.timestamp()) * 10**9

    def _reaches(self, raw: Mapping[str, Any], here: tuple[str, ...], flow: float | None) -> tuple[Reach, ...]:
        table = raw.get("reaches")
        if table is None:
            self._add(self._at(*here), f"{dotted(here)}: no [[{dotted(here)}.reaches]] (a river needs its reaches)")
            return ()
        if not isinstance(table, list) or not table or not all(isinstance(r, dict) for r in table):
            self._add(self._at(*here, "reaches"), f"{dotted(here)}.reaches must be [[...reaches]] tables")
            return ()
        out: list[Reach] = []
        prev: tuple[int, Reach] | None = None
        for i, r in enumerate(table):
            at = (*here, "reaches", str(i))
            reach = self._reach(r, at, flow)
            if reach is None:
                prev = None
                continue
            if prev is not None:
                j, up = prev
                if reach.from_km < up.from_km:
                    self._add(
                        self._at(*at, "from_km"),
                        f"{dotted(at)}: from_km {fmt_number(reach.from_km)} is upstream of "
                        f"{dotted((*here, 'reaches', str(j)))} (reaches go in river order, upstream first)",
                    )
                elif not math.isclose(reach.from_km, up.to_km, abs_tol=1e-9):
                    what = "a gap" if reach.from_km > up.to_km else "an overlap"
                    self._add(
                        self._at(*at, "from_km"),
                        f"{dotted(at)}: from_km {fmt_number(reach.from_km)} leaves {what} after "
                        f"{dotted((*here, 'reaches', str(j)))}, which ends at {fmt_number(up.to_km)} "
                        "(reaches must be contiguous)",
                    )
            prev = (i, reach)
            out.append(reach)
        return tuple(out) if len(out) == len(table) else ()

    def _reach(self, r: Mapping[str, Any], at: tuple[str, ...], flow: float | None) -> Reach | None:
        before = len(self.problems)
        name = dotted(at)
        self._unknown_keys(r, _REACH_KEYS, at)
        for key in ("name", "name_zh", "note"):
            self._string(r, key, at)
        lo = self._km(r, "from_km", at, required=True)
        hi = self._km(r, "to_km", at, required=True)
        if lo is not None and hi is not None and not lo < hi:
            self._add(self._at(*at, "to_km"), f"{name}: to_km {fmt_number(hi)} is not below from_km {fmt_number(lo)}")
        kind = r.get("kind", "free")
        if kind not in REACH_KINDS:
            shown = kind if isinstance(kind, str) else repr(kind)
            self._add(
                self._at(*at, "kind"),
                f"{name}.kind: unknown kind '{shown}' (pool or free){suggest(str(kind), REACH_KINDS)}",
            )
        dispersion = self._non_negative(r, "dispersion_km2_per_day", at)
        decay = self._non_negative(r, "decay_per_day", at)
        table = self._velocity_table(r, at)
        velocity = self._positive(r, "velocity_km_per_day", at)
        travel_ns = self._duration(r, "travel_time", at)
        given = [k for k in ("velocity_km_per_day", "travel_time") if k in r]
        if len(given) == 2:
            self._add(self._at(*at, "travel_time"), f"{name}: give velocity_km_per_day or travel_time, not both")
        elif not given and "velocity_by_flow" not in r:
            self._add(self._at(*at), f"{name}: no speed (velocity_km_per_day, travel_time or velocity_by_flow)")
        if len(self.problems) != before or lo is None or hi is None:
            return None
        if travel_ns is not None:
            velocity = (hi - lo) / (travel_ns / _NS_PER_DAY)
        if velocity is None:  # the table alone: the speed at the river's described flow
            if flow is None:
                self._add(
                    self._at(*at, "velocity_by_flow"), f"{name}: velocity_by_flow alone needs the river's flow_m3s"
                )
                return None
            velocity = Reach(lo, hi, 1.0, velocity_by_flow=table).velocity(flow)
        return Reach(
            lo,
            hi,
            velocity,
            str(kind),
            _DEFAULT_DISPERSION if dispersion is None else dispersion,
            decay or 0.0,
            table,
            str(r.get("name", "")),
            str(r.get("name_zh", "")),
        )

    def _velocity_table(self, r: Mapping[str, Any], at: tuple[str, ...]) -> tuple[tuple[float, float], ...]:
        if "velocity_by_flow" not in r:
            return ()
        value = r["velocity_by_flow"]
        name = dotted((*at, "velocity_by_flow"))
        line = self._at(*at, "velocity_by_flow")
        pairs = (
            value
            if isinstance(value, list)
            and value
            and all(
                isinstance(p, list) and len(p) == 2 and all(is_number(x) and math.isfinite(x) for x in p) for p in value
            )
            else None
        )
        if pairs is None:
            self._add(line, f"{name} must be [[flow_m3s, km_per_day], ...]")
            return ()
        out = tuple((float(q), float(v)) for q, v in pairs)
        if any(q < 0 or v <= 0 for q, v in out):
            self._add(line, f"{name}: flows must be at least 0 and speeds more than 0")
            return ()
        if any(b[0] <= a[0] for a, b in itertools.pairwise(out)):
            self._add(line, f"{name}: flows must be in ascending order, each once")
            return ()
        return out

    def _points(
        self,
        raw: Mapping[str, Any],
        key: str,
        allowed: tuple[str, ...],
        here: tuple[str, ...],
        span: tuple[float, float] | None,
        with_flow: bool = True,
        with_zh: bool = False,
    ) -> list[tuple[float, str, float, str]]:
        """Dams or tributaries: (km, name, flow, name_zh), each at a km inside the reaches."""
        table = raw.get(key)
        if table is None:
            return []
        if not isinstance(table, list) or not all(isinstance(p, dict) for p in table):
            self._add(self._at(*here, key), f"{dotted((*here, key))} must be [[...{key}]] tables")
            return []
        out: list[tuple[float, str, float, str]] = []
        for i, p in enumerate(table):
            at = (*here, key, str(i))
            before = len(self.problems)
            self._unknown_keys(p, allowed, at)
            self._string(p, "note", at)
            if with_zh:
                self._string(p, "name_zh", at)
            km = self._km(p, "km", at, required=True)
            nm = p.get("name")
            if not isinstance(nm, str) or not nm.strip():
                self._add(self._at(*at, "name") if "name" in p else self._at(*at), f"{dotted(at)}: needs a name")
            q = self._positive(p, "flow_m3s", at) if with_flow else 0.0
            if with_flow and "flow_m3s" not in p:
                self._add(self._at(*at), f"{dotted(at)}: needs flow_m3s (its flow, for the dilution below it)")
            if km is not None and span is not None and not span[0] <= km <= span[1]:
                self._add(
                    self._at(*at, "km"),
                    f"{dotted(at)}.km {fmt_number(km)} is outside the reaches "
                    f"({fmt_number(span[0])} to {fmt_number(span[1])} km)",
                )
            if len(self.problems) == before and km is not None and isinstance(nm, str):
                out.append((km, nm, q or 0.0, str(p.get("name_zh", ""))))
        return out

    # ---- single values

    def _km(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...], required: bool = False) -> float | None:
        if key not in raw:
            if required:
                self._add(self._at(*here), f"{dotted(here)}: missing '{key}'")
            return None
        value = raw[key]
        if not is_number(value) or not math.isfinite(value):
            self._add(self._at(*here, key), f"{dotted((*here, key))} must be a finite number (km), not {value!r}")
            return None
        return float(value)

    def _positive(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> float | None:
        if key not in raw:
            return None
        value = raw[key]
        if not is_number(value) or not math.isfinite(value) or value <= 0:
            self._add(self._at(*here, key), f"{dotted((*here, key))}: must be a number more than 0, not {value!r}")
            return None
        return float(value)

    def _non_negative(self, raw: Mapping[str, Any], key: str, here: tuple[str, ...]) -> float | None:
        if key not in raw:
            return None
        value = raw[key]
        if not is_number(value) or not math.isfinite(value) or value < 0:
            self._add(self._at(*here, key), f"{dotted((*here, key))}: must be a number at least 0, not {value!r}")
            return None
        return float(value)


def _split(where: str) -> tuple[str, int]:
    """'path:line' back into its parts (a path may itself hold ':')."""
    path, _, line = where.rpartition(":")
    return (path, int(line)) if line.isdigit() and path else (where, 1)
