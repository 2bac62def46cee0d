"""The plume forecast of one incident: when the front reaches each station and intake downstream, how high it
peaks there, and whether and how long it exceeds that station's limit.

The model routes an observed concentration curve downstream: the excess over the river's background at the
most complete upstream station is shifted by the travel time of the described reaches (pools slow it),
diluted by the tributaries between, decayed, and spread by dispersion (a Gaussian in time whose variance is
2·D·τ/v²). It is fitted to what the stations have seen, so each new reading refines it:
- speed: the ratio of the observed travel time between the two farthest stations hit to the described one
  scales every described velocity downstream (a dry month runs every reach slower alike);
- attenuation: the observed peak at a downstream station against the peak routed to it from upstream (dosing,
  losses the description lacks), applied per km to the reaches ahead;
- the source curve: the farthest station whose peak has passed; a front station still rising borrows the shape
  routed from upstream, scaled to its own readings.
The band widens with what is unknown: wide while no station has seen its peak, narrow once two have.

Memory: per station one hourly mean per hour seen (at most `MAX_HOURS`, the oldest dropped): O(stations × hours)
per incident, about 16 B per hour; `issue` is O(targets × hours).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from monitor.thresholds.rivers import RiverDescription

NS_PER_HOUR = 3_600 * 10**9
HOURS_PER_DAY = 24.0
MAX_HOURS = 24 * 90  # a station's curve: 90 days of hourly means
PASSED = 0.7  # a peak has passed when the latest hourly mean is under 70 % of the curve's maximum...
PASSED_HOURS = 6  # ...and the maximum is at least this many hours old
FRONT = 0.1  # the front: the first hour the excess reaches 10 % of its peak
SPEED_BOUNDS = (0.2, 5.0)  # observed / described velocity, outside which an observation is not believed
ATTENUATION_BOUNDS = (0.05, 1.0)  # observed / routed peak between two stations: a plume never grows


@dataclass(frozen=True, slots=True)
class StationForecast:
    station: str
    river_km: float
    arrival_ns: int
    peak_ns: int
    peak_value: float
    peak_low: float
    peak_high: float
    limit: float | None
    exceeds: bool
    exceed_from_ns: int | None
    exceed_until_ns: int | None


@dataclass(frozen=True, slots=True)
class Target:
    station: str
    river_km: float
    limit: float | None
    intake: bool


@dataclass
class _Curve:
    """Hourly means of one station's readings: hour index (epoch hours) -> (sum, count)."""

    km: float
    sums: dict[int, tuple[float, int]] = field(default_factory=dict)

    def add(self, ts_ns: np.ndarray, values: np.ndarray) -> None:
        ok = np.isfinite(values)
        hours = ts_ns[ok] // NS_PER_HOUR
        for h, v in zip(hours.tolist(), values[ok].tolist(), strict=True):
            s, n = self.sums.get(h, (0.0, 0))
            self.sums[h] = (s + v, n + 1)
        if len(self.sums) > MAX_HOURS:
            for h in sorted(self.sums)[: len(self.sums) - MAX_HOURS]:
                del self.sums[h]

    def series(self, until_h: int) -> tuple[np.ndarray, np.ndarray]:
        hours = np.array(sorted(h for h in self.sums if h <= until_h), dtype=np.int64)
        means = np.array([self.sums[h][0] / self.sums[h][1] for h in hours.tolist()], dtype=np.float64)
        return hours, means


@dataclass(frozen=True, slots=True)
class _Source:
    """An hourly excess curve placed at a river km, with how much of it was seen rather than borrowed."""

    km: float
    hours: np.ndarray  # epoch hours, contiguous
    excess: np.ndarray
    background: float
    peaked: bool


class Forecaster:
    """One incident's forecast: fed readings and crossings, asked for the forecast at any reading time."""

    def __init__(
        self,
        river: RiverDescription | None,
        parameter: str,
        targets: Sequence[Target],
        default_km_per_day: float = 12.0,
    ) -> None:
        self.river = river
        self.parameter = parameter
        self.targets = sorted(targets, key=lambda t: t.river_km)
        self.default_km_per_day = default_km_per_day
        self.curves: dict[str, _Curve] = {}
        self.hits: dict[str, tuple[float, int]] = {}  # station -> (river km, first confirmed crossing)

    # -- what was seen ----------------------------------------------------------------------------------
    def observe(self, station: str, river_km: float, ts_ns: np.ndarray, values: np.ndarray) -> None:
        """Accepted readings of the incident's parameter at a station of its river, in time order."""
        c = self.curves.get(station)
        if c is None:
            c = self.curves[station] = _Curve(river_km)
        c.add(np.asarray(ts_ns, dtype=np.int64), np.asarray(values, dtype=np.float64))

    def hit(self, station: str, river_km: float, first_ns: int) -> None:
        """A confirmed crossing at a station (the first one counts)."""
        if station not in self.hits:
            self.hits[station] = (river_km, first_ns)

    # -- the forecast -----------------------------------------------------------------------------------
    def issue(self, now_ns: int) -> list[StationForecast]:
        """Every target below the farthest hit and not hit itself, nearest first; from what was seen by now."""
        seen = {s: h for s, h in self.hits.items() if h[1] <= now_ns}
        if not seen:
            return []
        front_km = max(km for km, _ in seen.values())
        now_h = now_ns // NS_PER_HOUR
        speed = self._speed(seen)
        source = self._source(seen, now_h, speed)
        if source is None:
            return []
        attenuation_per_km, spread = self._attenuation(seen, now_h, speed)
        uncertainty = 1.25 if spread >= 2 else 1.6 if spread == 1 else 2.5
        if not source.peaked:
            uncertainty = max(uncertainty, 2.0)
        out = []
        for t in self.targets:
            if t.river_km <= front_km or t.station in seen:
                continue
            out.append(self._route(source, t, speed, attenuation_per_km, uncertainty, now_h))
        return out

    def _travel_days(self, a_km: float, b_km: float, speed: float) -> float:
        """Days from a to b at the fitted speed (the described reaches, or one observed velocity)."""
        if self.river is not None and self.river.reaches:
            return self.river.travel_days(a_km, b_km) / speed
        return (b_km - a_km) / (self.default_km_per_day * speed)

    def _speed(self, seen: Mapping[str, tuple[float, int]]) -> float:
        """Observed over described velocity, from the two farthest stations hit at least 1 km and 1 h apart."""
        ordered = sorted(seen.values())
        for i in range(len(ordered) - 1, 0, -1):
            (b_km, b_ns), (a_km, a_ns) = ordered[i], ordered[i - 1]
            days = (b_ns - a_ns) / (NS_PER_HOUR * HOURS_PER_DAY)
            if b_km - a_km < 1.0 or days < 1.0 / HOURS_PER_DAY:
                continue
            described = self._travel_days(a_km, b_km, 1.0)
            if described <= 0:
                continue
            ratio = described / days
            if SPEED_BOUNDS[0] <= ratio <= SPEED_BOUNDS[1]:
                return ratio
        return 1.0

    def _excess(self, station: str, now_h: int) -> tuple[np.ndarray, np.ndarray, float] | None:
        c = self.curves.get(station)
        if c is None:
            return None
        hours, means = c.series(now_h)
        if len(hours) < 2:
            return None
        if len(means) >= 3:  # a single unscreened spike must not become the plume's peak
            means = np.concatenate(
                [means[:1], np.median(np.stack([means[:-2], means[1:-1], means[2:]]), 0), means[-1:]]
            )
        full = np.arange(hours[0], hours[-1] + 1, dtype=np.int64)
        filled = np.interp(full, hours, means)
        background = float(np.percentile(filled, 5))
        return full, np.maximum(filled - background, 0.0), background

    def _peaked(self, hours: np.ndarray, excess: np.ndarray) -> bool:
        top = int(np.argmax(excess))
        return excess[top] > 0 and hours[-1] - hours[top] >= PASSED_HOURS and excess[-1] < PASSED * excess[top]

    def _source(self, seen: Mapping[str, tuple[float, int]], now_h: int, speed: float) -> _Source | None:
        """The farthest station hit whose peak has passed; a front still rising there scales it to its own."""
        by_km = sorted(seen, key=lambda s: seen[s][0])
        curves = {s: ex for s in by_km if (ex := self._excess(s, now_h)) is not None}
        if not curves:
            return None
        peaked = [s for s in by_km if s in curves and self._peaked(curves[s][0], curves[s][1])]
        front = by_km[-1] if by_km[-1] in curves else max(curves, key=lambda s: seen[s][0])
        if peaked and peaked[-1] == front:
            h, e, bg = curves[front]
            return _Source(seen[front][0], h, e, bg, True)
        if peaked:
            up = peaked[-1]
            h, e, bg = curves[up]
            routed = self._shift(_Source(seen[up][0], h, e, bg, True), seen[front][0], speed, 1.0)
            fh, fe, fbg = curves[front]
            fitted = _fit_shape(routed, fh, fe)
            if fitted is not None:
                return _Source(routed.km, fitted[0], fitted[1], fbg, False)
            return _Source(routed.km, routed.hours, routed.excess, fbg, False)
        # No peak seen anywhere yet: the front's rising curve, mirrored about its latest hour.
        h, e, bg = curves[front]
        mirrored = np.concatenate([e, e[-2::-1]])
        hours = np.arange(h[0], h[0] + len(mirrored), dtype=np.int64)
        return _Source(seen[front][0], hours, mirrored, bg, False)

    def _attenuation(self, seen: Mapping[str, tuple[float, int]], now_h: int, speed: float) -> tuple[float, int]:
        """Per-km factor of observed to routed peaks between pairs of stations whose peaks have passed."""
        done = []
        for s in sorted(seen, key=lambda s: seen[s][0]):
            ex = self._excess(s, now_h)
            if ex is not None and self._peaked(ex[0], ex[1]):
                done.append((seen[s][0], ex))
        logs = []
        for (a_km, (ah, ae, abg)), (b_km, (_, be, _)) in itertools.pairwise(done):
            if b_km - a_km < 1.0:
                continue
            routed = self._shift(_Source(a_km, ah, ae, abg, True), b_km, speed, 1.0)
            top = float(routed.excess.max())
            if top <= 0:
                continue
            ratio = min(max(float(be.max()) / top, ATTENUATION_BOUNDS[0]), ATTENUATION_BOUNDS[1])
            logs.append(math.log(ratio) / (b_km - a_km))
        if not logs:
            return 0.0, 0
        return float(np.mean(logs[-2:])), len(logs)

    def _shift(self, src: _Source, to_km: float, speed: float, factor: float) -> _Source:
        """The source's excess as it would pass `to_km`: later, diluted, decayed and spread."""
        days = max(self._travel_days(src.km, to_km, speed), 0.0)
        dilution, decay, dispersion = 1.0, 0.0, 0.0
        if self.river is not None and self.river.reaches:
            dilution = self.river.dilution(src.km, to_km)
            mid = (src.km + to_km) / 2.0
            decay, dispersion = self.river.decay_at(mid), self.river.dispersion_at(mid)
        else:
            dispersion = 16.0
        lag_h = round(days * HOURS_PER_DAY)
        excess = src.excess * (factor * math.exp(-decay * days) / dilution)
        velocity = (to_km - src.km) / days if days > 0 else 0.0
        if velocity > 0 and dispersion > 0:
            sigma_h = math.sqrt(2.0 * dispersion * days) / velocity * HOURS_PER_DAY
            if sigma_h >= 1.0:
                half = int(min(4 * sigma_h, 24 * 30))
                k = np.exp(-0.5 * (np.arange(-half, half + 1) / sigma_h) ** 2)
                excess = np.convolve(excess, k / k.sum())
                hours = np.arange(src.hours[0] - half, src.hours[0] - half + len(excess), dtype=np.int64) + lag_h
                return _Source(to_km, hours, excess, src.background, src.peaked)
        return _Source(to_km, src.hours + lag_h, excess, src.background, src.peaked)

    def _route(
        self, src: _Source, t: Target, speed: float, attenuation_per_km: float, uncertainty: float, now_h: int
    ) -> StationForecast:
        factor = math.exp(attenuation_per_km * (t.river_km - src.km)) if attenuation_per_km else 1.0
        at = self._shift(src, t.river_km, speed, factor)
        values = at.excess + src.background
        top = int(np.argmax(at.excess))
        peak_excess = float(at.excess[top])
        front = int(np.argmax(at.excess >= FRONT * peak_excess)) if peak_excess > 0 else top
        peak = float(values[top])
        exceeds, start, end = False, None, None
        if t.limit is not None:
            over = np.flatnonzero(values > t.limit)
            if len(over):
                exceeds = True
                start = int(at.hours[over[0]]) * NS_PER_HOUR
                end = int(at.hours[over[-1]] + 1) * NS_PER_HOUR
        return StationForecast(
            t.station,
            t.river_km,
            int(at.hours[front]) * NS_PER_HOUR,
            int(at.hours[top]) * NS_PER_HOUR,
            peak,
            src.background + peak_excess / uncertainty,
            src.background + peak_excess * uncertainty,
            t.limit,
            exceeds,
            start,
            end,
        )

    # -- the ledger ---------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "default_km_per_day": self.default_km_per_day,
            "hits": {s: [km, ns] for s, (km, ns) in self.hits.items()},
            "curves": {s: [c.km, [[h, sv, n] for h, (sv, n) in c.sums.items()]] for s, c in self.curves.items()},
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any], river: RiverDescription | None, targets: Sequence[Target]) -> Forecaster:
        f = cls(river, str(d["parameter"]), targets, float(d.get("default_km_per_day", 12.0)))
        f.hits = {str(s): (float(km), int(ns)) for s, (km, ns) in d.get("hits", {}).items()}
        for s, (km, rows) in d.get("curves", {}).items():
            f.curves[str(s)] = _Curve(float(km), {int(h): (float(sv), int(n)) for h, sv, n in rows})
        return f


LAGS_H = range(-96, 97, 2)  # how far the routed shape may be moved in time to fit the front's readings


def _fit_shape(routed: _Source, hours: np.ndarray, observed: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """The routed shape moved in time and scaled to what the front station has read so far (least squares)."""
    if routed.excess.max() <= 0 or observed.max() <= 0:
        return None
    best: tuple[float, int, float] | None = None
    for lag in LAGS_H:
        idx = hours - (routed.hours[0] + lag)
        ok = (idx >= 0) & (idx < len(routed.excess))
        pred = np.where(ok, routed.excess[np.clip(idx, 0, len(routed.excess) - 1)], 0.0)
        denom = float(pred @ pred)
        if denom <= 0:
            continue
        scale = min(max(float(pred @ observed) / denom, ATTENUATION_BOUNDS[0]), ATTENUATION_BOUNDS[1])
        resid = float(np.sum((observed - scale * pred) ** 2))
        if best is None or resid < best[0]:
            best = (resid, lag, scale)
    if best is None:
        return None
    _, lag, scale = best
    return routed.hours + lag, routed.excess * scale
