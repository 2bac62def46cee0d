"""Per-series tallies over the readings: time above each class limit, measured exceedances, plot buckets.

Why numpy, one chunk at a time: they are counted for every reading of the data, beside the rules, so the
cost per reading must be a few array operations and the memory independent of the data's length.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from monitor.offline.dataset import NS_PER_HOUR, NS_PER_S, Columns, Dataset, Exceedance
from monitor.offline.variants import Variant
from monitor.thresholds import DEFAULT_DL_FLAGS, DEFAULT_IGNORE_FLAGS, DEFAULT_SUSPECT_FLAGS, Limit, ThresholdSet

HOLD_NS = 6 * NS_PER_HOUR  # a reading stands for the time until the next one of its series, at most this long
PLOT_BUCKETS = 1500  # per series: min/mean/max per time bucket, enough for a plot whatever the data's length
FLAGGED_KEEP = 50_000  # instrument-flagged readings kept for the plots (grey crosses)
NOT_RIVER_FLAGS = DEFAULT_IGNORE_FLAGS | DEFAULT_SUSPECT_FLAGS  # never counted as a measurement of the river


def class_limits(t: ThresholdSet, station: str, parameter: str) -> list[Limit]:
    """The limit of every class of the first standard that classes this parameter at this station (for bands
    and time above each class); empty when none does."""
    st = t.stations.get(station)
    lake = st is not None and st.water_body == "lake"
    for std in t.standards_for(station):
        item = std.items.get(parameter)
        if item is None or item.kind not in ("max", "min", "range") or not std.classes:
            continue
        table = item.lake_limits if lake and item.lake_limits else item.limits
        out = [
            Limit(
                parameter,
                item.kind,
                table[k],
                item.lows.get(k) if item.kind == "range" else None,
                item.unit,
                std.id,
                k,
                item.source,
            )
            for k in std.classes
            if k in table
        ]
        if out:
            return out
    return []


def station_classes(variants: Sequence[Variant], ds: Dataset, default_class: str) -> dict[str, set[str]]:
    """The classes the variants hold each station to (a [classes] policy can differ between variants)."""
    return {st: {v.thresholds.class_of(st, default_class)[0] for v in variants} for st in ds.stations}


def classes_of(t: ThresholdSet) -> list[str]:
    names: list[str] = []
    for std in t.standards:
        names += [c for c in std.classes if c not in names]
    return names


class SeriesStats:
    """Per-series tallies, streamed one chunk at a time in numpy: time above each class limit, measured
    exceedances, reading counts, and min/mean/max per time bucket for the plots.

    Only readings of the river count: instrument flags the service ignores or suspects are left out (and kept
    apart for the plots); a below-detection-limit reading counts as compliant with a maximum. A reading stands
    for the time until the next one of its series, at most HOLD_NS, so a gap is not counted as time above.
    Memory: O(series × classes) plus O(series × PLOT_BUCKETS) when plots are wanted.
    """

    def __init__(
        self,
        ds: Dataset,
        thresholds: ThresholdSet,
        buckets: int = 0,
        hold_ns: int = HOLD_NS,
        track: dict[str, set[str]] | None = None,
    ) -> None:
        self.ds = ds
        self.classes = classes_of(thresholds) or ["I", "II", "III", "IV", "V"]
        self.P = len(ds.parameters)
        n, k = len(ds.stations) * self.P, len(self.classes)
        self.n = n
        self.low = np.full((n, k), -np.inf)
        self.high = np.full((n, k), np.inf)
        self.has = np.zeros((n, k), dtype=bool)
        self.limits: dict[int, list[Limit]] = {}
        for si, st in enumerate(ds.stations):
            for pi, pa in enumerate(ds.parameters):
                s = si * self.P + pi
                lims = class_limits(thresholds, st, pa)
                self.limits[s] = lims
                for lim in lims:
                    ki = self.classes.index(lim.klass) if lim.klass in self.classes else -1
                    if ki < 0:
                        continue
                    self.has[s, ki] = True
                    if lim.kind in ("max", "range"):
                        self.high[s, ki] = lim.value
                    if lim.kind == "min":
                        self.low[s, ki] = lim.value
                    if lim.kind == "range" and lim.low is not None:
                        self.low[s, ki] = lim.low
        # Measured exceedances are kept for the classes the variants hold each station to (`track`), not for
        # every class: a series that hovers at the class I limit would otherwise flap into millions of them.
        self.track = np.ones((n, k), dtype=bool)
        if track is not None:
            for si, st in enumerate(ds.stations):
                want = np.array([c in track.get(st, set()) for c in self.classes])
                self.track[si * self.P : (si + 1) * self.P] = want
        lowered = [f.lower() for f in ds.flags]
        self.not_river = np.array([f in NOT_RIVER_FLAGS for f in lowered] + [False], dtype=bool)  # [-1]: none
        self.below_dl = np.array([f in DEFAULT_DL_FLAGS for f in lowered] + [False], dtype=bool)
        self.hold_ns = hold_ns
        self.count = np.zeros(n, dtype=np.int64)
        self.first_ts = np.full(n, -1, dtype=np.int64)
        self.last_ts = np.full(n, -1, dtype=np.int64)
        self.prev_ts = np.full(n, -1, dtype=np.int64)
        self.prev_viol = np.zeros((n, k), dtype=bool)
        self.above_s = np.zeros((n, k))
        self._marks: list[np.ndarray] = []  # rows (series, class, ts, +1 start / 0 end)
        self.buckets = buckets = min(buckets, max(100, 20_000_000 // max(n, 1))) if buckets else 0
        if buckets:
            span = max(ds.end_ns - ds.start_ns, 1)
            self.width = max(-(-span // buckets), 1)
            self.bmin = np.full(n * buckets, np.inf)
            self.bmax = np.full(n * buckets, -np.inf)
            self.bsum = np.zeros(n * buckets)
            self.bcnt = np.zeros(n * buckets, dtype=np.int64)
        self.flagged: list[Columns] = []
        self._flagged_n = 0

    def add(self, c: Columns) -> None:
        sid = c.station.astype(np.int64) * self.P + c.parameter
        self.count += np.bincount(sid, minlength=self.n)
        uniq, first = np.unique(sid, return_index=True)
        fresh = self.first_ts[uniq] < 0
        self.first_ts[uniq[fresh]] = c.ts[first[fresh]]
        self.last_ts[sid] = c.ts  # time order: the last write per series wins
        river = ~self.not_river[c.flag]
        if self._flagged_n < FLAGGED_KEEP and not river.all():
            bad = c.take(~river)
            self.flagged.append(bad)
            self._flagged_n += len(bad)
        if not river.all():
            c, sid = c.take(river), sid[river]
        if not len(c):
            return
        order = np.argsort(sid, kind="stable")  # by series, each in time order
        s, ts, v = sid[order], c.ts[order], c.value[order]
        dl = self.below_dl[c.flag[order]]
        over = np.where(dl, 0.0, v)[:, None] > self.high[s]
        viol = self.has[s] & (over | (v[:, None] < self.low[s]))
        head = np.ones(len(s), dtype=bool)
        head[1:] = s[1:] != s[:-1]
        prev_t = np.empty_like(ts)
        prev_t[1:] = ts[:-1]
        prev_t[head] = self.prev_ts[s[head]]
        prev_v = np.empty_like(viol)
        prev_v[1:] = viol[:-1]
        prev_v[head] = self.prev_viol[s[head]]
        dt = np.where(prev_t >= 0, np.minimum(ts - prev_t, self.hold_ns), 0) / NS_PER_S
        for k in range(viol.shape[1]):
            w = prev_v[:, k]
            if w.any():
                self.above_s[:, k] += np.bincount(s[w], weights=dt[w], minlength=self.n)
        changes = (viol != prev_v) & self.track[s]
        if changes.any():
            row, cls = np.nonzero(changes)
            self._marks.append(np.stack([s[row], cls, ts[row], viol[row, cls].astype(np.int64)], axis=1))
        tail = np.ones(len(s), dtype=bool)
        tail[:-1] = s[:-1] != s[1:]
        self.prev_ts[s[tail]] = ts[tail]
        self.prev_viol[s[tail]] = viol[tail]
        if self.buckets:
            b = np.clip((ts - self.ds.start_ns) // self.width, 0, self.buckets - 1)
            key = s * self.buckets + b
            np.minimum.at(self.bmin, key, v)
            np.maximum.at(self.bmax, key, v)
            np.add.at(self.bsum, key, v)
            np.add.at(self.bcnt, key, 1)

    def series(self, station: str, parameter: str) -> int:
        return self.ds.stations.index(station) * self.P + self.ds.parameters.index(parameter)

    def exceedances(self) -> list[Exceedance]:
        """Measured exceedances: from the first reading over a class limit to the first reading back under it."""
        if not self._marks:
            return []
        m = np.concatenate(self._marks)
        m = m[np.lexsort((m[:, 2], m[:, 1], m[:, 0]))]
        out = []
        open_at: dict[tuple[int, int], int] = {}
        for s, k, t, start in m.tolist():
            if start:
                open_at[(s, k)] = t
            elif (s, k) in open_at:
                out.append(self._exceedance(s, k, open_at.pop((s, k)), t))
        out += [self._exceedance(s, k, t, None) for (s, k), t in open_at.items()]
        out.sort(key=lambda e: (e.start_ns, e.station, e.parameter, e.klass))
        return out

    def _exceedance(self, s: int, k: int, start: int, back: int | None) -> Exceedance:
        return Exceedance(
            self.ds.stations[s // self.P], self.ds.parameters[s % self.P], self.classes[k], start, back, "measured"
        )

    def plot_series(self, s: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(bucket mid times, min, mean, max) of the non-empty buckets of series s."""
        sl = slice(s * self.buckets, (s + 1) * self.buckets)
        cnt = self.bcnt[sl]
        nz = np.flatnonzero(cnt)
        t = self.ds.start_ns + nz * self.width + self.width // 2
        return t, self.bmin[sl][nz], self.bsum[sl][nz] / cnt[nz], self.bmax[sl][nz]

    def flagged_points(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        if not self.flagged:
            return np.empty(0, np.int64), np.empty(0)
        c = Columns(
            *(
                np.concatenate([getattr(f, a) for f in self.flagged])
                for a in ("ts", "station", "parameter", "value", "flag")
            )
        )
        mine = (c.station.astype(np.int64) * self.P + c.parameter) == s
        return c.ts[mine], c.value[mine]
