"""The analyser cycle of a series: the median of its last few reading intervals.

An unconfirmed alert says when the next reading is due ("re-check at 10:00"), and clearing waits for one
cycle of calm. Stations report every 1-4 h depending on the analyser, and a station file rarely says so, so
the cycle is learnt from the readings the alert lifecycle sees. The median of the last three intervals
ignores one missed reading (a doubled interval) and one interval that spans a stretch the fast path judged
without the alert lifecycle. State O(1) per series: the last time and three intervals, one tuple.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

_KEEP = 3  # intervals kept per series


class Cadence:
    """The observed reporting interval per (station, parameter); `fallback` (a station file's `expect`) is used
    until a series has shown an interval of its own."""

    __slots__ = ("_seen", "fallback")

    def __init__(self, fallback: Mapping[tuple[str, str], int] | None = None) -> None:
        self._seen: dict[tuple[str, str], tuple[int, ...]] = {}  # (last ts, interval, interval, ...)
        self.fallback: Mapping[tuple[str, str], int] = fallback or {}

    def observe(self, series: tuple[str, str], ts: np.ndarray) -> None:
        """Readings of a series in time order; those at or before the last one seen change nothing."""
        old = self._seen.get(series)
        last = old[0] if old is not None else None
        if last is not None:
            ts = ts[ts > last]
        if not len(ts):
            return
        steps = np.diff(ts) if last is None else np.diff(np.concatenate(([last], ts)))
        kept = (*(old[1:] if old is not None else ()), *(int(s) for s in steps[-_KEEP:]))
        self._seen[series] = (int(ts[-1]), *kept[-_KEEP:])

    def cycle(self, series: tuple[str, str]) -> int:
        """The analyser cycle in ns; 0 when unknown (no two readings seen and no expected interval)."""
        got = self._seen.get(series)
        if got is not None and len(got) > 1:
            return int(np.median(got[1:]))
        return int(self.fallback.get(series, 0))

    def cycles(self, series: tuple[str, str], ts: np.ndarray) -> np.ndarray:
        """The cycle known at each reading of `ts` (time order): from the intervals up to and including that
        reading, never a later one, so an alert's "re-check at" and clearing hold are the same however the
        readings were batched. Call before `observe` with the same readings. O(len(ts))."""
        old = self._seen.get(series)
        prior = np.array(old[1:] if old is not None else (), dtype=np.float64)
        times = np.concatenate(([old[0]], ts)) if old is not None else ts
        steps = np.diff(times).astype(np.float64)
        steps[steps <= 0] = np.nan  # late or repeated readings teach nothing
        intervals = np.concatenate((prior, steps))
        valid = ~np.isnan(intervals)
        known = np.cumsum(valid)  # valid intervals up to each position
        # the interval that ends at reading k sits at position len(prior) + k (k - 1 without a last time)
        pos = len(prior) + np.arange(len(ts)) - (0 if old is not None else 1)
        m = np.where(pos >= 0, known[np.maximum(pos, 0)] if len(intervals) else 0, len(prior))
        padded = np.concatenate((np.full(_KEEP - 1, np.nan), intervals[valid]))
        out = np.full(len(ts), float(self.fallback.get(series, 0)))
        have = m > 0
        if have.any():
            rows = sliding_window_view(padded, _KEEP)[m[have] - 1]
            out[have] = np.nanmedian(rows, axis=1)
        return out.astype(np.int64)

    def forget(self, series: tuple[str, str]) -> None:
        self._seen.pop(series, None)
