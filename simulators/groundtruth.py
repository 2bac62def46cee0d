"""Ground truth: when the TRUE value at each station crossed each class limit of GB 3838-2002, and when it came
back.

Why from the truth and not from the readings: readings carry noise and instrument faults, and "was this
alert right, and on time?" has to be answered against the river itself. Limits and the rule (max, min,
range) are the service's own (monitor.thresholds; the rules engine judges with the same
monitor.thresholds.verdict), so the truth and the detector can only disagree about the data, never about the
standard. An episode starts at the first grid time the truth violates the limit and ends (`back`) at the first
grid time it complies again; `back` is null when it was still in violation at the end of the scenario.
"""

from __future__ import annotations

import csv
import functools
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monitor.thresholds import Limit, Standard, load, shipped_path
from monitor.thresholds.verdict import limit_verdict
from simulators.faults import Fault
from simulators.messages import rfc3339


@dataclass(frozen=True)
class Truth:
    """The true value of every (station, parameter) on a regular time grid from start_ns."""

    start_ns: int
    step_ns: int
    series: Mapping[tuple[str, str], np.ndarray]

    def times_ns(self) -> np.ndarray:
        n = len(next(iter(self.series.values()))) if self.series else 0
        return self.start_ns + np.arange(n, dtype=np.int64) * self.step_ns

    def at(self, station: str, parameter: str, ts_ns: np.ndarray) -> np.ndarray:
        """The truth at grid times (a reading's time must fall on the grid)."""
        index = (np.asarray(ts_ns, dtype=np.int64) - self.start_ns) // self.step_ns
        return self.series[(station, parameter)][index]


@dataclass(frozen=True)
class Episode:
    """One stretch of time in which the truth at a station violated one class limit."""

    station: str
    parameter: str
    klass: str
    kind: str  # max | min | range
    limit: float  # for range: the upper bound
    low: float | None  # for range: the lower bound
    unit: str
    start_ns: int
    back_ns: int | None
    worst: float
    worst_ns: int
    ratio: float  # the service's ratio at the worst point: > 1 is a violation

    def as_dict(self) -> dict[str, object]:
        return {
            "station": self.station,
            "parameter": self.parameter,
            "class": self.klass,
            "kind": self.kind,
            "limit": self.limit,
            **({"low": self.low} if self.low is not None else {}),
            "unit": self.unit,
            "from": rfc3339(self.start_ns),
            "back": rfc3339(self.back_ns) if self.back_ns is not None else None,
            "worst": round(self.worst, 6),
            "worst_at": rfc3339(self.worst_ns),
            "ratio": round(self.ratio, 3),
        }


@dataclass(frozen=True)
class GroundTruth:
    """What a scenario truly did: the violation episodes and the faults injected into the readings."""

    scenario: str
    seed: int
    start_ns: int
    end_ns: int
    step_ns: int
    standard: str
    stations: Sequence[Mapping[str, object]]
    episodes: tuple[Episode, ...]
    faults: tuple[Fault, ...] = field(default=())

    def episodes_of(self, station: str, parameter: str, klass: str) -> list[Episode]:
        return [e for e in self.episodes if (e.station, e.parameter, e.klass) == (station, parameter, klass)]

    def as_dict(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "start": rfc3339(self.start_ns),
            "end": rfc3339(self.end_ns),
            "resolution_s": self.step_ns // 1_000_000_000,
            "standard": self.standard,
            "stations": list(self.stations),
            "episodes": [e.as_dict() for e in self.episodes],
            "faults": [
                {
                    "station": f.station,
                    "parameter": f.parameter,
                    "kind": f.kind,
                    "from": rfc3339(f.start_ns),
                    "until": rfc3339(f.end_ns),
                    **({"size": round(f.size, 4)} if f.kind in ("drift", "spike") else {}),
                    **({"flagged": f.flagged} if f.kind == "calibration" else {}),
                }
                for f in self.faults
            ],
        }

    def write(self, path: str | os.PathLike[str]) -> None:
        """JSON with everything; a path ending in .csv gets the episodes only, one per row."""
        if Path(path).suffix.lower() == ".csv":
            columns = (
                "station",
                "parameter",
                "class",
                "kind",
                "limit",
                "low",
                "unit",
                "from",
                "back",
                "worst",
                "worst_at",
                "ratio",
            )
            with open(path, "w", newline="", encoding="utf-8") as f:
                writer = csv.DictWriter(f, columns, lineterminator="\n")
                writer.writeheader()
                for e in self.episodes:
                    writer.writerow({k: ("" if v is None else v) for k, v in e.as_dict().items()})
            return
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.as_dict(), f, ensure_ascii=False, indent=1)
            f.write("\n")


@functools.cache
def gb3838() -> Standard:
    """The shipped GB 3838-2002, loaded once."""
    return load([shipped_path("gb3838-2002.toml")]).standards[0]


def limits(standard: Standard, parameter: str) -> list[Limit]:
    """Every class's evaluable river limit for a parameter; empty for items with none (temperature change)."""
    item = standard.items.get(parameter)
    if item is None or item.kind not in ("max", "min", "range"):
        return []
    return [
        Limit(
            parameter,
            item.kind,
            item.limits[k],
            item.lows.get(k) if item.kind == "range" else None,
            item.unit,
            standard.id,
            k,
            item.source,
        )
        for k in standard.classes
        if k in item.limits
    ]


def episodes(truth: Truth, standard: Standard) -> list[Episode]:
    """Every violation episode of every (station, parameter, class), ordered by start, station, parameter."""
    times = truth.times_ns()
    found: list[Episode] = []
    for (station, parameter), values in truth.series.items():
        for lim in limits(standard, parameter):
            ratio, violated = limit_verdict(lim, values)
            if not violated.any():
                continue
            edges = np.diff(violated.astype(np.int8), prepend=np.int8(0), append=np.int8(0))
            for a, b in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                worst = a + int(np.argmax(ratio[a:b]))
                found.append(
                    Episode(
                        station,
                        parameter,
                        lim.klass,
                        lim.kind,
                        lim.value,
                        lim.low,
                        lim.unit,
                        int(times[a]),
                        int(times[b]) if b < len(times) else None,
                        float(values[worst]),
                        int(times[worst]),
                        float(ratio[worst]),
                    )
                )
    order = {k: i for i, k in enumerate(standard.classes)}
    found.sort(key=lambda e: (e.start_ns, e.station, e.parameter, order[e.klass]))
    return found
