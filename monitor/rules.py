"""Rules: each batch of readings, grouped per series, checked against its limit with numpy.

The first rule kind is the instantaneous check against the limit for the station's water-function class.
Work per batch is O(readings) with one limit look-up per series (cached); memory is the limit cache,
one entry per series seen.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from monitor.reading import Reading
from monitor.thresholds import Limit, ThresholdSet

# Instrument flags that mean "this value is not a measurement of the river": never alarm on them,
# and never let them resolve an alert either.
NOT_EVALUATED_FLAGS = frozenset({"maintenance", "calibration", "suspect", "fault", "invalid"})


@dataclass(slots=True)
class SeriesCheck:
    """One series' readings of a batch, in time order, with the verdict for each."""

    station: str
    parameter: str
    limit: Limit
    ts_ns: np.ndarray  # int64
    values: np.ndarray  # float64
    ratio: np.ndarray  # >= 1 where violated: C/S for a maximum, S/C for a minimum
    violated: np.ndarray  # bool


class Rules:
    def __init__(self, thresholds: ThresholdSet, default_class: str) -> None:
        self._thresholds = thresholds
        self._default_class = default_class
        self._limits: dict[tuple[str, str], Limit | None] = {}

    def limit(self, station: str, parameter: str) -> Limit | None:
        key = (station, parameter)
        if key not in self._limits:
            self._limits[key] = self._thresholds.limit(station, parameter, self._default_class)
        return self._limits[key]

    def evaluate(self, readings: Sequence[Reading]) -> list[SeriesCheck]:
        groups: dict[tuple[str, str], list[Reading]] = {}
        for r in readings:
            if r.flag in NOT_EVALUATED_FLAGS:
                continue
            groups.setdefault((r.station, r.parameter), []).append(r)
        checks = []
        for (station, parameter), rows in groups.items():
            limit = self.limit(station, parameter)
            if limit is None:
                continue
            ts = np.fromiter((r.ts_ns for r in rows), dtype=np.int64, count=len(rows))
            values = np.fromiter((r.value for r in rows), dtype=np.float64, count=len(rows))
            order = np.argsort(ts, kind="stable")
            ts, values = ts[order], values[order]
            ratio, violated = check(limit, values)
            checks.append(SeriesCheck(station, parameter, limit, ts, values, ratio, violated))
        return checks


def check(limit: Limit, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vectorized (ratio, violated) of values against one limit."""
    with np.errstate(divide="ignore", invalid="ignore"):
        if limit.kind == "max":
            ratio = values / limit.value
            violated = values > limit.value
        elif limit.kind == "min":
            ratio = np.where(values > 0, limit.value / values, np.inf)
            violated = values < limit.value
        else:  # range
            low = limit.low if limit.low is not None else -np.inf
            ratio = np.maximum(values / limit.value, np.where(values > 0, low / values, np.inf))
            violated = (values > limit.value) | (values < low)
    return ratio, violated
