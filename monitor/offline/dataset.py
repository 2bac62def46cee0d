"""Readings as numpy columns: what every source yields, the replay consumes and the tallies count.

Why columns: a year of 1-minute data is hundreds of millions of readings; as parallel numpy arrays (time,
station code, parameter code, value, flag code) they are sorted, sliced into batches and tallied without a
Python object per reading, and are turned into `Reading` tuples (the Evaluator's input) one batch at a time,
so memory stays one batch for any length of data.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from monitor.domain.reading import Reading
from simulators.faults import Fault

NS_PER_S = 1_000_000_000
NS_PER_MIN = 60 * NS_PER_S
NS_PER_HOUR = 60 * NS_PER_MIN


@dataclass
class Columns:
    """Readings as parallel numpy arrays, in time order: what every source yields and the engine consumes."""

    ts: np.ndarray  # int64 epoch ns
    station: np.ndarray  # int32 index into Dataset.stations
    parameter: np.ndarray  # int32 index into Dataset.parameters
    value: np.ndarray  # float64, in the parameter's standard unit
    flag: np.ndarray  # int16 index into Dataset.flags, -1 for none

    def __len__(self) -> int:
        return len(self.ts)

    def take(self, index: np.ndarray | slice) -> Columns:
        return Columns(self.ts[index], self.station[index], self.parameter[index], self.value[index], self.flag[index])


@dataclass(frozen=True)
class Exceedance:
    """A stretch of time in which a series violated one class limit: from the ground truth or the readings."""

    station: str
    parameter: str
    klass: str
    start_ns: int
    back_ns: int | None  # first time compliant again; None: still violated at the end of the data
    source: str  # "truth" | "measured"
    worst: float = math.nan

    def end(self, data_end_ns: int) -> int:
        return self.back_ns if self.back_ns is not None else data_end_ns


@dataclass
class Dataset:
    """Readings and what is known about them. In memory (`columns`) or streamed (`generate`, for long runs)."""

    label: str
    stations: list[str]
    parameters: list[str]
    flags: list[str]
    start_ns: int
    end_ns: int
    count: int
    columns: Columns | None = None
    generate: Callable[[int], Iterator[Columns]] | None = None
    truth: list[Exceedance] | None = None
    notes: list[str] = field(default_factory=list)
    faults: list[Fault] | None = None  # the injected instrument faults, when the data is a scenario's
    _cadences: dict[tuple[str, str], int] | None = field(default=None, repr=False)

    def cadences(self) -> dict[tuple[str, str], int]:
        """Per series, its analyser cycle: the median time between its readings (ns), which outliers such as a
        gap or a doubled reading do not move; the unit latencies are counted in. Empty for a streamed Dataset."""
        if self._cadences is None:
            self._cadences = {} if self.columns is None else _cadences(self.columns, self.stations, self.parameters)
        return self._cadences

    def chunks(self, size: int) -> Iterator[Columns]:
        if self.generate is not None:
            yield from self.generate(size)
            return
        assert self.columns is not None
        for i in range(0, len(self.columns), size):
            yield self.columns.take(slice(i, i + size))


def from_readings(
    readings: Sequence[Reading],
    label: str,
    start_ns: int | None = None,
    end_ns: int | None = None,
    truth: list[Exceedance] | None = None,
) -> Dataset:
    """A Dataset from Reading tuples, put in time order (stable: ties keep their arrival order, as the journal)."""
    n = len(readings)
    st_codes: dict[str, int] = {}
    pa_codes: dict[str, int] = {}
    fl_codes: dict[str | None, int] = {None: -1}
    station = np.fromiter((st_codes.setdefault(r.station, len(st_codes)) for r in readings), np.int32, n)
    parameter = np.fromiter((pa_codes.setdefault(r.parameter, len(pa_codes)) for r in readings), np.int32, n)
    flag = np.fromiter((fl_codes.setdefault(r.flag, len(fl_codes) - 1) for r in readings), np.int16, n)
    ts = np.fromiter((r.ts_ns for r in readings), np.int64, n)
    value = np.fromiter((r.value for r in readings), np.float64, n)
    order = np.argsort(ts, kind="stable")
    cols = Columns(ts, station, parameter, value, flag).take(order)
    flags = [f for f in fl_codes if f is not None]
    first = int(cols.ts[0]) if n else 0
    last = int(cols.ts[-1]) + 1 if n else 0
    return Dataset(
        label,
        list(st_codes),
        list(pa_codes),
        flags,
        first if start_ns is None else start_ns,
        last if end_ns is None else max(end_ns, last),
        n,
        columns=cols,
        truth=truth,
    )


_NEW_READING = functools.partial(tuple.__new__, Reading)  # Reading(*t) without the Python-level __new__


def to_readings(c: Columns, stations: np.ndarray, parameters: np.ndarray, flags: np.ndarray) -> list[Reading]:
    """Columns to the Evaluator's input type; object-array look-ups, tolist and zip keep it at C speed."""
    return list(
        map(
            _NEW_READING,
            zip(
                stations[c.station].tolist(),
                parameters[c.parameter].tolist(),
                c.ts.tolist(),
                c.value.tolist(),
                flags[c.flag + 1].tolist(),
                strict=True,
            ),
        )
    )


def clip(truth: list[Exceedance], lo: int, hi: int) -> list[Exceedance]:
    """The exceedances inside [lo, hi): one already under way at lo starts at lo; one still on at hi has no back."""
    out = []
    for e in truth:
        if e.start_ns >= hi or (e.back_ns is not None and e.back_ns <= lo):
            continue
        back = e.back_ns if e.back_ns is not None and e.back_ns < hi else None
        out.append(Exceedance(e.station, e.parameter, e.klass, max(e.start_ns, lo), back, e.source, e.worst))
    return out


def _cadences(c: Columns, stations: Sequence[str], parameters: Sequence[str]) -> dict[tuple[str, str], int]:
    """The median interval of every series with at least two readings, in one sort."""
    if len(c) < 2:
        return {}
    series = c.station.astype(np.int64) * max(1, len(parameters)) + c.parameter
    order = np.lexsort((c.ts, series))
    s, ts = series[order], c.ts[order]
    same = s[1:] == s[:-1]
    gaps, keys = np.diff(ts)[same], s[1:][same]
    out: dict[tuple[str, str], int] = {}
    if not len(gaps):
        return out
    bounds = np.flatnonzero(np.diff(keys)) + 1
    for part_keys, part in zip(np.split(keys, bounds), np.split(gaps, bounds), strict=True):
        k = int(part_keys[0])
        positive = part[part > 0]
        if len(positive):
            out[(stations[k // max(1, len(parameters))], parameters[k % max(1, len(parameters))])] = int(
                np.median(positive)
            )
    return out
