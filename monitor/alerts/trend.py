"""Reading a series' trend as a station's chemist does: its own noise, and whether it rises toward the limit.

Why: analysers read with noise, and near the limit the first reading after a true crossing often reads just
under it, so the first notice came a cycle late and the confirmation two. A chemist looking at the series
sees "0.0047, and it has risen for six readings in a row, well beyond its usual scatter": that reading is a
first step. Everything here is in units of the limit (the check's ratio: C/S for a maximum, S/C for a
minimum), so one rule serves cadmium and dissolved oxygen, and a dated limit step changes nothing.

Per series, from the readings before each one (never a later one, so results do not depend on batching):
- noise: the MAD of successive differences of the last `NOISE_READINGS` readings (robust to a trend, which
  only shifts the differences, and to one outlier), scaled to one sigma of a reading, at least `NOISE_FLOOR`;
- near and rising: a reading under the limit by at most `near_band` sigmas, whose least-squares slope over
  the last `trend_readings` readings is at least `near_rise` standard errors (the standard error from the
  learnt noise, not the residuals, so a steady curve does not pass for noise); the notice it opens stands
  while the readings stay within the band (a plume's front can pause under the limit) and is withdrawn by
  the first one below it;
- the clear band: `clear_band` sigmas under the limit (at most half of it), inside which a reading is not
  distinguishable from an exceedance and does not count as calm;
- sudden: a reading over the limit that jumps more than `sudden_band` sigmas above the median of the readings
  before it, when those were not rising (a spike or a check standard the screens did not catch looks like
  this; a river's plume rises over readings, even at the station next to the spill), which then needs one
  more reading over the limit to confirm.
State: the last `NOISE_READINGS` (time, ratio, value) per series, about 600 B; work O(readings x window) numpy
per batch, and nothing but an append for a batch far below the limit with no alert open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from monitor.thresholds.model import AlertPolicy

NOISE_READINGS = 24  # readings the noise is learnt from (two days of a two-hourly metals analyser)
MIN_DIFFS = 8  # successive differences needed before the noise is trusted
NOISE_FLOOR = 0.01  # one sigma is at least 1 % of the limit (quantised or below-DL series read as noiseless)
CLEAR_BAND_CAP = 0.5  # the clear band is never wider than half the limit
LOOK = 0.5  # a batch whose readings all stay under half the limit, with nothing open, is only recorded
_MAD_SIGMA = 1.4826 / math.sqrt(2.0)  # MAD of differences -> sigma of one reading (normal noise)
_NS_PER_HOUR = 3.6e12


_POLICY = AlertPolicy()  # the one source of the defaults below


@dataclass(frozen=True, slots=True)
class TrendSettings:
    """The `[alerts]` keys of the trend (see monitor.thresholds.model.AlertPolicy); 0 turns each part off."""

    near_band: float = _POLICY.near_band
    near_rise: float = _POLICY.near_rise
    trend_readings: int = _POLICY.trend_readings
    clear_band: float = _POLICY.clear_band
    sudden_band: float = _POLICY.sudden_band

    @classmethod
    def of(cls, policy: AlertPolicy) -> TrendSettings:
        """The trend keys of a loaded `[alerts]` table."""
        return cls(policy.near_band, policy.near_rise, policy.trend_readings, policy.clear_band, policy.sudden_band)

    @property
    def active(self) -> bool:
        return self.near_band > 0 or self.clear_band > 0 or self.sudden_band > 0


@dataclass(frozen=True, slots=True)
class TrendView:
    """Per reading of one batch of one series: what the trend says about it."""

    near: np.ndarray  # bool: under the limit, within the near band, and rising significantly
    inband: np.ndarray  # bool: under the limit and within the near band (a near notice stands while it is)
    band: np.ndarray  # float: the clear band (ratio units); a reading above 1 - band is not calm
    sudden: np.ndarray  # bool: over the limit by a sudden jump from the series' level
    sigma: np.ndarray  # float: one sigma of noise (ratio units), NaN while unknown
    slope: np.ndarray  # float: the value's slope per hour over the trend window, NaN while unknown

    def detail(self, i: int, unit: str, readings: int) -> str:
        """ "rising toward the limit: 0.00012 mg/L per hour over the last 6 readings": why a reading under the
        limit is a first step."""
        s = float(self.slope[i])
        way = "rising" if s >= 0 else "falling"
        return f"{way} toward the limit: {abs(s):.2g}{unit} per hour over the last {readings} readings"


def _empty(n: int) -> TrendView:
    return TrendView(
        np.zeros(n, dtype=bool),
        np.zeros(n, dtype=bool),
        np.zeros(n),
        np.zeros(n, dtype=bool),
        np.full(n, np.nan),
        np.full(n, np.nan),
    )


class Trend:
    """The recent readings of each series with a limit alert, and what they say (see the module docstring)."""

    __slots__ = ("_seen", "settings")

    def __init__(self, settings: TrendSettings | None = None) -> None:
        self.settings = settings or TrendSettings()
        self._seen: dict[tuple[str, str], tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def assess(
        self,
        series: tuple[str, str],
        ts: np.ndarray,
        ratio: np.ndarray,
        values: np.ndarray,
        violated: np.ndarray,
        watching: bool,
    ) -> TrendView:
        """The trend at each reading of a batch (time order), from the readings before it; then keeps them.

        `watching`: an alert of the series is open (its readings then need the clear band even far below).
        Readings that are neither over nor at most at the limit (a below-DL reading of a minimum) and readings
        at or before the last one kept teach nothing and get nothing."""
        n = len(ts)
        view = _empty(n)
        s = self.settings
        if not s.active or n == 0:
            return view
        old = self._seen.get(series)
        valid = np.isfinite(ratio) & (violated | (ratio <= 1.0))
        if old is not None and len(old[0]):
            valid &= ts > old[0][-1]
        idx = np.flatnonzero(valid)
        if not len(idx):
            return view
        h_t, h_r, h_v = old if old is not None else (np.empty(0, np.int64), np.empty(0), np.empty(0))
        t = np.concatenate((h_t, ts[idx]))
        r = np.concatenate((h_r, ratio[idx]))
        v = np.concatenate((h_v, values[idx]))
        self._seen[series] = (t[-NOISE_READINGS:], r[-NOISE_READINGS:], v[-NOISE_READINGS:])
        if not watching and not violated.any() and float(np.max(ratio[idx])) < LOOK:
            return view  # far below the limit, nothing open: the readings are kept and nothing is judged
        base = len(h_t)
        pos = base + np.arange(len(idx))
        sigma = _noise(r, pos)
        m = s.trend_readings
        slope_r, slope_v, sxx = _slopes(t, r, v, pos, m)
        level = _level_before(r, pos, m)
        before_r, _, before_sxx = _slopes(t, r, v, pos - 1, m)
        flat_before = ~(before_r * np.sqrt(before_sxx) >= s.near_rise * sigma)  # NaN (too few readings): flat
        rr = r[pos]
        viol = violated[idx]
        inband = (s.near_band > 0) & ~viol & (rr >= 1.0 - s.near_band * sigma)
        near = inband & (slope_r * np.sqrt(sxx) >= s.near_rise * sigma)
        band = np.where(np.isnan(sigma), 0.0, np.minimum(s.clear_band * np.nan_to_num(sigma), CLEAR_BAND_CAP))
        sudden = (s.sudden_band > 0) & viol & flat_before & (rr - level > s.sudden_band * sigma)
        view.near[idx] = near & ~np.isnan(sigma)
        view.inband[idx] = inband & ~np.isnan(sigma)
        view.band[idx] = band
        view.sudden[idx] = sudden & ~np.isnan(sigma) & ~np.isnan(level)
        view.sigma[idx] = sigma
        view.slope[idx] = slope_v
        return view

    def forget(self, series: tuple[str, str]) -> None:
        self._seen.pop(series, None)

    def noise(self, series: tuple[str, str]) -> float:
        """One sigma of the series' noise now (ratio units), NaN while unknown: for tests and `show`."""
        got = self._seen.get(series)
        if got is None:
            return math.nan
        r = got[1]
        return float(_noise(np.concatenate((r, [np.nan])), np.array([len(r)]))[0])


def _noise(r: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """One sigma at each position, from the successive differences of the readings before it."""
    w = NOISE_READINGS - 1
    d = np.concatenate((np.full(w, np.nan), np.diff(r)))  # d[k + w] = r[k + 1] - r[k]
    # the differences among readings pos-NOISE_READINGS .. pos-1 end at d[pos - 2 + w]
    out = np.full(len(pos), np.nan)
    ok = pos >= 1
    if not ok.any() or len(d) < w:
        return out
    win = sliding_window_view(d, w)[pos[ok] - 1]
    count = np.count_nonzero(~np.isnan(win), axis=1)
    enough = count >= MIN_DIFFS
    if not enough.any():
        return out
    win = win[enough]
    med = np.nanmedian(win, axis=1)
    mad = np.nanmedian(np.abs(win - med[:, None]), axis=1)
    sel = np.flatnonzero(ok)[enough]
    out[sel] = np.maximum(mad * _MAD_SIGMA, NOISE_FLOOR)
    return out


def _slopes(
    t: np.ndarray, r: np.ndarray, v: np.ndarray, pos: np.ndarray, m: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares slopes (ratio and value, per hour) over the m readings ending at each position, and the
    spread of their times (sum of squares, hours^2); NaN where fewer than m readings exist."""
    k = len(pos)
    slope_r, slope_v, sxx = np.full(k, np.nan), np.full(k, np.nan), np.full(k, np.nan)
    ok = pos >= m - 1
    if m < 2 or not ok.any():
        return slope_r, slope_v, sxx
    start = pos[ok] - (m - 1)
    tw = sliding_window_view(t, m)[start].astype(np.float64)
    tw = (tw - tw[:, -1:]) / _NS_PER_HOUR
    tc = tw - tw.mean(axis=1, keepdims=True)
    s = np.sum(tc * tc, axis=1)
    s = np.where(s > 0, s, np.nan)
    rw = sliding_window_view(r, m)[start]
    vw = sliding_window_view(v, m)[start]
    slope_r[ok] = np.sum(tc * (rw - rw.mean(axis=1, keepdims=True)), axis=1) / s
    slope_v[ok] = np.sum(tc * (vw - vw.mean(axis=1, keepdims=True)), axis=1) / s
    sxx[ok] = s
    return slope_r, slope_v, sxx


def _level_before(r: np.ndarray, pos: np.ndarray, m: int) -> np.ndarray:
    """The median of the m readings before each position (the series' level a jump is measured from)."""
    out = np.full(len(pos), np.nan)
    ok = pos >= m
    if m < 1 or not ok.any():
        return out
    out[ok] = np.median(sliding_window_view(r, m)[pos[ok] - m], axis=1)
    return out
