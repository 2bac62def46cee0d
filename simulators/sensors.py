"""Online analysers: how often they report, how precisely, and what they say below their detection limit.

Why model the instrument and not just add noise: what reaches the service is what a station's data logger
sends. Metals analysers (HJ 762/763-2015 and kin) take one to four hours per measurement cycle; the sonde
for pH, oxygen, temperature, conductivity and turbidity reports every few minutes; an ammonia analyser
about hourly. Precision is a share of the value, down to a floor set by the blank, and a value under the
detection limit is not a number the lab would sign: it goes out as the limit itself, flagged "<DL" (the
"0.0005L" of Chinese lab reports), so that it never alarms and is never mistaken for a measurement.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

BELOW_DL = "<DL"


@dataclass(frozen=True)
class Analyser:
    """One instrument at a station. Noise is sqrt((noise_rel * value)^2 + noise_abs^2), one sigma."""

    parameter: str
    every_min: int
    noise_rel: float
    noise_abs: float
    decimals: int
    dl: float = 0.0  # detection limit in the parameter's unit; 0 where there is none (pH, temperature)
    check_value: float | None = None  # the standard a calibration check measures; None: not checked that way
    rinse_value: float = 0.0  # what it reads while out of the water for maintenance
    relative_drift: bool = True  # drift as a share of the value, or in units (pH, temperature)

    def __post_init__(self) -> None:
        if self.every_min <= 0:
            raise ValueError(f"{self.parameter}: every_min must be positive")

    def every(self, minutes: int) -> Analyser:
        """The same instrument on another cadence."""
        return replace(self, every_min=minutes)

    def measure(self, truth: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """What the instrument measures, before rounding and censoring."""
        sigma = np.sqrt((self.noise_rel * truth) ** 2 + self.noise_abs**2)
        return truth + sigma * rng.standard_normal(len(truth))

    def report(self, measured: np.ndarray) -> tuple[np.ndarray, list[str | None]]:
        """Rounded to the instrument's resolution; below the detection limit: the limit, flagged "<DL"."""
        values = np.round(measured, self.decimals)
        flags: list[str | None] = [None] * len(values)
        if self.dl > 0:
            below = measured < self.dl
            values = np.where(below, self.dl, values)
            for i in np.flatnonzero(below):
                flags[i] = BELOW_DL
        return values, flags


# Cadences and precision of the instruments at a typical automatic station (HJ 915-2017 networks).
ANALYSERS: dict[str, Analyser] = {
    a.parameter: a
    for a in (
        Analyser("cd", 120, 0.05, 0.00015, 5, dl=0.0005, check_value=0.010),
        Analyser("pb", 240, 0.06, 0.0007, 4, dl=0.002, check_value=0.050),
        Analyser("ph", 10, 0.0, 0.02, 2, check_value=9.18, rinse_value=7.00, relative_drift=False),
        Analyser("do", 10, 0.02, 0.05, 2, dl=0.05, check_value=0.0, rinse_value=9.10),
        Analyser("temp", 10, 0.0, 0.05, 1, relative_drift=False, rinse_value=18.0),
        Analyser("cond", 10, 0.01, 1.0, 0, dl=1.0, check_value=1413.0),
        Analyser("turb", 10, 0.03, 0.05, 1, dl=0.1, check_value=100.0),
        Analyser("nh3n", 60, 0.05, 0.008, 3, dl=0.025, check_value=2.0),
    )
}
