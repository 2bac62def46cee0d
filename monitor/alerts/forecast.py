"""The plume forecast of one incident: when the front reaches each station and intake downstream, how high it
peaks there, and whether and how long it exceeds that station's limit.

The model routes an observed concentration curve downstream: the excess over the river's background at an
upstream station is delayed and spread by the travel-time distribution of the described reaches (an inverse
Gaussian: mean travel time, variance 2·D·L/v³ summed over the reaches; skewed, so a slow, dispersive pool's
fore-run arrives early and its tail late, as a pool's does), diluted by the tributaries between and decayed.
It is fitted to what the stations have seen, so each new reading refines it:
- speed: the ratio to the described velocities at which the upstream curve, routed, crosses the downstream
  station's limit when that station did (the two farthest stations hit); a dry month runs every reach
  slower alike, its dispersion in proportion (`_spread`); a pool between two dams spreads as a closed vessel;
- treatments: the described dosing points known at the forecast's time (running, or planned ahead) remove
  their share of the load that passes them while they run;
- attenuation: the observed peak at a downstream station against the peak routed to it from upstream (dosing,
  losses the description lacks), applied per km to the reaches ahead;
- the source curve: the farthest station whose peak has passed, its falling limb continued to zero at its
  mean rate since the peak (the mass still to come past it); a front station still rising borrows the shape
  routed from upstream, scaled to its own readings; while no station has seen its peak pass, the curve that
  says most about the front (routed to it, the highest): one falling from a peak at least PASSED_HOURS old
  goes on falling, one still rising is held at its highest for HOLD_HOURS.
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

from monitor.thresholds.rivers import RiverDescription, Treatment

NS_PER_HOUR = 3_600 * 10**9
HOURS_PER_DAY = 24.0
MAX_HOURS = 24 * 90  # a station's curve: 90 days of hourly means
PASSED = 0.7  # a peak has passed when the latest hourly mean is under 70 % of the curve's maximum...
PASSED_HOURS = 6  # ...and the maximum is at least this many hours old
HOLD_HOURS = 24 * 10  # a curve that has not peaked anywhere is held at its highest for this long
FRONT = 0.1  # the front: the first hour the excess reaches 10 % of its peak
SPEED_BOUNDS = (0.2, 5.0)  # observed / described velocity, outside which an observation is not believed
SPEED_GRID = tuple(float(x) for x in np.geomspace(*SPEED_BOUNDS, 41))  # the fit's candidates, 8 % apart
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
        self._speed_cache: dict[tuple[str, str, int], float | None] = {}  # (up, down, crossing) -> fitted speed
        self._now_ns = 0  # the time of the forecast being issued: which dosing points are running

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
        self._now_ns = now_ns
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
        """Observed over described velocity, from the two farthest stations hit at least 1 km and 1 h apart.

        Fitted on the crossing, not on the ratio of crossing times: the upstream curve routed at the fitted
        speed (with the described dispersion) crosses the downstream station's limit when that station did.
        Why: a limit that is a few per cent of the peak is crossed by the dispersed fore-run of the plume,
        which outruns the water in a slow pool (Lalang to Yemao: the crossings alone said 2.4 times the
        pools' speed, and Luodong was then told 70 h early). Where the downstream limit is unknown, the ratio
        of crossing times is used."""
        ordered = sorted((km, ns, s) for s, (km, ns) in seen.items())
        limits = {t.station: t.limit for t in self.targets}
        for i in range(len(ordered) - 1, 0, -1):
            (b_km, b_ns, b), (a_km, a_ns, a) = ordered[i], ordered[i - 1]
            days = (b_ns - a_ns) / (NS_PER_HOUR * HOURS_PER_DAY)
            if b_km - a_km < 1.0 or days < 1.0 / HOURS_PER_DAY:
                continue
            described = self._travel_days(a_km, b_km, 1.0)
            if described <= 0:
                continue
            fitted = self._speed_from_crossing(a, a_km, b, b_km, b_ns, limits.get(b))
            ratio = fitted if fitted is not None else described / days
            if SPEED_BOUNDS[0] <= ratio <= SPEED_BOUNDS[1]:
                return ratio
        return 1.0

    def _speed_from_crossing(
        self, a: str, a_km: float, b: str, b_km: float, b_ns: int, limit: float | None
    ) -> float | None:
        """The speed ratio at which a's curve, routed to b, first exceeds b's limit nearest b's crossing hour.

        A search over SPEED_GRID, not a bisection: in a very dispersive pool the routed crossing is not
        monotonic in the speed (slower water spreads more, and its fore-run can come earlier). Only a's curve
        up to b's crossing decides it, so the answer is kept per crossing."""
        key = (a, b, b_ns)
        if key in self._speed_cache:
            return self._speed_cache[key]
        b_h = b_ns // NS_PER_HOUR
        up, down = self._excess(a, b_h), self._excess(b, b_h)
        fitted = None
        if limit is not None and up is not None:
            background = down[2] if down is not None else up[2]
            level = limit - background
            hours, excess, _ = up
            if level > 0 and float(excess.max()) > level:
                src = _Source(a_km, hours, excess, background, True)
                best: tuple[float, float] | None = None
                for ratio in SPEED_GRID:
                    at = self._shift(src, b_km, ratio, 1.0, b_ns)
                    over = np.flatnonzero(at.excess > level)
                    if len(over):
                        miss = abs(float(at.hours[over[0]]) - b_h)
                        if best is None or miss < best[0]:
                            best = (miss, ratio)
                described_h = self._travel_days(a_km, b_km, 1.0) * HOURS_PER_DAY
                if best is not None and best[0] <= max(3.0, 0.1 * described_h):
                    fitted = best[1]
        self._speed_cache[key] = fitted
        return fitted

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
            return _Source(seen[front][0], *_with_tail(h, e), bg, True)
        if peaked:
            up = peaked[-1]
            h, e, bg = curves[up]
            routed = self._shift(_Source(seen[up][0], *_with_tail(h, e), bg, True), seen[front][0], speed, 1.0)
            fh, fe, fbg = curves[front]
            fitted = _fit_shape(routed, fh, fe)
            if fitted is not None:
                return _Source(routed.km, fitted[0], fitted[1], fbg, False)
            return _Source(routed.km, routed.hours, routed.excess, fbg, False)
        # No peak seen anywhere yet: a rising curve held at its highest hourly mean for HOLD_HOURS. Why not
        # the front's curve mirrored about its latest hour (a peak now, the least it can be): a spill still
        # rising at every station is as likely a long release; a mirrored curve routed downstream arrived
        # days late and far too low. Of the stations hit, the one whose held curve routed to the front is
        # highest: the front station has only just crossed, the stations above it know more of the plume.
        best: tuple[float, _Source] | None = None
        for s in by_km:
            if s not in curves:
                continue
            h, e, bg = curves[s]
            if h[-1] - h[int(np.argmax(e))] >= PASSED_HOURS:  # falling, not yet under PASSED: it goes on falling
                src = _Source(seen[s][0], *_with_tail(h, e), bg, False)
            else:
                held = np.concatenate([e, np.full(HOLD_HOURS, float(e.max()))])
                src = _Source(seen[s][0], np.arange(h[0], h[0] + len(held), dtype=np.int64), held, bg, False)
            top = float(self._shift(src, seen[front][0], speed, 1.0).excess.max())
            if best is None or top > best[0]:
                best = (top, src)
        assert best is not None
        return best[1]

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
            routed = self._shift(_Source(a_km, *_with_tail(ah, ae), abg, True), b_km, speed, 1.0)
            top = float(routed.excess.max())
            if top <= 0:
                continue
            ratio = min(max(float(be.max()) / top, ATTENUATION_BOUNDS[0]), ATTENUATION_BOUNDS[1])
            logs.append(math.log(ratio) / (b_km - a_km))
        if not logs:
            return 0.0, 0
        return float(np.mean(logs[-2:])), len(logs)

    def _spread(self, a_km: float, b_km: float, speed: float) -> float:
        """Variance (days²) of the travel time from a to b: 2·D·L/v³ summed over the reaches crossed, the
        fitted speed scaling v and D alike (Fischer's D grows with the velocity: each reach keeps its
        Péclet number, so a slower river stretches the kernel in time without changing its shape), and
        each pool between two dams a closed vessel (`_pool_spread`).

        Why both: the speed is fitted to a crossing, and with D fixed slower water spreads so much more
        (1/speed³) that its fore-run comes earlier, so the fit mixed speed with what the kernel got wrong
        about a dammed pool's fore-run. Lalang to Yemao, where the simulated pools run 1.04 times the
        described speed, the fit found 0.67 and told Luodong 0.6 of its peak; now 1.00, and 0.95."""
        if self.river is None or not self.river.reaches:
            v = self.default_km_per_day * speed
            return 2.0 * 16.0 * speed * (b_km - a_km) / v**3 if v > 0 else 0.0
        dams = sorted(d.km for d in self.river.dams if a_km < d.km < b_km)
        var = 0.0
        for lo, hi in itertools.pairwise([a_km, *dams, b_km]):
            var += self._pool_spread(lo, hi, speed)
        return var

    def _pool_spread(self, a_km: float, b_km: float, speed: float) -> float:
        """The variance between two km with no dam between them; between two dams, a closed vessel's.

        A dam lets nothing disperse back across it, so a pool between two dams spreads a plume less than
        an open reach (variance τ²·(2/Pe − 2/Pe²·(1 − e^−Pe)) against τ²·2/Pe): a quarter less in the
        Longjiang's pools (Péclet about 4-5), whose thinner fore-run the open kernel put early."""
        assert self.river is not None
        cuts = sorted({a_km, b_km, *(x for r in self.river.reaches for x in (r.from_km, r.to_km) if a_km < x < b_km)})
        var = tau = 0.0
        for lo, hi in itertools.pairwise(cuts):
            mid = (lo + hi) / 2.0
            v = self.river.velocity_at(mid) * speed
            if v > 0:
                var += 2.0 * self.river.dispersion_at(mid) * speed * (hi - lo) / v**3
                tau += (hi - lo) / v
        upper = {d.km for d in self.river.dams if abs(a_km - d.km) <= DAM_KM}
        lower = {d.km for d in self.river.dams if abs(b_km - d.km) <= DAM_KM}
        closed = bool(upper) and bool(lower - upper)  # two dams: not the km either side of one
        if closed and var > 0:
            pe = 2.0 * tau**2 / var
            var *= 1.0 - (1.0 - math.exp(-pe)) / pe
        return var

    def _shift(self, src: _Source, to_km: float, speed: float, factor: float, at_ns: int | None = None) -> _Source:
        """The source's excess as it would pass `to_km`: later, diluted, decayed, spread and treated.

        The spread is the travel-time distribution of advection with dispersion (an inverse Gaussian with
        the reaches' mean travel time and variance), not a symmetric Gaussian: in a slow, dispersive pool
        (Péclet number of a few) the fore-run arrives well before the water's mean travel time and the
        tail lags, and a symmetric kernel put the front days early (and so, fitted to a crossing, the
        speed three times too slow).

        Dosing points on the way (those a forecast at `at_ns`, default the forecast's time, may count) split
        the route: the curve is routed to each point, the hours it passes there while the point runs lose
        the point's removal, and the rest is routed on. Why not one factor per hour of the source: in a
        dispersive pool one hour's load passes a point over days, its fore-run before the dosing started
        and its tail after, and the treated part is the late part downstream too."""
        dilution, decay = 1.0, 0.0
        treatments: tuple[Treatment, ...] = ()
        if self.river is not None and self.river.reaches:
            dilution = self.river.dilution(src.km, to_km)
            decay = self.river.decay_at((src.km + to_km) / 2.0)
            if to_km > src.km:
                treatments = self.river.treatments_known(src.km, to_km, self._now_ns if at_ns is None else at_ns)
        days = max(self._travel_days(src.km, to_km, speed), 0.0)
        hours, excess, km = src.hours, src.excess * (factor * math.exp(-decay * days) / dilution), src.km
        for t in sorted(treatments, key=lambda t: t.km):
            hours, excess = self._advect(hours, excess, km, t.km, speed)
            passing_ns = hours * NS_PER_HOUR
            excess = excess * np.where((passing_ns >= t.from_ns) & (passing_ns < t.until_ns), 1.0 - t.removal, 1.0)
            km = t.km
        hours, excess = self._advect(hours, excess, km, to_km, speed)
        return _Source(to_km, hours, excess, src.background, src.peaked)

    def _advect(
        self, hours: np.ndarray, excess: np.ndarray, a_km: float, b_km: float, speed: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """An hourly curve at a moved to b: delayed and spread by the travel time between (no dilution)."""
        days = max(self._travel_days(a_km, b_km, speed), 0.0)
        var = self._spread(a_km, b_km, speed) if b_km > a_km else 0.0
        kernel = _travel_kernel(days, var)
        if kernel is None:
            return hours + round(days * HOURS_PER_DAY), excess
        out = np.convolve(excess, kernel)
        return np.arange(hours[0], hours[0] + len(out), dtype=np.int64), out

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


MAX_KERNEL_H = 24 * 60
DAM_KM = 1.0  # a station this close to a dam reads the dam's pool head (the stations at the Longjiang's dams)


def _with_tail(hours: np.ndarray, excess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A curve whose peak has passed, its falling limb continued to zero at its mean rate since the peak.

    Why: "passed" is at 70 % of the peak, so the curve seen so far holds only part of the mass still to
    come past the station; routed as it is, it ends where the readings end (Lalang, four days after its
    peak, routed to Nuomitan: 0.14 against the 0.19 that came). A linear fall is what a release that
    tapers off gives; at most HOLD_HOURS are added."""
    top = int(np.argmax(excess))
    last, span = float(excess[-1]), int(hours[-1] - hours[top])
    if span <= 0 or last <= 0 or last >= excess[top]:
        return hours, excess
    slope = (float(excess[top]) - last) / span
    n = min(math.ceil(last / slope), HOLD_HOURS)
    tail = np.maximum(last - slope * np.arange(1, n + 1), 0.0)
    return np.arange(hours[0], hours[-1] + n + 1, dtype=np.int64), np.concatenate([excess, tail])


def _travel_kernel(mean_days: float, var_days2: float) -> np.ndarray | None:
    """Hourly weights (lag 0, 1, ... h) of an inverse Gaussian travel time: mean `mean_days`, variance
    `var_days2`; None when the spread is under an hour (a plain shift)."""
    if mean_days <= 0 or var_days2 <= 0 or math.sqrt(var_days2) * HOURS_PER_DAY < 1.0:
        return None
    mu, lam = mean_days * HOURS_PER_DAY, mean_days**3 / var_days2 * HOURS_PER_DAY  # hours
    sd = math.sqrt(mu**3 / lam)
    t = np.arange(1, int(min(mu + 8 * sd, MAX_KERNEL_H)) + 1, dtype=np.float64)
    k = np.sqrt(lam / (2 * math.pi * t**3)) * np.exp(-lam * (t - mu) ** 2 / (2 * mu**2 * t))
    total = float(k.sum())
    if total <= 0:
        return None
    return np.concatenate([[0.0], k / total])


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
