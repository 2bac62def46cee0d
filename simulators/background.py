"""The clean river: what each parameter truly is, hour by hour, before anything is spilled into it.

Why it matters: a detector is only as good as its false-alarm rate, and false alarms come from a river that
moves on its own. Water warms in the afternoon; photosynthesis lifts oxygen and pH by day and respiration
lowers them at night; rain washes silt and particle-bound metals in, raises turbidity and ammonia and
dilutes the dissolved salts that make up conductivity. Levels also wander slowly from day to day.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

NS_PER_HOUR = 3_600_000_000_000
NS_PER_DAY = 24 * NS_PER_HOUR
_UTC_OFFSET_H = 8.0  # the diurnal cycle follows the sun over China


@dataclass(frozen=True)
class Weather:
    """Rain events as a wetness index: 0 when dry, about 1 at the peak runoff of a heavy rain."""

    events: tuple[tuple[int, float, float], ...]  # (start_ns, intensity 0..1, recession time in days)

    def wetness(self, times_ns: np.ndarray) -> np.ndarray:
        """Runoff rises over about six hours, then recedes exponentially."""
        wet = np.zeros(len(times_ns))
        for start_ns, intensity, recession_d in self.events:
            age_h = (times_ns - start_ns) / NS_PER_HOUR
            rising = np.clip(age_h / 6.0, 0.0, 1.0)
            receding = np.exp(-np.clip(age_h - 6.0, 0.0, None) / (recession_d * 24.0))
            wet += np.where(age_h > 0, intensity * rising * receding, 0.0)
        return np.minimum(wet, 1.5)


def rain(rng: np.random.Generator, start_ns: int, end_ns: int, per_week: float) -> Weather:
    """Rain events at random times (a Poisson process), each with its own intensity and recession."""
    weeks = (end_ns - start_ns) / (7 * NS_PER_DAY)
    count = int(rng.poisson(per_week * weeks)) if per_week > 0 else 0
    starts = np.sort(rng.uniform(start_ns - 2 * NS_PER_DAY, end_ns, count))
    intensity = rng.uniform(0.2, 1.0, count)
    recession = rng.uniform(0.5, 2.5, count)
    return Weather(tuple((int(s), float(i), float(r)) for s, i, r in zip(starts, intensity, recession, strict=True)))


def diurnal(times_ns: np.ndarray, peak_hour: float) -> np.ndarray:
    """A daily cosine in local time: +1 at `peak_hour`, -1 twelve hours later."""
    hour = ((times_ns / NS_PER_HOUR) + _UTC_OFFSET_H) % 24.0
    return np.cos(2.0 * np.pi * (hour - peak_hour) / 24.0)


def seasonal_temperature(times_ns: np.ndarray, mean: float = 20.0, swing: float = 8.0) -> np.ndarray:
    """Daily-mean water temperature of a south China river: about 12 °C in January, 28 °C in late July."""
    day_of_year = (times_ns / NS_PER_DAY) % 365.25  # from 1 Jan 1970; the phase drifts by < 1 day a century
    return mean + swing * np.cos(2.0 * np.pi * (day_of_year - 205.0) / 365.25)


def oxygen_saturation(temp_c: np.ndarray) -> np.ndarray:
    """Dissolved oxygen at saturation in fresh water at sea level, mg/L (the APHA / Benson-Krause fit)."""
    t = temp_c
    return 14.652 - 0.41022 * t + 0.007991 * t**2 - 0.000077774 * t**3


def wander(rng: np.random.Generator, times_ns: np.ndarray, sigma: float, days: float = 1.5) -> np.ndarray:
    """Slow day-to-day variation: an AR(1) process on hourly knots with correlation time `days`, interpolated."""
    if sigma <= 0 or len(times_ns) == 0:
        return np.zeros(len(times_ns))
    t0, t1 = int(times_ns[0]), int(times_ns[-1])
    knots = np.arange(t0, t1 + NS_PER_HOUR, NS_PER_HOUR)
    phi = math.exp(-1.0 / (24.0 * days))
    shocks = rng.standard_normal(len(knots)) * sigma * math.sqrt(1.0 - phi * phi)
    walk = np.empty(len(knots))
    level = rng.standard_normal() * sigma
    for i, shock in enumerate(shocks):  # a few hundred knots per month: cheap
        level = phi * level + shock
        walk[i] = level
    smooth: np.ndarray = np.interp(times_ns, knots, walk)
    return smooth


@dataclass(frozen=True)
class Style:
    """How one parameter moves: relative (concentrations) or absolute (pH) daily swing, rain response and
    wander. `rain` is the relative change at wetness 1 (pH: absolute)."""

    diurnal: float = 0.0
    peak_hour: float = 15.0
    rain: float = 0.0
    wander: float = 0.0
    absolute: bool = False


STYLES: Mapping[str, Style] = {
    "cd": Style(rain=0.5, wander=0.08),  # particle-bound metals come in with runoff
    "pb": Style(rain=1.0, wander=0.10),
    "hg": Style(rain=0.8, wander=0.10),
    "as": Style(rain=0.4, wander=0.08),
    "ph": Style(diurnal=0.12, peak_hour=15.0, rain=-0.15, wander=0.04, absolute=True),  # photosynthesis
    "cond": Style(diurnal=0.01, rain=-0.30, wander=0.03),  # rain dilutes the dissolved salts
    "turb": Style(rain=5.0, wander=0.15),  # silt
    "nh3n": Style(diurnal=-0.10, peak_hour=15.0, rain=1.0, wander=0.10),  # taken up by algae by day
    "codmn": Style(rain=0.4, wander=0.06),
    "tp": Style(rain=1.2, wander=0.10),
}


def clean_series(
    parameters: Sequence[str],
    levels: Mapping[str, float],
    times_ns: np.ndarray,
    weather: Weather,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """The true clean-river value of each parameter at `times_ns` for one station.

    `levels` holds each parameter's typical value (temp: the offset from the seasonal mean; do: the usual
    fraction of saturation). Dissolved oxygen follows temperature, so temp is made whenever do is asked for.
    Draws from `rng` in a fixed order (sorted parameters), so the same seed gives the same river.
    """
    wet = weather.wetness(times_ns)
    out: dict[str, np.ndarray] = {}
    wanted = sorted(set(parameters) | ({"temp"} if "do" in parameters else set()))
    for p in wanted:
        if p == "temp":
            day = diurnal(times_ns, peak_hour=16.0)
            out[p] = (
                seasonal_temperature(times_ns)
                + levels.get("temp", 0.0)
                + 0.6 * day
                - 0.8 * wet
                + wander(rng, times_ns, 0.4, days=3.0)
            )
        elif p == "do":
            continue  # needs temp: below
        else:
            style = STYLES.get(p, Style(wander=0.05))
            level = levels[p]
            shape = style.diurnal * diurnal(times_ns, style.peak_hour) + style.rain * wet
            drift = wander(rng, times_ns, style.wander)
            out[p] = level + shape + drift if style.absolute else level * (1.0 + shape) * np.exp(drift)
    if "do" in wanted:
        fraction = levels.get("do", 0.92) + 0.06 * diurnal(times_ns, peak_hour=15.0) - 0.04 * wet
        out["do"] = oxygen_saturation(out["temp"]) * (fraction + wander(rng, times_ns, 0.015))
    return {p: out[p] for p in parameters}
