"""`ThresholdSet`: everything loaded, and the look-ups the rules make on it per series."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.domain.params import SHIPPED, Catalogue, resolve
from monitor.thresholds.limits import LimitSpec, item_spec, override_spec
from monitor.thresholds.model import (
    AlertPolicy,
    ClassPolicy,
    InstrumentSettings,
    Item,
    Limit,
    RuleSpec,
    Screening,
    ScreenSettings,
    ScreenSpec,
    Standard,
    Station,
)
from monitor.thresholds.rivers import RiverDescription
from monitor.thresholds.shipped import instrument_defaults


@dataclass
class ThresholdSet:
    """Everything loaded: the standards in precedence order, the stations by id, the rules and policies."""

    standards: list[Standard] = field(default_factory=list)
    stations: dict[str, Station] = field(default_factory=dict)
    rules: list[RuleSpec] = field(default_factory=list)
    classes: ClassPolicy = field(default_factory=ClassPolicy)
    screen: ScreenSpec = field(default_factory=ScreenSpec)
    instruments: dict[str, InstrumentSettings] = field(default_factory=dict)  # [instruments.<p>]
    # the shipped thresholds/instruments.toml, beneath everything the files set (unless [screen] says not)
    shipped_instruments: dict[str, InstrumentSettings] = field(default_factory=lambda: dict(instrument_defaults()))
    alerts: AlertPolicy = field(default_factory=AlertPolicy)
    paths: list[str] = field(default_factory=list)
    catalogue: Catalogue = SHIPPED  # the shipped parameters plus those the files declare ([parameters.<id>])
    rivers: dict[str, RiverDescription] = field(default_factory=dict)  # [rivers.<name>], by the stations' `river`
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
            return override_spec(pid, override, item, klass)
        if item is None or std is None:
            return None
        return item_spec(item, std, klass, lake, st)

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

    def screen_layers(self, station: str, parameter: str, shipped: bool = True) -> list[ScreenSettings]:
        """The tables that set a series' screens, the most specific last: the shipped instrument defaults
        (unless `[screen] instrument_defaults = false`, or `shipped` is False), [screen], [instruments.<p>],
        the station's instruments.<p> (those it has)."""
        layers: list[ScreenSettings] = []
        if shipped and self.screen.instrument_defaults and parameter in self.shipped_instruments:
            layers.append(self.shipped_instruments[parameter])
        layers.append(self.screen.defaults)
        if parameter in self.instruments:
            layers.append(self.instruments[parameter])
        st = self.stations.get(station)
        if st is not None and parameter in st.instruments:
            layers.append(st.instruments[parameter])
        return layers

    def screening(self, station: str, parameter: str) -> Screening:
        """The screens that apply to a series, every default filled in."""
        st = self.stations.get(station)
        return Screening.of(self.screen_layers(station, parameter), st.timezone if st is not None else "")

    def dependencies(self) -> set[str]:
        """Parameters that other parameters' limits depend on (e.g. hardness for the EU cadmium EQS)."""
        return {it.depends_on for s in self.standards for it in s.items.values() if it.depends_on}
