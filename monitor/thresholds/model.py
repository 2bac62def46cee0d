"""What a threshold file holds once read: standards, stations, rules, policies, and the problems found."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from monitor.domain.params import Parameter
from monitor.thresholds.notation import fmt_number

KINDS = ("max", "min", "range", "change")
RULE_KINDS = ("instantaneous", "persistence", "mean", "rate", "no_data", "event")
LIMIT_RULES = ("instantaneous", "persistence")  # these decide the alert on the limit itself
DEFAULT_CLASSES = ("I", "II", "III", "IV", "V")  # for station-only files: the classes of GB 3838-2002
WATER_BODIES = ("river", "lake")
DEFAULT_TIERS: tuple[tuple[float, str], ...] = ((1.0, "warning"), (5.0, "serious"), (20.0, "critical"))
# "backfill": a data logger's re-sent history (HJ 212 RF=1, or older than the newest reading): stored, never live.
DEFAULT_IGNORE_FLAGS = frozenset({"maintenance", "calibration", "backfill"})
# HJ 212's F (stopped), T (over range) and B (logger communication fault) arrive as the last three.
DEFAULT_SUSPECT_FLAGS = frozenset({"suspect", "fault", "invalid", "stopped", "over_range", "comm_fault"})
# "0.00005L" in Chinese monitoring reports means "below the detection limit 0.00005"; decoders pass it on as
# the value 0.00005 with one of these flags.
DEFAULT_DL_FLAGS = frozenset({"<dl", "l", "<lod", "nd", "below_dl"})


@dataclass(frozen=True, slots=True)
class Limit:
    """One evaluable limit for a (station, parameter): what the alert engine compares readings with."""

    parameter: str  # catalogue id
    kind: str  # "max" | "min" | "range" (rules may add their own kinds, with `text`)
    value: float  # the limit (for range: the upper bound), in the parameter's standard unit
    low: float | None  # range lower bound, else None
    unit: str
    standard: str  # e.g. "GB 3838-2002"
    klass: str  # e.g. "III"; "" for a standard without classes
    source: str
    note: str = field(default="", compare=False)  # e.g. "hardness class 3", "until 2036-01-12"
    origin: str = field(default="", compare=False)  # path:line it was read from
    text: str = field(default="", compare=False)  # replaces describe() for rule-made limits (no data, trend)

    def describe(self) -> str:
        """Human text for notifications: "0.005 mg/L (GB 3838-2002 Class III)", "6–9 (...)", "≥ 5 mg/L (...)"."""
        if self.text:
            return self.text
        unit = f" {self.unit}" if self.unit else ""
        if self.kind == "range":
            amount = f"{fmt_number(self.low if self.low is not None else -math.inf)}–{fmt_number(self.value)}{unit}"
        elif self.kind == "min":
            amount = f"≥ {fmt_number(self.value)}{unit}"
        else:
            amount = f"{fmt_number(self.value)}{unit}"
        where = self.standard + (f" Class {self.klass}" if self.klass else "") + (f", {self.note}" if self.note else "")
        return f"{amount} ({where})"

    def ratio(self, value: float) -> float:
        """How far `value` is from the limit, > 1 when violated; the "times the limit" of notifications."""
        if self.kind == "min":
            if self.value <= 0:
                return 0.0
            return math.inf if value <= 0 else self.value / value
        high = _over(value, self.value)
        if self.kind != "range" or self.low is None or value > self.value:
            return high
        if value < self.low:
            return self.low / value if value > 0 else math.inf
        return max(high, self.low / value if value > 0 else 0.0)

    def violated(self, value: float) -> bool:
        """The standard's own rule (max: value <= limit, ...); authoritative where ratio rounds to 1."""
        if self.kind == "min":
            return value < self.value
        if self.kind == "range" and self.low is not None and value < self.low:
            return True
        return value > self.value


def _over(value: float, limit: float) -> float:
    """value/limit, defined for a zero limit ("not detectable") as well."""
    if limit > 0:
        return value / limit
    return math.inf if value > limit else 0.0


@dataclass(frozen=True, slots=True)
class Override:
    """A station's own limit for one parameter (an emergency order, a permit), replacing the standard's."""

    parameter: str
    kind: str  # max | min | range | "" (the standard item's kind, max when there is none)
    value: float  # max/min limit, or a range's high
    low: float | None
    source: str
    origin: str


@dataclass(frozen=True, slots=True)
class Station:
    """A monitoring station; its class selects the limits, water_body selects lake or river limits."""

    id: str
    name: str
    name_zh: str
    river: str
    river_km: float | None
    klass: str | None
    intake: bool
    water_body: str = "river"  # "river" or "lake" (lakes and reservoirs)
    timezone: str = ""  # IANA name or "+08:00"; "" = the service's
    coordinates: tuple[float, float] | None = None  # (latitude, longitude), WGS 84 degrees
    standards: tuple[str, ...] = ()  # ids of the standards that apply here, in precedence order; () = all
    overrides: Mapping[str, Override] = field(default_factory=dict)
    expect: Mapping[str, int] = field(default_factory=dict)  # parameter -> expected reporting interval, ns
    assume: Mapping[str, float] = field(default_factory=dict)  # parameter -> value used while unmeasured
    instruments: Mapping[str, InstrumentSettings] = field(default_factory=dict)  # parameter -> its own
    origin: str = ""  # path:line of [stations.<id>]
    lines: Mapping[str, str] = field(default_factory=dict)  # key -> path:line, for `show`
    # HJ 212: the data logger's MN (unique across stations) and where its password (PW) is read from, never
    # the password itself (station files are shared and committed). pw_file is absolute (resolved against
    # the station file's folder). Empty: no HJ 212 logger at this station.
    mn: str = ""
    pw_env: str = ""
    pw_file: str = ""


@dataclass(frozen=True, slots=True)
class Item:
    """One item of a standard, limits already in the parameter's standard unit."""

    parameter: str
    kind: str  # max | min | range | change
    unit: str
    limits: Mapping[str, float]  # per class ("" for a standard without classes); for range the upper bound
    lows: Mapping[str, float]  # range: the lower bound per class
    lake_limits: Mapping[str, float]  # lakes and reservoirs, where they differ from rivers
    source: str
    scope: str = ""
    origin: str = ""  # path:line of [items.<id>]
    steps: tuple[tuple[int, str, float], ...] = ()  # (until_ns, "YYYY-MM-DD", value) in force before that date
    depends_on: str = ""  # a parameter whose measured value selects the band (e.g. hardness)
    bounds: tuple[float, ...] = ()  # band edges, in the dependency's unit: band i is [bounds[i-1], bounds[i])
    band_limits: tuple[float, ...] = ()  # one limit per band
    default_band: int = -1  # band used while the dependency is unknown; -1 = the most protective
    mean_limits: Mapping[str, float] = field(default_factory=dict)  # limit on the rolling mean, per class
    mean_band_limits: tuple[float, ...] = ()
    mean_window_ns: int = 0


@dataclass(frozen=True, slots=True)
class Standard:
    """A standard as loaded from one file; `classes` is empty for one that has a single limit per item."""

    id: str
    name: str
    classes: tuple[str, ...]
    items: Mapping[str, Item]
    path: str
    origin: str = ""


@dataclass(frozen=True, slots=True)
class RuleSpec:
    """One `[[rules]]` entry as loaded; monitor.rules turns it into numpy work per series."""

    kind: str  # instantaneous | persistence | mean | rate | no_data
    name: str  # unique among the rules of a series; alert ids use it
    parameters: tuple[str, ...] = ()  # () = every parameter
    stations: tuple[str, ...] = ()  # () = every station
    intake: bool | None = None  # True: intake stations only; False: all others; None: any
    origin: str = ""  # path:line
    severity: str = ""  # a fixed severity; "" = tiers by ratio (rate and no_data default to the lowest tier)
    clear_ratio: float | None = None  # None = [alerts].clear_ratio
    clear_hold_ns: int | None = None
    readings: int = 0  # persistence: this many readings in a row above the limit ...
    duration_ns: int = 0  # ... and/or for this long
    window_ns: int = 0  # mean, rate
    min_readings: int = 0  # mean (default 1), rate (default 3)
    rise_per_hour: float = 0.0  # rate, in `unit` per hour
    unit: str | None = None  # the unit rise_per_hour is written in; None = the parameter's own
    above: float = 0.0  # rate: only once the reading is at least this fraction of the limit
    interval_ns: int = 0  # no_data: expected interval; 0 = the station's `expect`
    factor: float = 3.0  # no_data: silent for factor × interval
    scope: str = "series"  # no_data: "series" or "station"
    note: str = ""
    # event (monitor.rules.event): CANARY-like detection over `parameters` at each station; the defaults are
    # EVENT_DEFAULTS, filled in by the check
    history: int = 0  # `window`: steps of normal behaviour learnt (outliers are never learnt)
    sigma: float = 0.0  # `threshold`: a signal is an outlier further than this many σ from its prediction
    outlier_probability: float = 0.0  # the share of outlier steps in normal water (the binomial's p)
    confidence: float = 0.0  # an event when P(k or more outliers in `steps` | p) < 1 - confidence
    steps: int = 0  # the binomial event discriminator's window, in steps
    min_signals: int = 0  # signals that must be outliers together for an outlier step
    timeout: int = 0  # steps after which an open event's level is learnt as the new normal; 0 = never

    def matches(self, station_id: str, station: Station | None, parameter: str) -> bool:
        """Whether this rule applies to the series (station_id, parameter)."""
        if self.parameters and parameter not in self.parameters:
            return False
        if self.stations and station_id not in self.stations:
            return False
        return self.intake is None or (station is not None and station.intake) == self.intake


# `[[rules]] kind = "event"` keys and their defaults (see monitor.rules.event for where each comes from).
EVENT_DEFAULTS: dict[str, float] = {
    "window": 72,
    "threshold": 2.5,
    "outlier_probability": 0.05,
    "confidence": 0.99,
    "steps": 6,
    "min_signals": 2,
    "timeout": 72,
}


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """A `[parameters.<id>]` table as loaded: the parameter it adds to the catalogue and where it is."""

    parameter: Parameter
    origin: str  # path:line


@dataclass(frozen=True, slots=True)
class ClassPolicy:
    """`[classes]`: the class of intake stations and of all others, overriding the station files' classes."""

    intake: str | None = None
    default: str | None = None
    origins: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScreenSettings:
    """The statistical screens and sensor-health settings one table sets: `[screen]` for every series,
    `[instruments.<p>]` or a station's `instruments.<p>` for one parameter. None means "not set here", so the
    table below applies (the effective values, defaults included, are a `Screening`)."""

    flatline: int | None = None  # ≥ 2: from the Nth equal reading in a row, a stuck sensor (default: off)
    spike_window: int | None = None  # ≥ 3: a value is judged against the median of this many before it (default: off)
    spike_mads: float | None = None  # > 0: a spike is further than this many MADs from that median (default 6)
    spike_floor: float | None = None  # ≥ 0: the least deviation a MAD stands for, standard unit (default 0)
    gap_factor: float | None = None  # silent for this many learnt intervals: a sensor alert (default 3; 0 = off)
    below_dl_run: int | None = None  # this many below-DL readings in a row where it reads above: a sensor alert
    maintenance_max_ns: int | None = None  # `maintenance_max`: flagged maintenance longer than this: sensor alert
    # [0, 0.5): a run of equal readings less probable than this at the rate of equal successive readings learnt
    # from the series itself is a stuck analyser, before `flatline` (default RUN_PROBABILITY; 0 = flatline only)
    run_probability: float | None = None


RUN_PROBABILITY = 1e-5


@dataclass(frozen=True, slots=True)
class CheckStandard:
    """`check = { value = 0.01, at = ["06:00"], tolerance = 0.1 }`: the check standard an analyser measures at
    its check times. An unflagged reading within `tolerance` (a share of the value) of it, at one of those times
    (the station's local time, within `window_ns`; any time when `at` is empty), is a calibration check, not river
    water. Without `at` it must also stand out from the reading before and not be confirmed by the one after."""

    value: float  # in the parameter's standard unit
    at: tuple[int, ...] = ()  # minutes after local midnight
    tolerance: float = 0.1
    window_ns: int = 30 * 60 * 1_000_000_000  # CHECK_WINDOW_NS

    def __str__(self) -> str:
        """For `thresholds show`: "0.01 ± 10 % at 06:00, 18:00" (or "at any time, when the next reading goes back")."""
        when = ", ".join(f"{m // 60:02d}:{m % 60:02d}" for m in self.at) or "any time, when the next reading goes back"
        return f"{fmt_number(self.value)} ± {fmt_number(self.tolerance * 100)} % at {when}"


CHECK_WINDOW_NS = 30 * 60 * 1_000_000_000


DRIFT_WINDOW_NS = 24 * 3600 * 1_000_000_000
DRIFT_LEARN_NS = 7 * 24 * 3600 * 1_000_000_000


@dataclass(frozen=True, slots=True)
class DriftSpec:
    """`drift = { against = ["nuomitan", "temp"], tolerance = 0.15, window = "24h", learn = "7d" }`: a series is
    drifting when the median of its `window` has moved, against each reference, more than `tolerance` (a share)
    from the ratio learnt over `learn`. A reference is a station id (the same parameter there: a neighbour) or a
    parameter id (at the same station: co-located; do against temp compares with oxygen saturation)."""

    against: tuple[str, ...]
    tolerance: float = 0.15
    window_ns: int = DRIFT_WINDOW_NS
    learn_ns: int = DRIFT_LEARN_NS

    def __str__(self) -> str:
        """As `thresholds show` prints it."""
        hour = 3600 * 1_000_000_000
        return (
            f"against {', '.join(self.against)} within {fmt_number(self.tolerance * 100)} % "
            f"(median of {fmt_number(self.window_ns / hour)} h, ratio learnt over {fmt_number(self.learn_ns / hour)} h)"
        )


@dataclass(frozen=True, slots=True)
class InstrumentSettings(ScreenSettings):
    """`[instruments.<p>]` (or a station's `instruments.<p>`): the instrument's limits besides the screens.

    Values are in the parameter's standard unit: the table's `unit` converted them on load (`note` is for people).
    """

    range: tuple[float, float] | None = None  # (low, high) the instrument can measure (default: no range screen)
    detection_limit: float | None = None  # values below it are below the detection limit (default: flags only)
    check: CheckStandard | None = None  # the check standard (default: none recognised without a flag)
    drift: DriftSpec | None = None  # drift against a neighbour or a co-located parameter (default: none)


def merged_settings(layers: Iterable[ScreenSettings]) -> dict[str, Any]:
    """The keys the layers set, later layers winning, in the order the files name them; the dict that
    `ThresholdSet.instrument` has always returned (monitor.rules and `show` read it)."""
    out: dict[str, Any] = {}
    for layer in layers:
        for f in dataclasses.fields(layer):
            value = getattr(layer, f.name)
            if value is not None:
                out[f.name] = value
    return out


@dataclass(frozen=True, slots=True)
class Screening:
    """The screens that apply to one series, every default filled in: what monitor.rules needs per series."""

    range: tuple[float, float] | None = None  # readings outside it are "outside the instrument range"; None = none
    detection_limit: float | None = None  # readings below it are below the detection limit; None = flags only
    flatline: int = 0  # this many equal readings in a row are a flatline; 0 = no flatline screen
    spike_window: int = 0  # the previous values a spike is judged against; 0 = no spike screen
    spike_mads: float = 6.0  # a spike: further than spike_mads × max(1.4826·MAD, spike_floor) from their median
    spike_floor: float = 0.0  # keeps a near-constant series from calling every wobble a spike; standard unit
    gap_factor: float = 3.0  # no reading for gap_factor × the learnt interval: a sensor alert; 0 = off
    below_dl_run: int = 3  # below-DL readings in a row, on a series that reads above it, for a sensor alert; 0 = off
    maintenance_max_ns: int = 8 * 3600 * 1_000_000_000  # maintenance longer than this: a sensor alert; 0 = off
    run_probability: float = RUN_PROBABILITY  # a run of equal readings this improbable for the series: stuck
    check: CheckStandard | None = None  # the check standard recognised without a flag
    drift: DriftSpec | None = None  # drift screening against references (monitor.rules.drift); None = off
    timezone: str = ""  # the station's (for check times); "" = UTC

    @classmethod
    def of(cls, layers: Iterable[ScreenSettings], timezone: str = "") -> Screening:
        """The effective screens of a series from its tables, the most specific last."""
        return cls(**merged_settings(layers), timezone=timezone if timezone else "")

    @property
    def active(self) -> bool:
        """Whether any screen beyond the instrument flags applies (such a series never takes the fast path)."""
        return (
            self.range is not None
            or self.detection_limit is not None
            or self.check is not None
            or self.drift is not None
            or bool(self.flatline or self.spike_window)
        )


@dataclass(frozen=True, slots=True)
class ScreenSpec:
    """`[screen]`: which instrument flags are ignored, suspect or below the detection limit, and the
    statistical screens applied to every series (overridden per parameter by `[instruments.<p>]`).
    `instrument_defaults = false` leaves out the shipped per-parameter instrument defaults."""

    ignore_flags: frozenset[str] = DEFAULT_IGNORE_FLAGS  # readings not evaluated at all (maintenance)
    suspect_flags: frozenset[str] = DEFAULT_SUSPECT_FLAGS  # readings marked suspect instead of alarming
    dl_flags: frozenset[str] = DEFAULT_DL_FLAGS  # `below_dl_flags`: the value is a detection limit
    defaults: ScreenSettings = ScreenSettings()  # flatline, spike_window, spike_mads, spike_floor for every series
    origins: Mapping[str, str] = field(default_factory=dict)  # key -> path:line, for `show`
    instrument_defaults: bool = True  # the shipped thresholds/instruments.toml under everything the files set


CLEAR_HOLD_CYCLE = -1  # `clear_hold = "cycle"` (the default): calm for one analyser cycle of the series


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """`[alerts]`: severity tiers by ratio, the two steps of an alert (unconfirmed, then confirmed), and
    hysteresis: a confirmed alert clears only after `clear_readings` calm readings in a row (below limit ×
    clear_ratio) that have also lasted `clear_hold`, so one compliant reading inside a plume does not resolve it.

    The trend of a limit series, in sigmas of its own noise (learnt per series, see monitor.alerts.trend), as a
    station's chemist reads it: a reading under the limit by at most `near_band` sigmas whose slope over the
    last `trend_readings` readings is `near_rise` standard errors or more is an unconfirmed first step, which
    the next reading over the limit confirms; a reading within `clear_band` sigmas under the limit is not calm;
    a first exceedance that jumps more than `sudden_band` sigmas above the series' level (a spike, a check
    standard) needs one more reading over the limit. 0 turns each off."""

    tiers: tuple[tuple[float, str], ...] = DEFAULT_TIERS  # `severity`: (ratio, name), the mildest first
    clear_ratio: float = 1.0  # an alert clears below limit × clear_ratio ...
    clear_hold_ns: int = CLEAR_HOLD_CYCLE  # ... held this long (`clear_hold`); CLEAR_HOLD_CYCLE = one analyser cycle
    origins: Mapping[str, str] = field(default_factory=dict)  # key -> path:line, for `show`
    confirm: int = 2  # readings in a row over the limit that confirm an alert; 1 = at the first (no unconfirmed step)
    clear_readings: int = 2  # calm readings in a row that clear a confirmed alert (with clear_hold)
    near_band: float = 3.0  # noise sigmas under the limit within which a rising reading is a first step; 0 = off
    near_rise: float = 2.0  # standard errors the slope over `trend_readings` must reach to count as rising
    trend_readings: int = 6  # readings the slope is fitted over
    clear_band: float = 2.0  # noise sigmas under the limit within which a reading is not calm (at most half the limit)
    # Sigmas above the level that make a first exceedance sudden (one more reading to confirm). 0 = off, the
    # default: on, it changes the documented "two readings over confirm" (measured: baseline false alerts 2 -> 1).
    sudden_band: float = 0.0
    # `[alerts.severity_by.<station|parameter|standard>.<id>]`: the tiers' ratios for one station, parameter or
    # standard, every tier filled in (a tier the table leaves out keeps its `severity` ratio). The most specific
    # scope wins: station, then parameter, then standard.
    tiers_by: Mapping[tuple[str, str], tuple[float, ...]] = field(default_factory=dict)

    def bounds_for(self, station: str, parameter: str, standard: str) -> tuple[float, ...]:
        """The tier ratios that apply to a series: why per scope, a 4x cadmium reading at a Class II intake is
        an emergency where the same ratio of iron in a river is a warning."""
        for scope in (("station", station), ("parameter", parameter), ("standard", standard)):
            got = self.tiers_by.get(scope)
            if got is not None:
                return got
        return tuple(t for t, _ in self.tiers)


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem in a threshold file, printed the way compilers do so editors can jump to it."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


class ThresholdError(Exception):
    """Raised by `load` when the files have problems; str() lists them one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems: list[Problem] = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))
