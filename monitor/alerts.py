"""Alerts: turn per-reading verdicts into a lifecycle per (station, parameter): firing, escalated, resolved.

An alert notifies on transitions only, never once per reading. Transitions are found with numpy (the
places where the verdict or the severity tier changes), so a long exceedance costs O(readings) array work
and O(transitions) Python. State is one small record per series that is or was in alarm.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from monitor.rules import SeriesCheck
from monitor.thresholds import Limit

# C/S ratio at which each severity starts (a DO minimum uses S/C).
DEFAULT_TIERS: tuple[tuple[float, str], ...] = ((1.0, "warning"), (5.0, "serious"), (20.0, "critical"))


@dataclass(frozen=True, slots=True)
class AlertEvent:
    alert_id: str
    state: str  # "firing" | "escalated" | "resolved"
    station: str
    parameter: str
    ts_ns: int  # the time of the reading that caused the transition
    value: float
    ratio: float
    severity: str
    limit: Limit
    started_ns: int
    peak_value: float
    peak_ratio: float


@dataclass(slots=True)
class _Open:
    alert_id: str
    started_ns: int
    tier: int
    peak_value: float
    peak_ratio: float

    def note_peak(self, value: float, ratio: float) -> None:
        if ratio > self.peak_ratio:
            self.peak_value, self.peak_ratio = value, ratio


@dataclass
class AlertBook:
    tiers: tuple[tuple[float, str], ...] = DEFAULT_TIERS
    open: dict[tuple[str, str], _Open] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._bounds = np.array([t for t, _ in self.tiers], dtype=np.float64)

    def severity(self, tier: int) -> str:
        return self.tiers[max(tier, 1) - 1][1]

    def update(self, check: SeriesCheck) -> list[AlertEvent]:
        """Advance one series through a batch; returns its transitions in time order."""
        key = (check.station, check.parameter)
        n = len(check.values)
        if n == 0:
            return []
        tier = np.where(check.violated, np.searchsorted(self._bounds, check.ratio, side="right"), 0)
        tier = np.maximum(tier, check.violated.astype(np.int64))  # a violation is at least the first tier
        # Candidate indices: the first reading and every change of tier (which covers every change of verdict).
        marks = np.concatenate(([0], np.flatnonzero(np.diff(tier)) + 1, [n]))
        events: list[AlertEvent] = []
        for start, end in itertools.pairwise(marks):
            t = int(tier[start])
            current = self.open.get(key)
            if t > 0:
                if current is None:
                    current = _Open(_alert_id(check.station, check.parameter, int(check.ts_ns[start])),
                                    int(check.ts_ns[start]), t, float(check.values[start]), float(check.ratio[start]))
                    self.open[key] = current
                    events.append(self._event(current, "firing", check, start))
                elif t > current.tier:
                    current.tier = t
                    current.note_peak(float(check.values[start]), float(check.ratio[start]))
                    events.append(self._event(current, "escalated", check, start))
                peak_i = start + int(np.argmax(check.ratio[start:end]))
                current.note_peak(float(check.values[peak_i]), float(check.ratio[peak_i]))
            elif current is not None:
                del self.open[key]
                events.append(self._event(current, "resolved", check, start))
        return events

    def _event(self, a: _Open, state: str, check: SeriesCheck, i: int) -> AlertEvent:
        return AlertEvent(a.alert_id, state, check.station, check.parameter, int(check.ts_ns[i]),
                          float(check.values[i]), float(check.ratio[i]), self.severity(a.tier), check.limit,
                          a.started_ns, a.peak_value, a.peak_ratio)


def _alert_id(station: str, parameter: str, ts_ns: int) -> str:
    """Readable and stable: the same data always opens the same id (`lalang/cd/20120115T0000Z`)."""
    when = datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y%m%dT%H%MZ")
    return f"{station}/{parameter}/{when}"
