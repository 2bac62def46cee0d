"""What to do with a series, compiled once per ThresholdSet and shared by every series with the same one.

A plan is station-free (its limits, rules and screening), so 100k series under a few standards hold a few plans,
not 100k. `SeriesState` is the rolling state a plan needs beyond a series' last reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from monitor.domain.params import unit_factor
from monitor.rules.ring import Ring
from monitor.thresholds import LIMIT_RULES, LimitSpec, RuleSpec, Screening, ThresholdSet, specificity


@dataclass(eq=False)
class NoDataRule:
    """One no-data rule of a series or station: silent for more than factor × interval fires."""

    key: str  # alert key ("no_data" or the rule's name)
    interval_ns: int
    factor: float
    severity: str
    origin: str

    @property
    def limit_ns(self) -> int:
        return round(self.interval_ns * self.factor)


@dataclass(eq=False, slots=True)
class Plan:
    """What to do with a series, compiled once from the ThresholdSet (until a reload). Station-free, so that
    every series with the same limits, rules and screening shares one (see `Planner`)."""

    parameter: str
    spec: LimitSpec | None
    limit_rule: RuleSpec | None  # None: the built-in instantaneous rule
    extra: list[RuleSpec]  # mean and rate rules
    no_data: list[NoDataRule]
    listed: bool  # in the station file's `expect`: silent since start-up counts
    screen: Screening  # ThresholdSet.screening: the screens in effect, every default filled in
    ignore: frozenset[str]
    suspect: frozenset[str]
    dl_flags: frozenset[str]
    clear_ratio: float
    clear_hold_ns: int
    lowest: str  # the mildest severity name: the default of rate and no-data alerts
    window_ns: int = 0  # the longest time window of the extra rules
    rates: dict[str, float] = field(default_factory=dict)  # rule name -> rise per hour in the standard unit
    simple: bool = field(init=False)  # may take the fast path (see monitor.rules.fastpath)
    stateful: bool = field(init=False)  # needs a SeriesState (rings, runs) beyond the last reading

    def __post_init__(self) -> None:
        sc = self.screen
        screens = sc.active
        persistence = self.limit_rule is not None and self.limit_rule.kind != "instantaneous"
        self.stateful = persistence or bool(self.extra) or bool(sc.flatline or sc.spike_window) or self.sensors
        self.simple = (
            self.spec is not None
            and not self.spec.depends_on
            and not persistence
            and not self.extra
            and not self.no_data
            and not screens
            and not self.sensors
        )

    @property
    def sensors(self) -> bool:
        """Whether sensor health watches this series (monitor.rules.sensors): every series with a plan, unless
        every sensor screen is switched off."""
        sc = self.screen
        return bool(sc.gap_factor or sc.below_dl_run or sc.maintenance_max_ns or sc.flatline or sc.range or sc.check)

    @property
    def evaluates(self) -> bool:
        return self.spec is not None or any(r.kind in ("rate", "event") for r in self.extra)

    def rule_names(self) -> set[str]:
        """The rules whose runs a series may carry (what a reload keeps of its persistence state)."""
        return {r.name for r in self.extra} | ({self.limit_rule.name} if self.limit_rule else set())


@dataclass(slots=True)
class DriftState:
    """Drift screening of one series (monitor.rules.drift): its accepted readings over the window, and per
    reference the learnt log-ratio. Memory O(window)."""

    own: Ring
    base: list[float]  # per reference: the learnt log(own / reference), NaN until the first full window
    learnt_at: list[int]  # per reference: the time the baseline last moved
    since: int | None = None  # the start of the current drift run
    step_dir: int = 0  # the direction of the last reading's step against the references (0: none)
    stepped: bool = False  # a confirmed step (a front, not a drift): no drift verdict until it agrees again


@dataclass(slots=True)
class SeriesState:
    """Rolling state of one series beyond its last reading (kept in the SeriesTable); only series whose plan
    needs it have one. Memory: O(1) plus the two rings (see Ring)."""

    values: Ring | None = None  # accepted readings, for mean and rate windows
    screen: Ring | None = None  # the last spike_window screened values
    flat_value: float = math.nan
    flat_run: int = 0
    spike_dir_before: int = 0  # the direction of the last screened value's spike (0: none)
    held_dir: int = 0  # the direction of the held reading, when it is a spike
    persist: dict[str, tuple[int, int]] | None = None  # rule name -> (run start ts, run length)
    # held back until the next reading: (ts, value, why: CHECK or SPIKE, the reading before it)
    held: tuple[int, float, int, float] | None = None
    last_ok: float = math.nan  # the last reading that passed screening (a check standard stands out from it)
    # sensor health (monitor.rules.sensors): the start of each run, run lengths, the learnt interval
    range_since: int | None = None
    stuck_since: int | None = None
    maint_since: int | None = None
    dl_since: int | None = None
    dl_run: int = 0
    above_run: int = 0
    dl_armed: bool = False
    interval: int = 0
    last_gap: int = 0
    # learnt rates (monitor.rules.learnt): how often successive values are equal
    eq_hits: int = 0
    eq_pairs: int = 0
    stuck_rate: float = math.nan  # the equal-values rate the current run of equal values is judged by
    # how often a below-DL reading follows a below-DL one, and the rate the current below-DL run is judged by
    dl_hits: int = 0
    dl_pairs: int = 0
    dl_rate: float = math.nan
    sensor_active: int = 0  # bits of monitor.rules.sensors.KINDS active at the end of the last batch
    drift: DriftState | None = None  # only for series with `drift` configured


def spec_key(spec: LimitSpec | None) -> object:
    """Everything of a LimitSpec that evaluation or a message can show (Limit's eq leaves out note, origin, text)."""
    if spec is None:
        return None
    return (
        spec.parameter,
        spec.kind,
        tuple((lim, lim.note, lim.origin, lim.text) for lim in spec.limits),
        spec.step_ns.tobytes(),
        spec.depends_on,
        np.asarray(spec.bounds, dtype=np.float64).tobytes(),
        spec.default,
        spec.assumed,
        spec.origin,
        spec_key(spec.mean),
        spec.mean_window_ns,
    )


class Planner:
    """Compiles the plan of each series under one ThresholdSet and default class, sharing equal plans.

    A reload makes a new Planner: plans never outlive the thresholds they were compiled from.
    """

    def __init__(self, thresholds: ThresholdSet, default_class: str) -> None:
        self.thresholds = thresholds
        self.default_class = default_class
        self._interned: dict[object, Plan] = {}

    def compile(self, station: str, parameter: str) -> Plan | None:
        """The plan of a series; None when nothing evaluates it (no limit, no rule, not expected)."""
        t = self.thresholds
        spec = t.spec(station, parameter, self.default_class)
        rules = t.rules_for(station, parameter)
        limit_rules = [r for r in rules if r.kind in LIMIT_RULES]
        limit_rule = max(limit_rules, key=specificity) if limit_rules else None
        extra = [r for r in rules if r.kind in ("rate", "event") or (r.kind == "mean" and spec is not None)]
        if spec is not None and spec.mean is not None and not any(r.name == "mean" for r in extra):
            extra.append(
                RuleSpec(
                    "mean",
                    "mean",
                    (parameter,),
                    window_ns=spec.mean_window_ns,
                    min_readings=1,
                    origin=spec.origin,
                    note="the standard's mean limit",
                )
            )
        st = t.stations.get(station)
        expect = st.expect.get(parameter) if st is not None else None
        lowest = t.alerts.tiers[0][1]
        no_data: list[NoDataRule] = []
        for r in rules:
            if r.kind == "no_data" and r.scope == "series" and (r.interval_ns or expect):
                interval = r.interval_ns or expect or 0
                no_data.append(NoDataRule(r.name, interval, r.factor, r.severity or lowest, r.origin))
        if expect and not any(n.key == "no_data" for n in no_data):
            origin = st.lines.get(f"expect.{parameter}", st.origin) if st is not None else ""
            no_data.append(NoDataRule("no_data", expect, 3.0, lowest, origin))
        instrumented = len(t.screen_layers(station, parameter)) > 1  # an instrument table besides [screen]
        if spec is None and not extra and not no_data and not instrumented:
            return None
        screen = t.screening(station, parameter)
        # The rest of a plan is the same for every series under one ThresholdSet: share equal plans.
        key = (
            parameter,
            spec_key(spec),
            limit_rule,
            tuple(extra),
            tuple((n.key, n.interval_ns, n.factor, n.severity, n.origin) for n in no_data),
            expect is not None,
            screen,
        )
        plan = self._interned.get(key)
        if plan is not None:
            return plan
        rates: dict[str, float] = {}
        for r in extra:
            if r.kind == "rate":
                factor = unit_factor(parameter, r.unit) if r.unit else 1.0
                rates[r.name] = r.rise_per_hour * (factor or 1.0)
        sc = t.screen
        plan = Plan(
            parameter,
            spec,
            limit_rule,
            extra,
            no_data,
            expect is not None,
            screen,
            sc.ignore_flags,
            sc.suspect_flags,
            sc.dl_flags,
            t.alerts.clear_ratio,
            t.alerts.clear_hold_ns,
            lowest,
            max((r.window_ns for r in extra), default=0),
            rates,
        )
        self._interned[key] = plan
        return plan
