"""A scenario: a river, what went into it, its stations and their instruments, turned into readings.

Why one builder for every scenario: an incident and a clean baseline differ only in their inputs (a spill
or none, which faults), so the path from the truth to the readings is the same code, and so is the ground
truth. Everything random comes from numpy generators seeded by (seed, component, station, instrument), so
the same seed gives the same readings, and a change to one instrument does not reshuffle the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property

import numpy as np

from monitor.domain.reading import Reading
from simulators.background import clean_series, rain
from simulators.faults import KINDS, Fault, FaultRates, applicable, apply, one, plan
from simulators.groundtruth import GroundTruth, Truth, episodes, gb3838
from simulators.river import Release, River, Transport
from simulators.sensors import Analyser

NS_PER_MIN = 60_000_000_000
NS_PER_DAY = 1440 * NS_PER_MIN
TRUTH_STEP_NS = 5 * NS_PER_MIN  # the grid of the truth; every cadence is a multiple of it
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimStation:
    """A monitoring station on the simulated river; river_km is the distance along the river's own chainage."""

    id: str
    name: str
    river_km: float


@dataclass(frozen=True)
class Spill:
    """A pollutant released into a river: its plume adds to the clean value of `parameter` at each station."""

    parameter: str
    river: River
    releases: tuple[Release, ...]
    dx_km: float = 1.0


@dataclass(frozen=True)
class Setting:
    """Everything a scenario is made of. `levels` gives, per parameter, the range a station's clean level is
    drawn from (temp: offset from the seasonal mean in °C; do: fraction of saturation)."""

    name: str
    stations: tuple[SimStation, ...]
    start_ns: int
    end_ns: int
    analysers: tuple[Analyser, ...]
    levels: Mapping[str, tuple[float, float]]
    rain_per_week: float = 0.5
    spill: Spill | None = None
    faults: FaultRates = field(default_factory=FaultRates)
    every_kind: bool = False  # make sure each fault kind with a rate strikes at least once

    def __post_init__(self) -> None:
        if self.end_ns <= self.start_ns:
            raise ValueError("a scenario must end after it starts")
        for a in self.analysers:
            if (a.every_min * NS_PER_MIN) % TRUTH_STEP_NS:
                raise ValueError(f"{a.parameter}: cadence must be a multiple of {TRUTH_STEP_NS // NS_PER_MIN} min")
        needed = {a.parameter for a in self.analysers} | ({self.spill.parameter} if self.spill else set())
        missing = needed - set(self.levels)
        if missing:
            raise ValueError(f"no clean level for {', '.join(sorted(missing))}")


@dataclass(frozen=True)
class Outcome:
    """What a scenario computed: the readings as sent, the truth behind them, the faults injected."""

    readings: tuple[Reading, ...]
    truth: Truth
    faults: tuple[Fault, ...]
    transport: Transport | None


def simulate(setting: Setting, seed: int) -> Outcome:
    """Truth (clean river plus plume), then each instrument's readings with its faults; deterministic."""
    if seed < 0:
        raise ValueError("seed must be >= 0")
    steps = -(-(setting.end_ns - setting.start_ns) // TRUTH_STEP_NS)
    times = setting.start_ns + np.arange(steps, dtype=np.int64) * TRUTH_STEP_NS
    weather = rain(np.random.default_rng([seed, 1]), setting.start_ns, setting.end_ns, setting.rain_per_week)
    spill = setting.spill
    transport = (
        None
        if spill is None
        else spill.river.transport(
            spill.releases,
            setting.start_ns,
            TRUTH_STEP_NS,
            steps,
            [s.river_km for s in setting.stations],
            dx_km=spill.dx_km,
        )
    )
    parameters = sorted({a.parameter for a in setting.analysers} | ({spill.parameter} if spill else set()))
    series: dict[tuple[str, str], np.ndarray] = {}
    for i, station in enumerate(setting.stations):
        rng = np.random.default_rng([seed, 2, i])
        levels = {p: float(rng.uniform(*setting.levels[p])) for p in sorted(setting.levels)}
        clean = clean_series(parameters, levels, times, weather, rng)
        if spill is not None and transport is not None:
            clean[spill.parameter] = clean[spill.parameter] + transport.conc[i]
        for p, values in clean.items():
            series[(station.id, p)] = values
    truth = Truth(setting.start_ns, TRUTH_STEP_NS, series)

    faults = _faults(setting, seed)
    readings: list[Reading] = []
    for i, station in enumerate(setting.stations):
        for j, a in enumerate(setting.analysers):
            rng = np.random.default_rng([seed, 4, i, j])
            ts = np.arange(setting.start_ns, setting.end_ns, a.every_min * NS_PER_MIN, dtype=np.int64)
            measured = a.measure(truth.at(station.id, a.parameter, ts), rng)
            mine = [f for f in faults if (f.station, f.parameter) == (station.id, a.parameter)]
            ts, values, flags = apply(a, mine, ts, measured)
            readings.extend(
                Reading(station.id, a.parameter, t, round(v, a.decimals), fl)
                for t, v, fl in zip(ts.tolist(), values.tolist(), flags, strict=True)
            )
    readings.sort(key=lambda r: (r.ts_ns, r.station, r.parameter))
    return Outcome(tuple(readings), truth, tuple(faults), transport)


def _faults(setting: Setting, seed: int) -> list[Fault]:
    """Every analyser's faults; with every_kind, one more of each kind that the dice left out."""
    faults: list[Fault] = []
    for i, station in enumerate(setting.stations):
        for j, a in enumerate(setting.analysers):
            rng = np.random.default_rng([seed, 3, i, j])
            faults.extend(plan(rng, station.id, a, setting.start_ns, setting.end_ns, setting.faults))
    if setting.every_kind:
        rng = np.random.default_rng([seed, 5])
        for kind in KINDS:
            if setting.faults.per_30_days.get(kind, 0.0) <= 0 or any(f.kind == kind for f in faults):
                continue
            fits = [(s, a) for s in setting.stations for a in setting.analysers if applicable(kind, a)]
            if fits:
                s, a = fits[int(rng.integers(len(fits)))]
                faults.append(
                    one(rng, s.id, a, kind, setting.start_ns, setting.end_ns, setting.faults.unflagged_calibration)
                )
    return faults


@dataclass(frozen=True)
class Scenario:
    """A named, reproducible scenario; the readings are computed on first use and kept."""

    name: str
    stations: tuple[SimStation, ...]
    start_ns: int
    end_ns: int
    seed: int
    setting: Setting = field(repr=False, compare=False)

    @classmethod
    def of(cls, setting: Setting, seed: int) -> Scenario:
        return cls(setting.name, setting.stations, setting.start_ns, setting.end_ns, seed, setting)

    @cached_property
    def outcome(self) -> Outcome:
        return simulate(self.setting, self.seed)

    def readings(self) -> list[Reading]:
        """All readings, sorted by ts_ns, station, parameter: the order publishers and CSV writers expect."""
        return list(self.outcome.readings)

    def truth(self) -> Truth:
        return self.outcome.truth

    def faults(self) -> tuple[Fault, ...]:
        return self.outcome.faults

    def ground_truth(self) -> GroundTruth:
        """When the true values crossed each GB 3838-2002 class limit and came back, and the injected faults."""
        return GroundTruth(
            scenario=self.name,
            seed=self.seed,
            start_ns=self.start_ns,
            end_ns=self.end_ns,
            step_ns=self.truth().step_ns,
            standard=gb3838().id,
            stations=[{"id": s.id, "name": s.name, "river_km": s.river_km} for s in self.stations],
            episodes=tuple(episodes(self.truth(), gb3838())),
            faults=self.faults(),
        )


def start_ns(start: datetime | None, default_ns: int) -> int:
    """A scenario's start: `start` (timezone-aware) or the scenario's own date."""
    if start is None:
        return default_ns
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("start must carry a UTC offset, e.g. 2012-01-03T00:00:00+08:00")
    return (start - _EPOCH) // timedelta(microseconds=1) * 1000


def after(start: int, days: float) -> int:
    """The time `days` days after start_ns, in integer nanoseconds."""
    return start + round(days * NS_PER_DAY)
