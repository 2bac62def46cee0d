"""A per-series ring buffer of readings with prefix sums: rolling means, slopes and the spike screen's history."""

from __future__ import annotations

import numpy as np

from monitor.thresholds import NS_PER_HOUR


def window_bounds(ring_ts: np.ndarray, ts: np.ndarray, window_ns: int) -> np.ndarray:
    """Index (into ring_ts) of the first reading of each window (t − window, t]."""
    return np.searchsorted(ring_ts, ts - window_ns, side="right")


class Ring:
    """A per-series ring buffer of (time, value) kept contiguous in numpy arrays, with prefix sums.

    Appending is amortised O(1) per reading: the live part moves to the front only when the arrays are full,
    and the arrays double when it fills more than half of them. Window sums (and the sums of t, t², t·v for
    a least-squares slope) come from prefix sums, so any window costs O(1) per reading. Memory: two to four
    times the readings kept, 8 bytes each per array. `since` is the time from which every accepted reading is
    kept, which is what decides whether a window has filled.
    """

    __slots__ = ("_c", "_ct", "_ctt", "_ctv", "_ts", "_v", "base", "head", "moments", "since", "sums", "tail")

    def __init__(self, capacity: int = 16, sums: bool = True, moments: bool = False) -> None:
        self.sums = sums
        self.moments = moments
        self.head = self.tail = 0
        self.base = 0
        self.since: int | None = None
        self._alloc(capacity)

    def _alloc(self, capacity: int) -> None:
        self._ts = np.empty(capacity, dtype=np.int64)
        self._v = np.empty(capacity, dtype=np.float64)
        n = capacity + 1 if self.sums else 0
        self._c = np.zeros(n)
        m = capacity + 1 if self.moments else 0
        self._ct, self._ctt, self._ctv = np.zeros(m), np.zeros(m), np.zeros(m)

    def __len__(self) -> int:
        return self.tail - self.head

    @property
    def ts(self) -> np.ndarray:
        return self._ts[self.head : self.tail]

    @property
    def values(self) -> np.ndarray:
        return self._v[self.head : self.tail]

    def extend(self, ts: np.ndarray, values: np.ndarray) -> int:
        """Append readings (newer than the last one); returns the ring index of the first appended."""
        m = len(ts)
        if self.since is None and m:
            self.since = int(ts[0])
        if self.tail + m > len(self._ts):
            self._compact(m, int(ts[0]) if m else 0)
        t0 = self.tail
        self._ts[t0 : t0 + m] = ts
        self._v[t0 : t0 + m] = values
        if self.sums:
            self._c[t0 + 1 : t0 + m + 1] = self._c[t0] + np.cumsum(values)
        if self.moments:
            t = (ts - self.base) / NS_PER_HOUR
            self._ct[t0 + 1 : t0 + m + 1] = self._ct[t0] + np.cumsum(t)
            self._ctt[t0 + 1 : t0 + m + 1] = self._ctt[t0] + np.cumsum(t * t)
            self._ctv[t0 + 1 : t0 + m + 1] = self._ctv[t0] + np.cumsum(t * values)
        self.tail += m
        return t0 - self.head

    def _compact(self, incoming: int, first_ts: int) -> None:
        live_ts, live_v = self.ts.copy(), self.values.copy()
        need = len(live_ts) + incoming
        capacity = len(self._ts)
        if need > capacity // 2:
            capacity = max(16, 2 * need)
        self._alloc(capacity)
        self.head, self.tail = 0, 0
        self.base = int(live_ts[0]) if len(live_ts) else first_ts
        since = self.since
        if len(live_ts):
            self.extend(live_ts, live_v)
        self.since = since

    def trim_before(self, cutoff_ns: int) -> None:
        """Forget readings older than `cutoff_ns`; the ring stays complete from there on."""
        k = int(np.searchsorted(self.ts, cutoff_ns, side="left"))
        if k:
            self.head += k
            self.since = cutoff_ns if self.since is None else max(self.since, cutoff_ns)

    def keep_last(self, count: int) -> None:
        if len(self) > count:
            self.head = self.tail - count

    def window_sums(self, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, ...]:
        """(n, Σv, Σt, Σt², Σt·v) over ring positions [left, right) per row; t in hours since `base`."""
        a, b = left + self.head, right + self.head
        n = (b - a).astype(np.float64)
        sv = self._c[b] - self._c[a]
        if not self.moments:
            return n, sv
        return n, sv, self._ct[b] - self._ct[a], self._ctt[b] - self._ctt[a], self._ctv[b] - self._ctv[a]
