"""Instrument faults, injected on demand: what a real network sends besides the river.

Each kind is something operators see every month, and each fools a detector in its own way:
- drift: the reading creeps away from the truth between calibrations (fouled electrode, ageing reagent);
- stuck: the logger repeats the last value while the analyser hangs, so a real plume goes unseen;
- gap: nothing arrives (power, modem, a full waste bottle);
- calibration: a check standard is measured and sent; the logger should flag it "calibration", and a
  share of loggers do not, which is the classic false alarm;
- below_dl: reagent exhausted or a blocked sample line, the analyser reads a blank: "<DL" whatever the river;
- maintenance: the probe is out of the water, the values are the rinse, flagged "maintenance";
- spike: one reading far off the river (a bubble, a reagent slug, a relay glitch), unflagged, and the next
  one normal again;
- out_of_range: the logger sends its error code (9999) as if it were a measurement, unflagged.
The injected faults are kept, so the ground truth can say which alert a fault caused.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np

from simulators.sensors import BELOW_DL, Analyser

# New kinds go at the end: each analyser draws its faults kind by kind, so the older kinds keep their draws.
KINDS: tuple[str, ...] = ("drift", "stuck", "gap", "calibration", "below_dl", "maintenance", "spike", "out_of_range")
# The faults that blind a station: while they last a plume would not be seen (issue 13 wants each announced).
BLINDING: frozenset[str] = frozenset({"stuck", "gap", "below_dl"})
ONE_READING: frozenset[str] = frozenset({"calibration", "spike"})
OUT_OF_RANGE_VALUE = 9999.0  # the error code data loggers send in the value field
NS_PER_HOUR = 3_600_000_000_000

# How long each kind lasts, in hours (calibration: one reading).
_DURATION_H: dict[str, tuple[float, float]] = {
    "drift": (72.0, 240.0),
    "stuck": (6.0, 48.0),
    "gap": (1.0, 24.0),
    "below_dl": (6.0, 48.0),
    "maintenance": (2.0, 6.0),
    "out_of_range": (1.0, 6.0),
}


@dataclass(frozen=True)
class Fault:
    """One fault of one analyser over [start_ns, end_ns)."""

    station: str
    parameter: str
    kind: str
    start_ns: int
    end_ns: int
    size: float = 0.0  # drift: the error reached at the end (a share of the value, or units for pH/temp);
    # spike: the factor on the value (or units added, for pH/temp)
    flagged: bool = True  # calibration: whether the data logger marked the check reading

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r} (known: {', '.join(KINDS)})")
        if self.end_ns <= self.start_ns:
            raise ValueError("a fault must end after it starts")

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class FaultRates:
    """How often each kind strikes one analyser, in events per 30 days; a kind left out never happens."""

    per_30_days: Mapping[str, float] = field(default_factory=dict)
    unflagged_calibration: float = 0.0  # share of calibration checks sent without the "calibration" flag

    def __post_init__(self) -> None:
        unknown = set(self.per_30_days) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown fault kind(s): {', '.join(sorted(unknown))}")


def applicable(kind: str, analyser: Analyser) -> bool:
    """Not every fault fits every instrument: no check standard for temperature, no DL for pH."""
    if kind == "calibration":
        return analyser.check_value is not None
    if kind == "below_dl":
        return analyser.dl > 0
    return True


def one(
    rng: np.random.Generator,
    station: str,
    analyser: Analyser,
    kind: str,
    start_ns: int,
    end_ns: int,
    unflagged_share: float = 0.0,
) -> Fault:
    """A fault of `kind` at a random time in the window, aligned to the analyser's readings."""
    every_ns = analyser.every_min * 60_000_000_000
    slots = max(1, (end_ns - start_ns) // every_ns)
    at = start_ns + int(rng.integers(0, slots)) * every_ns
    if kind == "calibration":
        flagged = bool(rng.random() >= unflagged_share)
        return Fault(station, analyser.parameter, kind, at, at + every_ns, flagged=flagged)
    if kind == "spike":
        return Fault(station, analyser.parameter, kind, at, at + every_ns, size=_spike_size(rng, analyser))
    lo, hi = _DURATION_H[kind]
    length = max(every_ns, int(rng.uniform(lo, hi) * NS_PER_HOUR) // every_ns * every_ns)
    size = 0.0
    if kind == "drift":
        if analyser.relative_drift:
            magnitude = float(rng.uniform(0.10, 0.40))
            # a fouled oxygen membrane reads low; other instruments drift either way
            size = -magnitude if analyser.parameter == "do" else magnitude * float(rng.choice([-1.0, 1.0]))
        else:
            size = float(rng.uniform(0.2, 0.6)) * float(rng.choice([-1.0, 1.0]))
    return Fault(station, analyser.parameter, kind, at, at + length, size=size)


def _spike_size(rng: np.random.Generator, analyser: Analyser) -> float:
    """How far a spike goes: 5-30 times the value (oxygen: down to 5-40 %, as a bubble-free blank reads), or
    1.5-3 units either way for pH and temperature."""
    if not analyser.relative_drift:
        return float(rng.uniform(1.5, 3.0)) * float(rng.choice([-1.0, 1.0]))
    if analyser.parameter == "do":
        return float(rng.uniform(0.05, 0.40))
    return float(rng.uniform(5.0, 30.0))


def spiked(analyser: Analyser, value: float, size: float) -> float:
    """The value a spike reports instead of `value` (never negative, rounded as the analyser rounds)."""
    v = value + size if not analyser.relative_drift else max(value, analyser.dl) * size
    if analyser.parameter != "temp":
        v = max(v, 0.0)
    return round(v, analyser.decimals)


def plan(
    rng: np.random.Generator, station: str, analyser: Analyser, start_ns: int, end_ns: int, rates: FaultRates
) -> list[Fault]:
    """The faults of one analyser over a window: a Poisson number of each kind, in a fixed draw order."""
    months = (end_ns - start_ns) / (30 * 24 * NS_PER_HOUR)
    faults = []
    for kind in KINDS:
        rate = rates.per_30_days.get(kind, 0.0)
        if rate <= 0 or not applicable(kind, analyser):
            continue
        for _ in range(int(rng.poisson(rate * months))):
            faults.append(one(rng, station, analyser, kind, start_ns, end_ns, rates.unflagged_calibration))
    return faults


def apply(
    analyser: Analyser,
    faults: list[Fault],
    ts: np.ndarray,
    measured: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """Readings as the data logger sends them: (ts, value, flag) with the faults applied.

    Drift acts on the measurement; then the analyser reports (rounding, "<DL"); then, in this order, stuck,
    below_dl, spike, out_of_range, calibration and maintenance replace what was reported, and gaps remove
    readings.
    """
    measured = measured.copy()
    for f in faults:
        if f.kind == "drift":
            inside = (ts >= f.start_ns) & (ts < f.end_ns)
            ramp = (ts[inside] - f.start_ns) / (f.end_ns - f.start_ns) * f.size
            measured[inside] = measured[inside] * (1.0 + ramp) if analyser.relative_drift else measured[inside] + ramp
    values, flags = analyser.report(measured)
    keep = np.ones(len(ts), dtype=bool)
    order = {"stuck": 0, "below_dl": 1, "spike": 2, "out_of_range": 3, "calibration": 4, "maintenance": 5, "gap": 6}
    for f in sorted((f for f in faults if f.kind != "drift"), key=lambda f: (order[f.kind], f.start_ns)):
        idx = np.flatnonzero((ts >= f.start_ns) & (ts < f.end_ns))
        if len(idx) == 0:
            continue
        if f.kind == "stuck":
            held = idx[0] - 1 if idx[0] > 0 else idx[0]
            value, flag = values[held], flags[held]
            values[idx] = value
            for i in idx:
                flags[i] = flag
        elif f.kind == "below_dl":
            values[idx] = analyser.dl
            for i in idx:
                flags[i] = BELOW_DL
        elif f.kind == "spike":
            for i in idx:
                values[i] = spiked(analyser, float(values[i]), f.size)
                flags[i] = None
        elif f.kind == "out_of_range":
            values[idx] = OUT_OF_RANGE_VALUE
            for i in idx:
                flags[i] = None
        elif f.kind == "calibration":
            values[idx] = analyser.check_value
            for i in idx:
                flags[i] = "calibration" if f.flagged else None
        elif f.kind == "maintenance":
            values[idx] = analyser.rinse_value
            for i in idx:
                flags[i] = "maintenance"
        else:
            keep[idx] = False
    return ts[keep], values[keep], [fl for fl, k in zip(flags, keep, strict=True) if k]
